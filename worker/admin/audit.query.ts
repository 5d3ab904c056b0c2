import type { Kysely, SelectQueryBuilder } from "kysely";
import { z } from "zod";
import type { AuditLogTable, Database } from "../db/database.ts";

/** Rows per console page: a screenful to scan by eye. */
export const AUDIT_PAGE_ROWS = 50;
/** Rows per CSV export: a month of a small team's calls; the export says when it stopped short. */
export const MAX_EXPORT_ROWS = 50_000;

export const OUTCOME_FILTERS = ["ok", "tool_error", "jsonrpc_error", "transport_error", "none"] as const;

/** The audit view's filters, parsed from a query string (all optional; unknown values are refused). */
export const AuditFilterQuery = z.object({
  person: z.string().trim().max(300).optional(),
  server: z.string().trim().max(100).optional(),
  tool: z.string().trim().max(256).optional(),
  decision: z.enum(["allow", "deny", ""]).optional(),
  outcome: z.enum([...OUTCOME_FILTERS, ""]).optional(),
  from: z.string().max(40).optional(),
  to: z.string().max(40).optional(),
  tz: z.string().max(64).optional(),
  before: z
    .string()
    .regex(/^\d{1,15}\.\d{1,15}$/)
    .optional(),
  /** `1`: check the hash chains too (audit.verify.ts). */
  verify: z.enum(["1", ""]).optional(),
});
export type AuditFilterQuery = z.infer<typeof AuditFilterQuery>;

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

export function cursorOf(text: string | undefined): AuditCursor | null {
  if (!text) return null;
  const [at, id] = text.split(".").map(Number);
  return at !== undefined && id !== undefined && Number.isSafeInteger(at) && Number.isSafeInteger(id)
    ? { atMs: at, id }
    : null;
}

export const cursorText = (c: AuditCursor) => `${c.atMs}.${c.id}`;

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
