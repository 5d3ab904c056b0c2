import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config.ts";

/**
 * The R2 bucket behind "state that survives" (issue 13): one object per server data directory, keyed by
 * (server, owner) (worker/bridge/state.ts, migrations/STORAGE.md). The Worker writes it, on the bridge's
 * behalf; nothing is seeded. Bound to the Worker as BINDINGS.bridgeState (`BRIDGE_STATE`).
 */
export class BridgeStateBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;

  constructor(name: string, args: { readonly config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:r2:BridgeStateBucket", name, {}, opts);
    const { config } = args;
    // Losing it loses every user's server data (memory graphs, files): protected in production.
    const bucket = new cloudflare.R2Bucket(
      `${name}-bucket`,
      { accountId: config.accountId, name: `${config.names.worker}-bridge-state` },
      { parent: this, protect: config.protectData },
    );
    this.bucketName = bucket.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
