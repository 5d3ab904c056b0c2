import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config.ts";

/**
 * The KV namespace behind the OAuth provider: registered clients, grants, and hashed tokens
 * (migrations/STORAGE.md). The Worker writes it; nothing is seeded.
 */
export class OAuthStateStore extends pulumi.ComponentResource {
  readonly namespaceId: pulumi.Output<string>;

  constructor(name: string, args: { readonly config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:kv:OAuthStateStore", name, {}, opts);
    const { config } = args;
    // Losing it signs every user out and forgets every registered client: protected in production.
    const namespace = new cloudflare.WorkersKvNamespace(
      `${name}-namespace`,
      { accountId: config.accountId, title: config.names.kv },
      // Titles are unique in the account: delete before replacing where the data is not protected
      // (policy-database.ts says why).
      { parent: this, protect: config.protectData, deleteBeforeReplace: !config.protectData },
    );
    this.namespaceId = namespace.id;
    this.registerOutputs({ namespaceId: this.namespaceId });
  }
}
