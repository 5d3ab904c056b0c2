import type { Generated } from "kysely";

/** The `audit_log` table (migrations/0002_audit_and_revocations.sql). */
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
}

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
