import * as cloudflare from "@pulumi/cloudflare";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { CompiledPolicy } from "../../policies/index.ts";
import type { StackConfig } from "../config.ts";
import { D1PolicySeed } from "../d1-policy-seed.ts";
import { d1MigrationsConfig } from "../wrangler-config.ts";
import { DEPLOY_CLI } from "./deploy-cli.ts";

export interface PolicyDatabaseArgs {
  readonly config: StackConfig;
  /** The stack's policy, compiled (policies/compile.ts). */
  readonly policy: pulumi.Input<CompiledPolicy>;
  /** Hash of migrations/*.sql: the migrations run again when it changes. */
  readonly migrationsSha256: string;
}

/**
 * The D1 database, its schema (migrations/*.sql) and the policy seeded into it, in that order: the
 * seed needs the tables, and the Worker is deployed only after both (it depends on this component).
 */
export class PolicyDatabase extends pulumi.ComponentResource {
  readonly databaseId: pulumi.Output<string>;
  readonly databaseName: pulumi.Output<string>;
  readonly policyHash: pulumi.Output<string>;
  readonly migrations: command.local.Command;
  readonly seed: D1PolicySeed;

  constructor(name: string, args: PolicyDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:d1:PolicyDatabase", name, {}, opts);
    const { config } = args;

    // SECURITY/data: D1 has no undo; replacing or deleting the database loses the audit log.
    const db = new cloudflare.D1Database(
      `${name}-d1`,
      { accountId: config.accountId, name: config.names.d1 },
      // Names are unique in the account, so a replacement (create the new, then delete the old) would
      // fail on the name. Where the data is not protected, delete first; protected data is never replaced.
      { parent: this, protect: config.protectData, deleteBeforeReplace: !config.protectData },
    );

    this.migrations = new command.local.Command(
      `${name}-migrations`,
      {
        create: DEPLOY_CLI.d1Migrate,
        environment: {
          HATAGO_WRANGLER_CONFIG: db.id.apply((id) =>
            JSON.stringify(d1MigrationsConfig({ names: config.names, accountId: config.accountId, d1DatabaseId: id })),
          ),
        },
        // A trigger change replaces the command: the new one applies the pending files; the old one
        // has no delete step. A new database (new id) gets every migration.
        triggers: [args.migrationsSha256, db.id],
      },
      { parent: this, dependsOn: [db] },
    );

    const policy = pulumi.output(args.policy);
    this.seed = new D1PolicySeed(
      `${name}-policy`,
      {
        accountId: config.accountId,
        databaseId: db.id,
        environment: policy.environment,
        policyHash: policy.hash,
        roles: policy.roles.apply((roles) => roles.map((r) => `${r.name}: ${r.description}`)),
        bindings: policy.bindings.apply((bindings) => bindings.map((b) => `${b.subject} → ${b.role}`)),
        statements: policy.statements.apply((s) => [...s]),
      },
      { parent: this, dependsOn: [this.migrations] },
    );

    this.databaseId = db.id;
    this.databaseName = db.name;
    this.policyHash = this.seed.policyHash;
    this.registerOutputs({ databaseId: this.databaseId, databaseName: this.databaseName, policyHash: this.policyHash });
  }
}
