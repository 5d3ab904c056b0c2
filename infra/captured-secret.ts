import * as pulumi from "@pulumi/pulumi";

/**
 * `CapturedSecret`: keeps the first non-empty value it is given, for a secret an API returns only once.
 *
 * The Access SaaS application's client secret comes back only in the create response. The provider
 * keeps it in state, but it is reported to show a diff on every apply for this resource
 * (cloudflare/terraform-provider-cloudflare#5495), and an update whose response lacks the secret
 * leaves it empty; the next Worker deploy then fails, and only a new app (`--replace`) gets out.
 * This resource takes the secret when the app is created and never updates it: its `diff` ignores a
 * later value (empty or not), and only a new owner (a new app id) replaces it, which captures the new
 * app's secret. So an update of the app can no longer lose the secret the Worker runs with.
 *
 * Serialized into state like every dynamic provider: it captures nothing and calls nothing.
 */

export interface CapturedSecretInputs {
  /** What the secret belongs to (the app's id): a new owner replaces the captured value. */
  readonly owner: string;
  readonly value: string;
}

export function makeCapturedSecretProvider(): pulumi.dynamic.ResourceProvider<
  CapturedSecretInputs,
  CapturedSecretInputs
> {
  return {
    async check(_olds, news) {
      return { inputs: news };
    },
    async diff(_id, olds, news) {
      const replace = olds.owner !== news.owner;
      // SECURITY: `value` is compared by no one: a later value, even a different one, is not taken.
      return { changes: replace, replaces: replace ? ["owner"] : [], deleteBeforeReplace: false };
    },
    async create(inputs) {
      if (inputs.value === "") {
        // The API returned no secret (an imported app, or lost state): say how to get a new one.
        throw new Error(
          `the secret of ${inputs.owner} is empty: it is returned only when the app is created; ` +
            "replace the app to get a new one (infra/README.md, Rotating secrets)",
        );
      }
      return { id: `captured:${inputs.owner}`, outs: inputs };
    },
    async update(_id, olds) {
      return { outs: olds };
    },
  };
}

export class CapturedSecret extends pulumi.dynamic.Resource {
  declare readonly value: pulumi.Output<string>;

  constructor(
    name: string,
    args: { readonly owner: pulumi.Input<string>; readonly value: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      makeCapturedSecretProvider(),
      name,
      { owner: args.owner, value: pulumi.secret(args.value) },
      { ...opts, additionalSecretOutputs: ["value"] },
      "hatago",
      "CapturedSecret",
    );
  }
}
