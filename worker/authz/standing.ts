import type { Kysely } from "kysely";
import { standingRowsOf } from "../db/blocks.repository.ts";
import type { Database } from "../db/database.ts";

/**
 * A signed-in person's standing: whether any of their binding subjects is blocked, and the latest
 * revocation cut-off among them. One rule, used on every path that accepts a sign-in: the grants query
 * (tool calls, lists, admin), requests that read no grants (notifications, DELETE, /api), the upstream
 * sign-in callback and the token refresh.
 *
 * - A **block** (`blocks`) holds until an admin lifts it: no sign-in, no refresh, 401 everywhere.
 * - A **revocation** (`revocations`) ends the sign-ins made before its cut-off; signing in again works.
 */
export interface Standing {
  /** The blocked subjects among the person's, sorted; empty when none is blocked. */
  readonly blockedSubjects: readonly string[];
  /** The latest revocation cut-off among the subjects (epoch ms), or `null`. */
  readonly revokedBeforeMs: number | null;
}

export type StandingVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly why: "blocked" | "revoked"; readonly publicMessage: string };

/**
 * SECURITY: the one decision on standing. `authenticatedAtMs` is when the person signed in upstream (the
 * grant's props); a sign-in that is happening now passes `Date.now()`.
 */
export function judgeStanding(standing: Standing, authenticatedAtMs: number): StandingVerdict {
  if (standing.blockedSubjects.length > 0) {
    return { ok: false, why: "blocked", publicMessage: "Your access has been blocked by an administrator." };
  }
  if (standing.revokedBeforeMs !== null && authenticatedAtMs < standing.revokedBeforeMs) {
    return { ok: false, why: "revoked", publicMessage: "Access for this sign-in was revoked; sign in again." };
  }
  return { ok: true };
}

/**
 * Reads the standing of a list of subjects with one query (both tables by primary key). Requests that
 * read grants get the same facts from the grants query instead (db/grants.repository.ts).
 */
export async function loadStanding(db: Kysely<Database>, subjects: readonly string[]): Promise<Standing> {
  return standingFromRows(await standingRowsOf(db, subjects));
}

/** Folds `('blocked', subject)` and `('revoked', subject, cut-off)` rows into a standing. */
export function standingFromRows(
  rows: readonly { readonly kind: string; readonly subject: string; readonly n: number | null }[],
): Standing {
  const blocked: string[] = [];
  let revokedBeforeMs: number | null = null;
  for (const row of rows) {
    if (row.kind === "blocked") blocked.push(row.subject);
    else if (row.kind === "revoked" && row.n !== null) revokedBeforeMs = Math.max(revokedBeforeMs ?? 0, row.n);
  }
  return { blockedSubjects: blocked.sort(), revokedBeforeMs };
}
