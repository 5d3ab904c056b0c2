import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { StackConfig } from "../config.ts";
import { workerEnv } from "../worker-env.ts";
import { type WranglerConfig, wranglerConfig } from "../wrangler-config.ts";
import type { AccessApplications } from "./access-applications.ts";
import type { BridgeImage } from "./bridge-image.ts";
import type { BridgeStateBucket } from "./bridge-state-bucket.ts";
import { DEPLOY_CLI } from "./deploy-cli.ts";
import type { OAuthStateStore } from "./oauth-state-store.ts";
import type { PolicyDatabase } from "./policy-database.ts";

/** Length of the generated bridge secret: 48 alphanumerics ≈ 285 bits. */
const BRIDGE_SECRET_LENGTH = 48;

export interface GatewayWorkerArgs {
  readonly config: StackConfig;
  readonly database: PolicyDatabase;
  readonly oauthStore: OAuthStateStore;
  readonly stateBucket: BridgeStateBucket;
  readonly image: BridgeImage;
  readonly access: AccessApplications;
  /** Hash of what the Worker bundle is built from (bundle-inputs.ts workerBundleSha256). */
  readonly bundleSourcesSha256: string;
}

/**
 * The Worker with its Durable Objects and the Container class that runs the bridge.
 *
 * The provider has no resource for a container application, and its Worker resources cannot upload
 * a container-backed Durable Object with its migration (infra.md §1.5, §2.4), so the Worker is deployed
 * by `wrangler deploy` from a config this component generates (wrangler-config.ts).
 *
 * Why no `triggers`: in @pulumi/command 1.2.1 a trigger change *replaces* the command (the SDK sets
 * `replaceOnChanges: ["triggers[*]"]`), and a replacement runs the new create and then the old delete,
 * which would delete the Worker just deployed. Everything that should redeploy (the config with the
 * image digest, the bundle's source hash, the secrets on stdin) is an ordinary input instead: a change
 * is an update, which runs `worker-deploy` again. The delete step also refuses to delete a Worker that
 * a newer deployment owns (deploy/worker.ts).
 */
export class GatewayWorker extends pulumi.ComponentResource {
  readonly url: string;
  /** The generated wrangler config (no secrets in it). */
  readonly wranglerConfig: pulumi.Output<WranglerConfig>;
  /** Name → value of the Worker's secret bindings; a Pulumi secret. */
  readonly secrets: pulumi.Output<Record<string, string>>;
  readonly deploy: command.local.Command;

  constructor(name: string, args: GatewayWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:workers:GatewayWorker", name, {}, opts);
    const { config } = args;

    // SECURITY: the Worker and the bridge share it; generated once per stack and kept (secret) in state.
    // Rotate with `pulumi up --replace <this resource's URN>` (infra/README.md).
    const bridgeSecret = new random.RandomPassword(
      `${name}-bridge-secret`,
      { length: BRIDGE_SECRET_LENGTH, special: false },
      { parent: this },
    );

    const env = workerEnv({
      config,
      accessOidc: args.access.oidc,
      adminAccessAud: args.access.adminAud,
      bridgeSecret: pulumi.secret(bridgeSecret.result),
    });

    this.wranglerConfig = pulumi
      .all([
        args.database.databaseId,
        args.oauthStore.namespaceId,
        args.stateBucket.bucketName,
        args.image.ref,
        env.vars,
      ])
      .apply(([d1DatabaseId, kvNamespaceId, stateBucketName, image, vars]) =>
        wranglerConfig({
          names: config.names,
          accountId: config.accountId,
          hosting: config.hosting,
          d1DatabaseId,
          kvNamespaceId,
          stateBucketName,
          image,
          container: config.container,
          vars,
        }),
      );
    this.secrets = env.secrets;

    const secretsJson = pulumi.secret(
      env.secrets.apply((secrets) => {
        const empty = Object.keys(secrets).filter((k) => secrets[k] === "");
        // The names only: the values are secret. (An Access client secret is empty after an import:
        // the API returns it only on create; see infra/README.md, "Rotating secrets".)
        if (empty.length > 0) throw new Error(`Worker secrets without a value: ${empty.join(", ")}`);
        return JSON.stringify(secrets);
      }),
    );

    this.deploy = new command.local.Command(
      `${name}-deploy`,
      {
        create: DEPLOY_CLI.workerDeploy,
        update: DEPLOY_CLI.workerDeploy,
        delete: DEPLOY_CLI.workerDelete,
        environment: {
          HATAGO_WRANGLER_CONFIG: pulumi.jsonStringify(this.wranglerConfig),
          HATAGO_BUNDLE_SOURCES_SHA256: args.bundleSourcesSha256,
        },
        stdin: secretsJson,
        // The delete step reads the version this deployment created from the previous stdout.
        addPreviousOutputInEnv: true,
      },
      {
        parent: this,
        // Schema and policy first: new code never starts against an old schema or an unseeded policy.
        dependsOn: [args.database, args.oauthStore, args.stateBucket, args.image, args.access],
      },
    );

    this.url = config.baseUrl;
    this.registerOutputs({ url: this.url, wranglerConfig: this.wranglerConfig });
  }
}
