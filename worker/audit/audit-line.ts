import type { AuditLogTable } from "../db/database.ts";

/** The columns the line shows. */
type AuditLineFields = Pick<
  AuditLogTable,
  | "at_ms"
  | "principal"
  | "client_id"
  | "action"
  | "server"
  | "tool"
  | "subject"
  | "decision"
  | "reason"
  | "outcome"
  | "error_code"
  | "duration_ms"
  | "note"
>;

/** A client id is long and random; its start is enough to tell two clients apart in a terminal. */
const CLIENT_ID_CHARS = 8;
/** Names are capped in the row already (256); a terminal line needs less. */
const NAME_CHARS = 120;

/**
 * One line per audit row (every decided request: calls, denials, admin actions, refused sign-ins), written
 * with `console.info` when the row is written. `npm start` shows it in its terminal (HATAGO_LOG=calls, the
 * default there); deployed, it lands in Workers Logs beside the audit row it mirrors. Example:
 *
 *   call 12:00:01.123 mock:bob client=Zm9vYmFy tools/call memory__create_entities allow ok 12ms
 *
 * SECURITY: terminal injection. Tool names and notes come from clients and admins; every control character
 * (ANSI escapes included) is shown as `\uXXXX`, so a name cannot move the cursor, recolour or rewrite the
 * operator's terminal. Arguments are never in the row, so never here.
 */
export function auditLine(row: AuditLineFields): string {
  const time = new Date(row.at_ms).toISOString().slice(11, 23);
  const target =
    row.server !== null && row.tool !== null
      ? `${row.server}__${row.tool}`
      : row.server !== null
        ? row.server
        : row.subject !== null
          ? `subject=${row.subject}`
          : "";
  const decision = row.decision === "allow" ? "allow" : `deny(${row.reason})`;
  const outcome =
    row.outcome === null ? "" : row.error_code === null ? row.outcome : `${row.outcome}(${row.error_code})`;
  const parts = [
    row.action.startsWith("tools/") || row.action === "execute_stdio" ? "call" : "audit",
    time,
    row.principal,
    row.client_id === null ? "" : `client=${row.client_id.slice(0, CLIENT_ID_CHARS)}`,
    row.action,
    target,
    decision,
    outcome,
    row.duration_ms === null ? "" : `${row.duration_ms}ms`,
    row.note === null ? "" : `note=${JSON.stringify(row.note)}`,
  ];
  return parts
    .filter((p) => p !== "")
    .map((p) => printable(p.slice(0, NAME_CHARS)))
    .join(" ");
}

function printable(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is replaced.
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
