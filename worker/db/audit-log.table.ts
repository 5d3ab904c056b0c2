import type { Generated } from "kysely";

/** The `audit_log` table (migrations/0002_audit_and_revocations.sql; 0004; 0007: three levels and the chain). */
export interface AuditLogTable {
  id: Generated<number>;
  at_ms: number;
  principal: string;
  client_id: string | null;
  session_id: string | null;
  action: AuditAction;
  server: string | null;
  tool: string | null;
  decision: "allow" | "deny";
  reason: string;
  outcome: "ok" | "tool_error" | "jsonrpc_error" | "transport_error" | null;
  error_code: number | null;
  duration_ms: number | null;
  args_digest: string | null;
  policy_hash: string | null;
  /** The subject an action is about (admin:block, admin:revoke, a refused sign-in), when not a tool. */
  subject: string | null;
  /** Free text a person wrote (an admin's reason); `reason` stays a fixed code. */
  note: string | null;
  /** Did the request reach the server, and if not why (0007); null: not a request to a server. */
  delivery: AuditDelivery | null;
  /** The server's answer (0007): ok, the tool's own `isError`, a JSON-RPC error; null: no answer. */
  result: AuditResult | null;
  /** The ledger stream the row was written to (0007, worker/audit/ledger.ts); null before 0007. */
  stream: string | null;
  /** The row's place in its stream, from 1; with `stream`, the row's id minted at write time. */
  seq: number | null;
  /** The previous row's `hash` in the stream (64 zeros for the first). */
  prev_hash: string | null;
  /** SHA-256 of the row and `prev_hash` (worker/audit/chain.ts). */
  hash: string | null;
}

/**
 * The delivery level of a row (0007): `not_sent` (refused before it was sent), `delivered` (the server
 * answered), or why no answer came: the bridge could not be reached or refused (`unreachable`), it was
 * sent and not answered in time (`timeout`), the connection closed first (`connection_closed`).
 */
export const AUDIT_DELIVERIES = ["not_sent", "delivered", "unreachable", "timeout", "connection_closed"] as const;
export type AuditDelivery = (typeof AUDIT_DELIVERIES)[number];

/** The result level of a row (0007): the server's answer, when one came. */
export const AUDIT_RESULTS = ["ok", "tool_error", "protocol_error"] as const;
export type AuditResult = (typeof AUDIT_RESULTS)[number];

/** The actions that are a request to a server: the rows that have a delivery level. */
export const SERVER_ACTIONS: ReadonlySet<AuditAction> = new Set<AuditAction>([
  "tools/call",
  "execute_stdio",
  "resources/read",
  "prompts/get",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
]);

/**
 * The `action` column's fixed vocabulary. Nothing a client sends becomes an action: a request to an
 * admin path that is not one of these is recorded as `admin:request` (the method and path are not kept).
 */
export const AUDIT_ACTIONS = [
  "tools/call",
  "execute_stdio",
  "resources/read",
  "prompts/get",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
  "admin:request",
  "admin:read",
  "admin:revoke",
  "admin:block",
  "admin:unblock",
  "admin:sign_in",
  "admin:token",
  "login:refused",
  "oauth:refresh_reuse",
  // Connections (issue 17): a person's upstream account. Never the token itself.
  "connection:connect",
  "connection:disconnect",
  "connection:refresh_failed",
  "connection:use",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
