import type { AuditLedger } from "../audit/ledger.ts";

/** The bindings the session Durable Object reads (names: worker/bindings.ts); settings are parsed by worker/config.ts. */
export interface SessionEnv {
  readonly DB: D1Database;
  /** The audit ledgers (worker/audit/ledger.ts): every audit row is written there first. */
  readonly AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
  readonly MCP_SESSIONS?: DurableObjectNamespace;
  readonly BRIDGE?: DurableObjectNamespace;
}

/** A session lives at most this long; then its client gets 404 and starts a new one (as MCP specifies). */
export const SESSION_MAX_AGE_MS = 24 * 60 * 60 * 1000;
