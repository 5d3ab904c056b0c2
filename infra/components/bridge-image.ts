import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import {
  CLOUDFLARE_REGISTRY,
  cloudflareApi,
  type Fetch,
  type RegistryCredentials,
  registryCredentials,
} from "../cloudflare-api.ts";
import type { StackConfig } from "../config.ts";

/** The bridge's Dockerfile; the build context is the repository root (it copies policies/ too). */
export const BRIDGE_DOCKERFILE = "container/Dockerfile";
export const BRIDGE_BUILD_CONTEXT = ".";

export interface BridgeImageArgs {
  readonly config: StackConfig;
  /** Push credentials for Cloudflare's registry, obtained at deploy time (a secret). */
  readonly registryCredentials: pulumi.Input<RegistryCredentials>;
}

/**
 * The bridge image, built for linux/amd64 (the only platform Cloudflare Containers run) and pushed to
 * Cloudflare's registry under the account. The Worker's deploy takes `ref` (tag@sha256:digest), so
 * wrangler deploys exactly this build and needs no Docker itself.
 */
export class BridgeImage extends pulumi.ComponentResource {
  /** `registry.cloudflare.com/<account>/<repo>:<stack>@sha256:<digest>`. */
  readonly ref: pulumi.Output<string>;
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: BridgeImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:containers:BridgeImage", name, {}, opts);
    const { config } = args;
    const credentials = pulumi.secret(args.registryCredentials);
    const image = new dockerBuild.Image(
      `${name}-image`,
      {
        context: { location: BRIDGE_BUILD_CONTEXT },
        dockerfile: { location: BRIDGE_DOCKERFILE },
        platforms: [dockerBuild.Platform.Linux_amd64],
        push: true,
        tags: [`${CLOUDFLARE_REGISTRY}/${config.accountId}/${config.names.imageRepository}:${config.stack}`],
        registries: [
          {
            address: CLOUDFLARE_REGISTRY,
            username: credentials.apply((c) => c.username),
            password: credentials.apply((c) => c.password),
          },
        ],
        // A preview neither builds nor pushes: it shows whether the build context changed.
        buildOnPreview: false,
      },
      { parent: this },
    );
    this.ref = image.ref;
    this.digest = image.digest;
    this.registerOutputs({ ref: this.ref, digest: this.digest });
  }
}

/**
 * The username Cloudflare's registry gives with push credentials: wrangler authenticates to it as
 * `v1:<password>` (containers-shared `getCreds`). A preview uses it without calling the API, so
 * previews need no token that can mint push credentials and (the provider ignores password changes)
 * show no spurious image diff. If the API ever returns another username, previews show an image
 * update that `pulumi up` then does not make; nothing breaks.
 */
export const PREVIEW_REGISTRY_USERNAME = "v1";

/**
 * Registry credentials for this run: minted through the API on `pulumi up` (they expire, so each
 * deployment gets fresh ones), a placeholder on preview, which never pushes.
 */
export function registryCredentialsForRun(accountId: string, fetchImpl?: Fetch): pulumi.Output<RegistryCredentials> {
  if (pulumi.runtime.isDryRun()) {
    return pulumi.secret({ username: PREVIEW_REGISTRY_USERNAME, password: "preview-does-not-push" });
  }
  const api = cloudflareApi({ token: process.env.CLOUDFLARE_API_TOKEN, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  return pulumi.secret(pulumi.output(registryCredentials(api, accountId)));
}
