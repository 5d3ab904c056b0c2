import type { Unstable_RawConfig } from "wrangler";
import { BINDINGS, DURABLE_OBJECT_CLASSES } from "../worker/bindings.ts";
import type { ContainerSize, Hosting } from "./config.ts";
import type { Names } from "./naming.ts";
import { MIGRATIONS_DIR } from "./source-hash.ts";

/**
 * The wrangler config a stack is deployed with, generated from the program's outputs. It is typed
 * against wrangler's own config type, and the tests run it through wrangler's config validation.
 *
 * SECURITY: it holds no secret. Secrets reach the Worker as secret bindings from the deploy command's
 * stdin (infra/deploy/worker.ts); this object is written to a temporary file and shown in diffs.
 *
 * Paths are relative to the repository root; the deploy command makes them absolute.
 */

export const COMPATIBILITY_DATE = "2026-11-01";
/**
 * `global_fetch_strictly_public`: the Worker's fetch() cannot reach Cloudflare-internal or private hosts.
 * `enable_request_signal`: `request.signal` aborts when the client disconnects (a modern call or a listen
 * then stops toward the bridge at once).
 */
export const COMPATIBILITY_FLAGS = ["nodejs_compat", "global_fetch_strictly_public", "enable_request_signal"] as const;
export const WORKER_MAIN = "worker/index.ts";

/**
 * Durable Object migrations, append-only: a tag once deployed is never edited or removed, because
 * Cloudflare applies each tag once and refuses a history that disagrees with what it applied.
 * Add a new entry (`v3`, …) for a new, renamed or deleted class. Every class stores in SQLite
 * (required for a container-backed class).
 */
export const DURABLE_OBJECT_MIGRATIONS = [
  { tag: "v1", new_sqlite_classes: [DURABLE_OBJECT_CLASSES.bridge, DURABLE_OBJECT_CLASSES.sessions] },
  // Issue 18: the audit ledgers (worker/audit/ledger.ts), where every audit row is written first.
  { tag: "v2", new_sqlite_classes: [DURABLE_OBJECT_CLASSES.auditLedger] },
] as const;

export interface WranglerConfigInputs {
  readonly names: Names;
  readonly accountId: string;
  readonly hosting: Hosting;
  readonly d1DatabaseId: string;
  readonly kvNamespaceId: string;
  /** The R2 bucket the servers' data directories are kept in (components/bridge-state-bucket.ts). */
  readonly stateBucketName: string;
  /** The bridge image in Cloudflare's registry, pinned by digest (`…/hatago-bridge@sha256:…`, no tag). */
  readonly image: string;
  readonly container: ContainerSize;
  /** Plain-text Worker variables (infra/worker-env.ts). Never secrets. */
  readonly vars: Readonly<Record<string, string>>;
}

export type WranglerConfig = Unstable_RawConfig;

export function wranglerConfig(i: WranglerConfigInputs): WranglerConfig {
  const customDomain = i.hosting.kind === "custom-domain";
  return {
    name: i.names.worker,
    account_id: i.accountId,
    main: WORKER_MAIN,
    compatibility_date: COMPATIBILITY_DATE,
    compatibility_flags: [...COMPATIBILITY_FLAGS],
    // One hostname serves the gateway: its OAuth metadata names exactly one issuer. Version preview
    // URLs would be a second, unprotected entry point.
    workers_dev: !customDomain,
    preview_urls: false,
    ...(customDomain ? { routes: [{ pattern: i.hosting.hostname, custom_domain: true }] } : {}),
    d1_databases: [
      {
        binding: BINDINGS.db,
        database_name: i.names.d1,
        database_id: i.d1DatabaseId,
        migrations_dir: MIGRATIONS_DIR,
      },
    ],
    kv_namespaces: [{ binding: BINDINGS.oauthKv, id: i.kvNamespaceId }],
    r2_buckets: [{ binding: BINDINGS.bridgeState, bucket_name: i.stateBucketName }],
    durable_objects: {
      bindings: [
        { name: BINDINGS.bridge, class_name: DURABLE_OBJECT_CLASSES.bridge },
        { name: BINDINGS.sessions, class_name: DURABLE_OBJECT_CLASSES.sessions },
        { name: BINDINGS.auditLedger, class_name: DURABLE_OBJECT_CLASSES.auditLedger },
      ],
    },
    migrations: DURABLE_OBJECT_MIGRATIONS.map((m) => ({ tag: m.tag, new_sqlite_classes: [...m.new_sqlite_classes] })),
    containers: [
      {
        // Named explicitly so that `pulumi destroy` can find and delete it: `wrangler delete` does not.
        name: i.names.containerApp,
        class_name: DURABLE_OBJECT_CLASSES.bridge,
        image: i.image,
        instance_type: i.container.instanceType,
        max_instances: i.container.maxInstances,
        // The bridge's stdout/stderr (its JSON log lines, child crashes) kept in Workers Logs.
        observability: { logs: { enabled: true } },
      },
    ],
    vars: { ...i.vars },
    // The dashboard must not keep variables this program no longer sets.
    keep_vars: false,
    // Workers Logs, kept and queryable in the dashboard: every invocation and the Worker's own log lines
    // (audit and container errors are logged as JSON events).
    observability: { enabled: true, logs: { enabled: true, invocation_logs: true, persist: true } },
  };
}

/** The config `wrangler d1 migrations apply` needs: the database binding and nothing else. */
export function d1MigrationsConfig(i: {
  readonly names: Names;
  readonly accountId: string;
  readonly d1DatabaseId: string;
}): WranglerConfig {
  return {
    name: i.names.worker,
    account_id: i.accountId,
    compatibility_date: COMPATIBILITY_DATE,
    d1_databases: [
      {
        binding: BINDINGS.db,
        database_name: i.names.d1,
        database_id: i.d1DatabaseId,
        migrations_dir: MIGRATIONS_DIR,
      },
    ],
  };
}
