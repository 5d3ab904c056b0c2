import type { Kysely } from "kysely";
import type { Environment } from "../../policies/policy.types.ts";
import { isGroupSubject, subjectKind } from "../../policies/subjects.ts";
import { auditedPrincipals } from "../db/audit-log.repository.ts";
import { blockedSubjects } from "../db/blocks.repository.ts";
import type { Database } from "../db/database.ts";
import { boundSubjects, deployedPolicySource } from "../db/policy.repository.ts";

/** Distinct principals read from the audit log at most; an organisation with more searches instead of scrolling. */
export const MAX_AUDIT_PRINCIPALS = 2_000;

/** A subject the console knows, and where it was seen. */
export interface KnownSubject {
  readonly subject: string;
  /** The binding's note in the repository's policy (`"Bob, engineer"`): a name to search by. */
  readonly note: string | null;
  readonly bound: boolean;
  readonly inAudit: boolean;
  readonly blocked: boolean;
  readonly group: boolean;
}

/**
 * Every principal and group the policy names (the `bindings` table, as deployed), every principal seen in
 * the audit log, and every blocked subject. The audit's principals are read with a skip scan of the
 * `(principal, at_ms)` index (one index seek per distinct principal, never a scan of the log), so it stays
 * fast at millions of rows.
 */
export async function knownSubjects(db: Kysely<Database>, _environment: Environment): Promise<KnownSubject[]> {
  const [bindings, audited, blocks] = await Promise.all([
    boundSubjects(db),
    auditedPrincipals(db, MAX_AUDIT_PRINCIPALS),
    blockedSubjects(db),
  ]);
  const source = await deployedPolicySource(db);
  const notes = new Map<string, string | null>(Object.entries(source?.notes ?? {}));
  const bound = new Set(bindings.filter((s) => s !== "*"));
  const inAudit = new Set(audited);
  const blocked = new Set(blocks);
  const all = [...new Set([...bound, ...inAudit, ...blocked])].sort();
  return all.map((subject) => ({
    subject,
    note: notes.get(subject) ?? null,
    bound: bound.has(subject),
    inAudit: inAudit.has(subject),
    blocked: blocked.has(subject),
    group: isGroupSubject(subject),
  }));
}

/** Case-insensitive search by any part of a subject (principal, email, group) or of its binding's note. */
export function searchSubjects(subjects: readonly KnownSubject[], query: string): KnownSubject[] {
  const q = query.trim().toLowerCase();
  if (q === "") return [...subjects];
  return subjects.filter((s) => s.subject.toLowerCase().includes(q) || (s.note?.toLowerCase().includes(q) ?? false));
}

/**
 * A person typed into a filter, as the principal to filter by: an exact subject as is; otherwise the one
 * known principal it is part of (`alice` → `mock:alice`). Several or none: the caller shows the choices.
 */
export function resolvePrincipal(
  subjects: readonly KnownSubject[],
  typed: string,
): { principal: string } | { choices: KnownSubject[] } {
  if (subjectKind(typed) !== null && !isGroupSubject(typed) && !typed.startsWith("email:")) return { principal: typed };
  const matches = searchSubjects(subjects, typed).filter((s) => !s.group && !s.subject.startsWith("email:"));
  const only = matches.length === 1 ? matches[0] : undefined;
  return only ? { principal: only.subject } : { choices: matches };
}
