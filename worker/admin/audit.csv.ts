import type { Kysely } from "kysely";
import { type AuditCursor, type AuditFilter, type AuditRow, auditPage } from "../db/audit-log.repository.ts";
import type { Database } from "../db/database.ts";
import { MAX_EXPORT_ROWS } from "./audit.query.ts";

/** Rows read per D1 query while the export streams. */
const EXPORT_CHUNK_ROWS = 1_000;

const COLUMNS = [
  "id",
  "time",
  "principal",
  "client_id",
  "session_id",
  "action",
  "server",
  "tool",
  "decision",
  "reason",
  "outcome",
  "error_code",
  "duration_ms",
  "args_digest",
  "policy_hash",
  "subject",
  "note",
  "delivery",
  "result",
  "stream",
  "seq",
  "hash",
] as const;

/**
 * The audit rows a filter selects, as CSV (RFC 4180), newest first, streamed a chunk at a time by the same
 * keyset query as the page. Times are ISO 8601 UTC. `filter = null` exports the header only.
 *
 * SECURITY: spreadsheet formula injection (OWASP "CSV injection"): a text cell that starts with `=`, `+`,
 * `-`, `@`, a tab or a carriage return is prefixed with `'`, so a tool name or note a client or an admin
 * chose is never run as a formula when someone opens the export. Numbers are written as numbers.
 */
export function csvResponse(db: Kysely<Database>, filter: AuditFilter | null): Response {
  const encoder = new TextEncoder();
  let cursor: AuditCursor | null = null;
  let written = 0;
  let done = filter === null;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(`${COLUMNS.join(",")}\r\n`));
    },
    async pull(controller) {
      if (done || filter === null) {
        controller.close();
        return;
      }
      const page = await auditPage(db, filter, cursor, Math.min(EXPORT_CHUNK_ROWS, MAX_EXPORT_ROWS - written));
      controller.enqueue(encoder.encode(page.rows.map(csvLine).join("")));
      written += page.rows.length;
      cursor = page.next;
      if (cursor === null || written >= MAX_EXPORT_ROWS) done = true;
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "");
  return new Response(body, {
    headers: {
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="hatago-audit-${stamp}Z.csv"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    },
  });
}

export function csvLine(row: AuditRow): string {
  const cells = [
    row.id,
    new Date(row.at_ms).toISOString(),
    row.principal,
    row.client_id,
    row.session_id,
    row.action,
    row.server,
    row.tool,
    row.decision,
    row.reason,
    row.outcome,
    row.error_code,
    row.duration_ms,
    row.args_digest,
    row.policy_hash,
    row.subject,
    row.note,
    row.delivery,
    row.result,
    row.stream,
    row.seq,
    row.hash,
  ];
  return `${cells.map(csvCell).join(",")}\r\n`;
}

export function csvCell(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
