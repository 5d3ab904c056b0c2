import { type Kysely, sql } from "kysely";
import { POLICY_SOURCE_KEY, type PolicySource } from "../../policies/compile.ts";
import type { Database } from "./database.ts";

/**
 * The deployed policy as the console reads it (migrations/0001_policy.sql; seeded by the compiler on
 * every deployment). The grants query of a call lives in grants.repository.ts; these are the reads that
 * explain and describe it.
 */

/** `policy_meta` as a map (`hash`, `environment`, `source`, …): a handful of rows. */
export async function policyMeta(db: Kysely<Database>): Promise<ReadonlyMap<string, string>> {
  const rows = await db.selectFrom("policy_meta").selectAll().execute();
  return new Map(rows.map((r) => [r.key, r.value]));
}

/**
 * The deployed policy's own words (seeded with it: policies/compile.ts, `policy_meta` "source"), or null
 * when the seed predates them or they do not parse. Read from D1 rather than imported: a policy change
 * must re-seed D1 and redeploy nothing (DESIGN.md; test/infra/bundle-inputs.test.ts).
 */
export async function deployedPolicySource(db: Kysely<Database>): Promise<PolicySource | null> {
  const row = await db
    .selectFrom("policy_meta")
    .select("value")
    .where("key", "=", POLICY_SOURCE_KEY)
    .executeTakeFirst();
  if (!row) return null;
  try {
    return JSON.parse(row.value) as PolicySource;
  } catch {
    return null;
  }
}

/** Every subject a binding names (`*` included), once each. */
export async function boundSubjects(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom("bindings").select("subject").distinct().execute();
  return rows.map((r) => r.subject);
}

/** A role's grant that reaches a subject through one of its bindings. */
export interface BoundToolGrant {
  readonly subject: string;
  readonly role: string;
  readonly server: string;
  readonly tool: string;
  readonly level: string;
}
export interface BoundServerGrant {
  readonly subject: string;
  readonly role: string;
  readonly server: string;
  readonly level: string;
}

/**
 * The grant rows behind a set of subjects' decisions (their bindings and `*`'s): per tool (materialized
 * by the compiler) and server-wide. The console quotes them as the reasons of an allow.
 */
export async function grantRowsOf(
  db: Kysely<Database>,
  subjects: readonly string[],
): Promise<{ tools: BoundToolGrant[]; servers: BoundServerGrant[] }> {
  const list = JSON.stringify([...new Set([...subjects, "*"])]);
  const inList = sql<boolean>`b.subject IN (SELECT value FROM json_each(${list}))`;
  const [tools, servers] = await Promise.all([
    db
      .selectFrom("bindings as b")
      .innerJoin("role_tools as rt", "rt.role", "b.role")
      .where(inList)
      .select(["b.subject", "b.role", "rt.server", "rt.tool", "rt.level"])
      .execute(),
    db
      .selectFrom("bindings as b")
      .innerJoin("role_servers as rs", "rs.role", "b.role")
      .where(inList)
      .select(["b.subject", "b.role", "rs.server", "rs.level"])
      .execute(),
  ]);
  return { tools, servers };
}
