import type { Generated } from "kysely";
import { Kysely } from "kysely";
import { D1Dialect } from "kysely-d1";

/** D1 tables (migrations/*.sql; described in migrations/STORAGE.md). */
export interface Database {
  roles: { name: string; description: string; rate_limit_per_minute: number | null };
  role_tools: { role: string; server: string; tool: string; level: string };
  role_servers: { role: string; server: string; level: string };
  bindings: { subject: string; role: string };
  tool_levels: { server: string; tool: string; level: string; read_only: number };
  policy_meta: { key: string; value: string };
  audit_log: AuditLogTable;
  revocations: { subject: string; revoked_before_ms: number; reason: string; revoked_by: string };
}

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

export function database(d1: D1Database): Kysely<Database> {
  return new Kysely<Database>({ dialect: new D1Dialect({ database: d1 }) });
}
