/**
 * Binding names, defined once. The Worker, the local wrangler config (wrangler.jsonc) and the Pulumi
 * program all use these; test/unit/bindings.test.ts fails if they drift apart.
 */
export const BINDINGS = {
  /** D1: policy, audit log, revocations. */
  db: "DB",
  /** KV: OAuth clients, grants and tokens (owned by workers-oauth-provider), and login state. */
  oauthKv: "OAUTH_KV",
  /** Durable Object namespace of the bridge container (class `BridgeContainer`). */
  bridge: "BRIDGE",
  /** Durable Object namespace holding MCP sessions (class `McpSession`). */
  sessions: "MCP_SESSIONS",
  /** Durable Object namespace of the audit ledgers, one per principal (class `AuditLedger`, worker/audit/ledger.ts). */
  auditLedger: "AUDIT_LEDGER",
  /** R2: the servers' data directories, one object per (server, owner) (worker/bridge/state.ts). */
  bridgeState: "BRIDGE_STATE",
} as const;

/** Durable Object classes the Worker exports; the container class is the one backed by a Container. */
export const DURABLE_OBJECT_CLASSES = {
  bridge: "BridgeContainer",
  sessions: "McpSession",
  auditLedger: "AuditLedger",
} as const;
