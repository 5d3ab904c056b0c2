import { z } from "zod";
import { type AuditCursor, OUTCOME_FILTERS } from "../db/audit-log.repository.ts";

/** Rows per console page: a screenful to scan by eye. */
export const AUDIT_PAGE_ROWS = 50;
/** Rows per CSV export: a month of a small team's calls; the export says when it stopped short. */
export const MAX_EXPORT_ROWS = 50_000;

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

export function cursorOf(text: string | undefined): AuditCursor | null {
  if (!text) return null;
  const [at, id] = text.split(".").map(Number);
  return at !== undefined && id !== undefined && Number.isSafeInteger(at) && Number.isSafeInteger(id)
    ? { atMs: at, id }
    : null;
}

export const cursorText = (c: AuditCursor) => `${c.atMs}.${c.id}`;
