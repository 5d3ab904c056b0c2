import { CompiledQuery, type Kysely, sql } from "kysely";
import type { GrantRow } from "../../policies/decide.ts";
import { type Standing, standingFromRows } from "../authz/standing.ts";
import type { Database } from "./database.ts";

/**
 * A principal's subjects are its id, its verified email, its groups and `*`; logins keep at most MAX_GROUPS
 * groups. The query binds the whole list as ONE parameter (a JSON array read with `json_each`), so its
 * parameter count is fixed whatever the list's length: D1 binds at most 100 parameters per statement.
 */
export const MAX_SUBJECTS = 80;
/** D1's limit on bound parameters per statement (developers.cloudflare.com/d1/platform/limits). */
export const D1_MAX_BOUND_PARAMETERS = 100;
/** Role rate limits are per minute (counted in the caller's audit ledger, worker/mcp/call-guards.ts). */
export const RATE_WINDOW_MS = 60_000;
/** The audit actions that count against a rate limit: the calls that run something on a server. */
export const RATE_LIMITED_ACTIONS = ["tools/call", "execute_stdio"] as const;

/** A Streamable HTTP session as the session object recorded it (migrations/0003_mcp_sessions.sql). */
export interface SessionRecord {
  readonly createdMs: number;
  /** The client declared no sampling, elicitation or roots: its tool calls may skip the session object. */
  readonly directCalls: boolean;
  /** Per server: the bridge session this gateway session holds, and its protocol version. */
  readonly backends: ReadonlyMap<string, { readonly bridgeSessionId: string; readonly protocolVersion: string }>;
}

export interface PrincipalGrants {
  readonly rows: readonly GrantRow[];
  /** Blocks and the latest revocation cut-off among the subjects (authz/standing.ts). */
  readonly standing: Standing;
  /** The hash of the policy the rows came from, or `null` if no policy was ever seeded. */
  readonly policyHash: string | null;
  /** The principal's session `sessionId`, if one was asked for and is recorded. */
  readonly session: SessionRecord | null;
}

export interface GrantsQueryOptions {
  readonly principal?: string;
  /** Also read this session of the principal (same query). */
  readonly sessionId?: string | null;
}

/**
 * Resolves a principal (its subjects: id, email, groups) to its effective grants, its revocation
 * cut-off, the policy hash and (optionally) one of its sessions, in ONE query. The caller must treat a
 * thrown error as "deny": this function never returns partial results. (The rate limit counts calls in
 * the caller's audit ledger, worker/mcp/call-guards.ts: D1 gets their rows only after the answers.)
 */
export async function loadPrincipalGrants(
  db: Kysely<Database>,
  subjects: readonly string[],
  options: GrantsQueryOptions = {},
): Promise<PrincipalGrants> {
  const list = [...new Set([...subjects, "*"])];
  if (list.length > MAX_SUBJECTS) throw new RangeError(`a principal has at most ${MAX_SUBJECTS} subjects`);
  const principal = options.principal ?? subjects[0] ?? "";
  const result = await db.executeQuery<GrantsQueryRow>(
    compiledGrantsQuery(db, { subjects: JSON.stringify(list), principal, session: options.sessionId ?? "" }),
  );
  const rows: GrantRow[] = [];
  const standingRows: { kind: string; subject: string; n: number | null }[] = [];
  let policyHash: string | null = null;
  let session: { createdMs: number; directCalls: boolean } | null = null;
  const backends = new Map<string, { bridgeSessionId: string; protocolVersion: string }>();
  for (const row of result.rows) {
    if (row.kind === "tool" || row.kind === "server") {
      rows.push({
        kind: row.kind,
        server: row.server,
        tool: row.tool,
        level: row.level,
        rate_limit_per_minute: row.rate_limit_per_minute,
      });
    } else if (row.kind === "revoked" || row.kind === "blocked") {
      standingRows.push({ kind: row.kind, subject: row.server, n: row.n });
    } else if (row.kind === "policy") {
      policyHash = row.server;
    } else if (row.kind === "session" && row.n !== null) {
      session = { createdMs: row.n, directCalls: row.rate_limit_per_minute === 1 };
      if (row.tool !== null) backends.set(row.server, { bridgeSessionId: row.tool, protocolVersion: row.level });
    }
  }
  return {
    rows,
    standing: standingFromRows(standingRows),
    policyHash,
    session: session ? { ...session, backends } : null,
  };
}

