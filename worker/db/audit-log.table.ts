import type { Generated } from "kysely";

/** The `audit_log` table (migrations/0002_audit_and_revocations.sql). */
export interface AuditLogTable {
  id: Generated<number>;
  at_ms: number;
  principal: string;
  client_id: string | null;
  session_id: string | null;
  action: string;
  server: string | null;
  tool: string | null;
  decision: "allow" | "deny";
  reason: string;
  outcome: "ok" | "tool_error" | "jsonrpc_error" | "transport_error" | null;
  error_code: number | null;
  duration_ms: number | null;
  args_digest: string | null;
  policy_hash: string | null;
}
