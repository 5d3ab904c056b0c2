import { type Generated, Kysely } from "kysely";
import { D1Dialect } from "kysely-d1";
import type { AuditLogTable } from "./audit-log.table.ts";
import type { ConnectionsTable } from "./connections.table.ts";

export type { AuditLogTable };

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
  blocks: { subject: string; reason: string; blocked_by: string; blocked_at_ms: number };
  mcp_sessions: {
    principal: string;
    session_id: string;
    created_ms: number;
    direct_calls: number;
    /** JSON array of the session's binding subjects (migrations/0004_blocks.sql). */
    subjects: Generated<string>;
  };
  mcp_session_backends: {
    principal: string;
    session_id: string;
    server: string;
    bridge_session_id: string;
    protocol_version: string;
  };
  /** Each person's upstream accounts, sealed (migrations/0006_connections.sql). */
  connections: ConnectionsTable;
}

export function database(d1: D1Database): Kysely<Database> {
  let db = databases.get(d1);
  if (!db) {
    db = new Kysely<Database>({ dialect: new D1Dialect({ database: d1 }) });
    databases.set(d1, db);
  }
  return db;
}

/**
 * One Kysely per D1 binding per isolate: it holds no connection or request state (each query is one call
 * on the binding), and building it (dialect, compiler) cost ~0.02 ms on every MCP request (issue 18).
 */
const databases = new WeakMap<D1Database, Kysely<Database>>();

/** The cheapest question D1 can answer: whether it answers at all (`/health`). */
export async function pingDatabase(d1: D1Database): Promise<void> {
  await d1.prepare("SELECT 1").first();
}