interface GrantsQueryRow {
  readonly kind: string;
  readonly server: string;
  readonly tool: string | null;
  readonly level: string;
  readonly rate_limit_per_minute: number | null;
  readonly n: number | null;
}

interface GrantsQueryValues {
  /** JSON array of the subjects. */
  readonly subjects: string;
  readonly principal: string;
  /** The session to read, or "" for none. */
  readonly session: string;
}

/**
 * The query's SQL never changes, only its values, so kysely builds and compiles it once per isolate
 * (building and compiling was ~10% of the Worker's CPU per request, bench/RESULTS.md), with sentinel
 * parameters that are swapped for this request's values. Constant parameters stay as compiled.
 */
let compiledTemplate: CompiledQuery | null = null;
const SENTINEL = "\u0000hatago:";

export function compiledGrantsQuery(db: Kysely<Database>, values: GrantsQueryValues): CompiledQuery {
  compiledTemplate ??= buildGrantsQuery(db, {
    subjects: `${SENTINEL}subjects`,
    principal: `${SENTINEL}principal`,
    session: `${SENTINEL}session`,
  }).compile();
  const parameters = compiledTemplate.parameters.map((p) => {
    if (typeof p !== "string" || !p.startsWith(SENTINEL)) return p;
    return values[p.slice(SENTINEL.length) as keyof GrantsQueryValues];
  });
  return CompiledQuery.raw(compiledTemplate.sql, parameters);
}

/** The effective-grant query, written with kysely: six branches with the same columns, UNION ALL. */
function buildGrantsQuery(db: Kysely<Database>, v: Record<keyof GrantsQueryValues, string>) {
  const subjectIn = (column: string) =>
    sql<boolean>`${sql.ref(column)} IN (SELECT value FROM json_each(${v.subjects}))`;
  // Every branch has the same columns: kind, server, tool, level, rate_limit_per_minute, and n (a number
  // whose meaning depends on the kind: a revocation cut-off, a session's creation time).
  const tools = db
    .selectFrom("bindings as b")
    .innerJoin("role_tools as t", "t.role", "b.role")
    .innerJoin("roles as r", "r.name", "b.role")
    .where(subjectIn("b.subject"))
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
    .where(subjectIn("b.subject"))
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
    .where(subjectIn("v.subject"))
    .select([
      sql<string>`'revoked'`.as("kind"),
      "v.subject as server",
      sql<string | null>`NULL`.as("tool"),
      sql<string>`''`.as("level"),
      sql<number | null>`NULL`.as("rate_limit_per_minute"),
      sql.ref<number | null>("v.revoked_before_ms").as("n"),
    ]);
  const blocked = db
    .selectFrom("blocks as k")
    .where(subjectIn("k.subject"))
    .select([
      sql<string>`'blocked'`.as("kind"),
      "k.subject as server",
      sql<string | null>`NULL`.as("tool"),
      sql<string>`''`.as("level"),
      sql<number | null>`NULL`.as("rate_limit_per_minute"),
      sql<number | null>`NULL`.as("n"),
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
  // Primary-key lookups: the session, and one row per bridge session it holds (or one row with no bridge
  // session). With no session asked for, the session id is "" and matches nothing.
  const session = db
    .selectFrom("mcp_sessions as ms")
    .leftJoin("mcp_session_backends as mb", (join) =>
      join.onRef("mb.principal", "=", "ms.principal").onRef("mb.session_id", "=", "ms.session_id"),
    )
    .where("ms.principal", "=", v.principal)
    .where("ms.session_id", "=", v.session)
    .select([
      sql<string>`'session'`.as("kind"),
      sql<string>`coalesce(${sql.ref("mb.server")}, '')`.as("server"),
      sql.ref<string | null>("mb.bridge_session_id").as("tool"),
      sql<string>`coalesce(${sql.ref("mb.protocol_version")}, '')`.as("level"),
      sql.ref<number | null>("ms.direct_calls").as("rate_limit_per_minute"),
      sql.ref<number | null>("ms.created_ms").as("n"),
    ]);

  // D1's SQLite allows at most 5 terms per compound SELECT, so the branches are grouped in two.
  const grants = tools.unionAll(servers).unionAll(revoked).unionAll(blocked);
  const state = meta.unionAll(session);
  return db
    .selectFrom(grants.as("g"))
    .selectAll()
    .unionAll(db.selectFrom(state.as("s")).selectAll());
}
