import type { AuditLedger } from "./audit/ledger.ts";

/**
 * The bindings the Worker uses (names in bindings.ts). Settings (`HATAGO_*` vars and secrets) are not
 * listed here on purpose: they are read only by config.ts, which treats them as untrusted strings.
 */
export interface Env {
  readonly DB: D1Database;
  readonly OAUTH_KV: KVNamespace;
  /** The audit ledgers (class AuditLedger): every audit row is written there first (worker/audit/ledger.ts). */
  readonly AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
  /** MCP sessions (class McpSession). */
  readonly MCP_SESSIONS: DurableObjectNamespace;
  /** The bridge containers (class BridgeContainer); unused when a local dev bridge URL is set. */
  readonly BRIDGE?: DurableObjectNamespace;
  /** The servers' data directories (worker/bridge/state.ts); without it state requests are 503. */
  readonly BRIDGE_STATE?: R2Bucket;
}
