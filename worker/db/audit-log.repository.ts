import { type Kysely, type SelectQueryBuilder, sql } from "kysely";
import type { AuditLogTable, Database } from "./database.ts";

/**
 * The audit log's reads (the rows the ledgers ship: worker/db/audit-shipment.ts writes them): the console's
 * pages, chart, overview and people list, and the admin API's list. Every filter has an index ordered the
 * same way (migrations/0005).
 */

/** The filters a console page accepts (worker/admin/audit.query.ts parses them). */
export const OUTCOME_FILTERS = ["ok", "tool_error", "jsonrpc_error", "transport_error", "none"] as const;

/** What the query filters on, once names are resolved and times read. */
export interface AuditFilter {
  readonly principal?: string;
  readonly server?: string;
  readonly tool?: string;
  readonly decision?: "allow" | "deny";
  readonly outcome?: (typeof OUTCOME_FILTERS)[number];
  /** Inclusive lower bound, epoch ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound, epoch ms. */
  readonly toMs?: number;
}

/** A keyset position: the last row of the page before (newest first). */
export interface AuditCursor {
  readonly atMs: number;
  readonly id: number;
}

export type AuditRow = Omit<AuditLogTable, "id"> & { id: number };

/**
 * One page of the audit log, newest first, by keyset: `(at_ms, id)` below the cursor. Every filter has an
 * index ordered the same way (migrations/0005), so a page reads about `limit` index entries whatever the
 * log's size and however deep the page; an OFFSET would read every row before it.
 */
export async function auditPage(
  db: Kysely<Database>,
  filter: AuditFilter,
  cursor: AuditCursor | null,
  limit: number,
): Promise<{ rows: AuditRow[]; next: AuditCursor | null }> {
  let q = filtered(db.selectFrom("audit_log").selectAll(), filter);
  if (cursor) {
    // `at_ms <= t` bounds the index range; the OR only skips the rows of that one millisecond already shown.
    q = q
      .where("at_ms", "<=", cursor.atMs)
      .where((eb) => eb.or([eb("at_ms", "<", cursor.atMs), eb("id", "<", cursor.id)]));
  }
  const rows = (await q
    .orderBy("at_ms", "desc")
    .orderBy("id", "desc")
    .limit(limit + 1)
    .execute()) as AuditRow[];
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page.at(-1);
  return { rows: page, next: more && last ? { atMs: last.at_ms, id: last.id } : null };
}

/** The filters as WHERE clauses; each equality is the leading column of one index (migrations/0005). */
export function filtered<O>(
  q: SelectQueryBuilder<Database, "audit_log", O>,
  filter: AuditFilter,
): SelectQueryBuilder<Database, "audit_log", O> {
  let out = q;
  if (filter.principal !== undefined) out = out.where("principal", "=", filter.principal);
  if (filter.server !== undefined) out = out.where("server", "=", filter.server);
  if (filter.tool !== undefined) out = out.where("tool", "=", filter.tool);
  if (filter.decision !== undefined) out = out.where("decision", "=", filter.decision);
  if (filter.outcome === "none") out = out.where("outcome", "is", null);
  else if (filter.outcome !== undefined) out = out.where("outcome", "=", filter.outcome);
  if (filter.fromMs !== undefined) out = out.where("at_ms", ">=", filter.fromMs);
  if (filter.toMs !== undefined) out = out.where("at_ms", "<", filter.toMs);
  return out;
}

/** The admin API's list: newest first by id, with exact-match filters and an id cursor. */
export async function auditRowsNewestFirst(
  db: Kysely<Database>,
  query: {
    readonly limit: number;
    readonly principal?: string | undefined;
    readonly subject?: string | undefined;
    readonly decision?: "allow" | "deny" | undefined;
    readonly beforeId?: number | undefined;
  },
) {
  let q = db.selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(query.limit);
  if (query.principal) q = q.where("principal", "=", query.principal);
  if (query.subject) q = q.where("subject", "=", query.subject);
  if (query.decision) q = q.where("decision", "=", query.decision);
  if (query.beforeId) q = q.where("id", "<", query.beforeId);
  return q.execute();
}

/** Rows, denials and errors since a moment (the console's overview). */
export async function auditSummarySince(
  db: Kysely<Database>,
  sinceMs: number,
): Promise<{ rows: number; denials: number; errors: number }> {
  const row = await db
    .selectFrom("audit_log")
    .select([
      sql<number>`count(*)`.as("rows"),
      sql<number>`coalesce(sum(decision = 'deny'), 0)`.as("denials"),
      sql<number>`coalesce(sum(outcome IS NOT NULL AND outcome <> 'ok'), 0)`.as("errors"),
    ])
    .where("at_ms", ">=", sinceMs)
    .executeTakeFirst();
  return row ?? { rows: 0, denials: 0, errors: 0 };
}

/**
 * The distinct principals of the log, at most `max`, with a skip scan of the `(principal, at_ms)` index
 * (one index seek per distinct principal, never a scan of the log), so it stays fast at millions of rows.
 */
export async function auditedPrincipals(db: Kysely<Database>, max: number): Promise<string[]> {
  const result = await sql<{ principal: string }>`WITH RECURSIVE p(principal) AS (
      SELECT (SELECT min(principal) FROM audit_log)
      UNION ALL
      SELECT (SELECT min(principal) FROM audit_log WHERE principal > p.principal) FROM p
      WHERE p.principal IS NOT NULL
    )
    SELECT principal FROM p WHERE principal IS NOT NULL LIMIT ${max}`.execute(db);
  return result.rows.map((r) => r.principal);
}

/**
 * Allowed calls, denials and errors per server and time bucket over `[fromMs, toMs)` (the console's chart):
 * one GROUP BY through the same filter indexes as the page.
 */
export async function auditBuckets(
  db: Kysely<Database>,
  filter: AuditFilter,
  fromMs: number,
  toMs: number,
  bucketMs: number,
) {
  return filtered(db.selectFrom("audit_log"), { ...filter, fromMs, toMs })
    .where("server", "is not", null)
    .select([
      "server",
      // CAST: D1 may bind a JS number as REAL, which would make this a fractional division.
      sql<number>`CAST((at_ms - ${fromMs}) / ${bucketMs} AS INTEGER)`.as("bucket"),
      sql<number>`sum(decision = 'allow')`.as("calls"),
      sql<number>`sum(decision = 'deny')`.as("denials"),
      sql<number>`sum(outcome IS NOT NULL AND outcome <> 'ok')`.as("errors"),
    ])
    .groupBy(["server", "bucket"])
    .execute();
}
