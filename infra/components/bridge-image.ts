import * as command from "@pulumi/command";
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { CLOUDFLARE_REGISTRY } from "../cloudflare-api.ts";
import type { StackConfig } from "../config.ts";
import { DEPLOY_CLI } from "./deploy-cli.ts";

/**
 * The bridge's Dockerfile; the build context is the repository root, narrowed by `.dockerignore` to
 * the files the bridge imports (bundle-inputs.ts checks the list), so that a change to anything else,
 * a policy environment say, leaves the context's hash and so the image as they are.
 */
export const BRIDGE_DOCKERFILE = "container/Dockerfile";
export const BRIDGE_BUILD_CONTEXT = ".";

export interface BridgeImageArgs {
  readonly config: StackConfig;
}

/**
 * The bridge image, built for linux/amd64 (the only platform Cloudflare Containers run) and pushed to
 * Cloudflare's registry under the account. The Worker's deploy takes `ref`, the repository pinned by
 * digest, so wrangler deploys exactly this build and needs no Docker itself.
 *
 * Three steps, so that push credentials are minted when they are needed and nowhere else:
 * 1. `build`: the image, built into the local build cache; no push, no credentials. A cold build may
 *    take long; nothing is waiting to expire meanwhile.
 * 2. `registry-login`: after the build, mints push credentials (30 minutes) through the API and logs the
 *    local Docker in with them (deploy/registry.ts). It runs when the build context changes, so exactly
 *    when step 3 will push.
 * 3. `image`: the same build again (a cache hit: seconds) and the push, with the fresh login.
 * No credential is a resource input: none is in state, a preview mints none, and a preview of an
 * unchanged image shows no change (no username or password to compare).
 */
export class BridgeImage extends pulumi.ComponentResource {
  /**
   * `registry.cloudflare.com/<account>/<repo>@sha256:<digest>`: the digest-only form wrangler itself
   * sends for a pushed image. docker-build's own `ref` is `repo:tag@sha256:…`; the tag adds nothing
   * once the digest pins the image, and the API is not documented to accept both (infra/README.md).
   */
  readonly ref: pulumi.Output<string>;
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: BridgeImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:containers:BridgeImage", name, {}, opts);
    const { config } = args;
    const repository = `${CLOUDFLARE_REGISTRY}/${config.accountId}/${config.names.imageRepository}`;
    const build: dockerBuild.ImageArgs = {
      context: { location: BRIDGE_BUILD_CONTEXT },
      dockerfile: { location: BRIDGE_DOCKERFILE },
      platforms: [dockerBuild.Platform.Linux_amd64],
      push: false,
      // A preview neither builds nor pushes: it shows whether the build context changed.
      buildOnPreview: false,
    };

    const built = new dockerBuild.Image(`${name}-build`, build, { parent: this });
    const login = new command.local.Command(
      `${name}-registry-login`,
      {
        create: DEPLOY_CLI.registryLogin,
        update: DEPLOY_CLI.registryLogin,
        // The context hash makes this run (an update) exactly when the image below will be pushed.
        environment: { HATAGO_ACCOUNT_ID: config.accountId, HATAGO_BRIDGE_CONTEXT_SHA256: built.contextHash },
      },
      { parent: this, dependsOn: [built] },
    );
    const image = new dockerBuild.Image(
      `${name}-image`,
      { ...build, push: true, tags: [`${repository}:${config.stack}`] },
      { parent: this, dependsOn: [login] },
    );
    this.digest = image.digest;
    this.ref = pinnedByDigest(repository, image.digest);
    this.registerOutputs({ ref: this.ref, digest: this.digest });
  }
}

/** `<repository>@<digest>`; refuses anything but a sha256 digest, so a tag can never slip in. */
export function pinnedByDigest(repository: string, digest: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.output(digest).apply((d) => {
    // On preview the digest of an image still to be built is unknown; apply does not run then.
    if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new Error(`bridge image: "${d}" is not a sha256 digest`);
    return `${repository}@${d}`;
  });
}
