import { CompiledQuery, type Kysely, sql } from "kysely";
import type { GrantRow } from "../../policies/decide.ts";
import type { Database } from "./database.ts";

/**
 * D1 binds at most 100 parameters per statement. A principal's subjects are its id, its verified email,
 * its groups and `*`; logins keep at most MAX_GROUPS groups so the list (plus the principal and the
 * rate window) always fits.
 */
export const MAX_SUBJECTS = 80;
/** Role rate limits are per minute. */
export const RATE_WINDOW_MS = 60_000;
/** The audit actions that count against a rate limit: the calls that run something on a server. */
export const RATE_LIMITED_ACTIONS = ["tools/call", "execute_stdio"] as const;

export interface PrincipalGrants {
  readonly rows: readonly GrantRow[];
  /** The latest revocation cut-off among the subjects (epoch ms), or `null`. */
  readonly revokedBeforeMs: number | null;
  /** The hash of the policy the rows came from, or `null` if no policy was ever seeded. */
  readonly policyHash: string | null;
  /** Allowed calls of this principal in the last RATE_WINDOW_MS, counted from the audit log. */
  readonly callsInWindow: number;
}

/**
 * Resolves a principal (its subjects: id, email, groups) to its effective grants, its revocation
 * cut-off, the policy hash and its recent call count, in ONE query. The caller must treat a thrown error
 * as "deny": this function never returns partial results.
 */
export async function loadPrincipalGrants(
  db: Kysely<Database>,
  subjects: readonly string[],
  principal: string = subjects[0] ?? "",
  nowMs: number = Date.now(),
): Promise<PrincipalGrants> {
  const list = [...new Set([...subjects, "*"])];
  if (list.length > MAX_SUBJECTS) throw new RangeError(`a principal has at most ${MAX_SUBJECTS} subjects`);
  const result = await db.executeQuery<GrantsQueryRow>(
    compiledGrantsQuery(db, list.length, list, principal, nowMs - RATE_WINDOW_MS),
  );
  const rows: GrantRow[] = [];
  let revokedBeforeMs: number | null = null;
  let policyHash: string | null = null;
  let callsInWindow = 0;
  for (const row of result.rows) {
    if (row.kind === "tool" || row.kind === "server") {
      rows.push({
        kind: row.kind,
        server: row.server,
        tool: row.tool,
        level: row.level,
        rate_limit_per_minute: row.rate_limit_per_minute,
      });
    } else if (row.kind === "revoked" && row.n !== null) {
      revokedBeforeMs = Math.max(revokedBeforeMs ?? 0, row.n);
    } else if (row.kind === "policy") {
      policyHash = row.server;
    } else if (row.kind === "calls") {
      callsInWindow = row.n ?? 0;
    }
  }
  return { rows, revokedBeforeMs, policyHash, callsInWindow };
}

interface GrantsQueryRow {
  readonly kind: string;
  readonly server: string;
  readonly tool: string | null;
  readonly level: string;
  readonly rate_limit_per_minute: number | null;
  readonly n: number | null;
}

/**
 * The query's SQL depends only on how many subjects it binds, so it is built and compiled once per count
 * (kysely's building and compiling was ~10% of the Worker's CPU per request, bench/RESULTS.md), with
 * sentinel parameters that are swapped for this request's values. Constant parameters stay as compiled.
 */
const compiledBySubjectCount = new Map<number, CompiledQuery>();
const SUBJECT_SENTINEL = "\u0000hatago-subject:";
const PRINCIPAL_SENTINEL = "\u0000hatago-principal";
const SINCE_SENTINEL = "\u0000hatago-since";

function compiledGrantsQuery(
  db: Kysely<Database>,
  count: number,
  subjects: readonly string[],
  principal: string,
  sinceMs: number,
): CompiledQuery {
  let template = compiledBySubjectCount.get(count);
  if (!template) {
    const placeholders = Array.from({ length: count }, (_, i) => `${SUBJECT_SENTINEL}${i}`);
    template = buildGrantsQuery(db, placeholders, PRINCIPAL_SENTINEL, SINCE_SENTINEL).compile();
    compiledBySubjectCount.set(count, template);
  }
  const parameters = template.parameters.map((p) => {
    if (p === PRINCIPAL_SENTINEL) return principal;
    if (p === SINCE_SENTINEL) return sinceMs;
    if (typeof p === "string" && p.startsWith(SUBJECT_SENTINEL))
      return subjects[Number(p.slice(SUBJECT_SENTINEL.length))];
    return p;
  });
  return CompiledQuery.raw(template.sql, parameters);
}

/** The effective-grant query, written with kysely: five branches with the same columns, UNION ALL. */
function buildGrantsQuery(db: Kysely<Database>, list: readonly string[], principal: string, since: string | number) {
  // Every branch has the same columns: kind, server, tool, level, rate_limit_per_minute, and n (a number
  // whose meaning depends on the kind: a revocation cut-off, or a call count).
  const tools = db
    .selectFrom("bindings as b")
    .innerJoin("role_tools as t", "t.role", "b.role")
    .innerJoin("roles as r", "r.name", "b.role")
    .where("b.subject", "in", list)
    .select([
      sql<string>`'tool'`.as("kind"),
      "t.server as server",
      sql.ref<string | null>("t.tool").as("tool"),
      "t.level as level",
      "r.rate_limit_per_minute as rate_limit_per_minute",
      sql<number | null>`NULL`.as("n"),
    ]);
  const servers = db
    .selectFrom("bindings as b")
    .innerJoin("role_servers as s", "s.role", "b.role")
    .innerJoin("roles as r", "r.name", "b.role")
    .where("b.subject", "in", list)
    .select([
      sql<string>`'server'`.as("kind"),
      "s.server as server",
      sql<string | null>`NULL`.as("tool"),
      "s.level as level",
      "r.rate_limit_per_minute as rate_limit_per_minute",
      sql<number | null>`NULL`.as("n"),
    ]);
  const revoked = db
    .selectFrom("revocations as v")
    .where("v.subject", "in", list)
    .select([
      sql<string>`'revoked'`.as("kind"),
      "v.subject as server",
      sql<string | null>`NULL`.as("tool"),
      sql<string>`''`.as("level"),
      sql<number | null>`NULL`.as("rate_limit_per_minute"),
      sql.ref<number | null>("v.revoked_before_ms").as("n"),
    ]);
  const meta = db
    .selectFrom("policy_meta as m")
    .where("m.key", "=", "hash")
    .select([
      sql<string>`'policy'`.as("kind"),
      "m.value as server",
      sql<string | null>`NULL`.as("tool"),
      sql<string>`''`.as("level"),
      sql<number | null>`NULL`.as("rate_limit_per_minute"),
      sql<number | null>`NULL`.as("n"),
    ]);
  // A range scan of the (principal, at_ms) index: at most one minute of this principal's rows.
  const calls = db
    .selectFrom("audit_log as a")
    .where("a.principal", "=", principal)
    .where("a.at_ms", ">", since as number)
    .where("a.decision", "=", "allow")
    .where("a.action", "in", RATE_LIMITED_ACTIONS)
    .select([
      sql<string>`'calls'`.as("kind"),
      sql<string>`''`.as("server"),
      sql<string | null>`NULL`.as("tool"),
      sql<string>`''`.as("level"),
      sql<number | null>`NULL`.as("rate_limit_per_minute"),
      sql<number | null>`count(*)`.as("n"),
    ]);

  return tools.unionAll(servers).unionAll(revoked).unionAll(meta).unionAll(calls);
}
