import { type Kysely, sql } from "kysely";
import type { GrantRow } from "../../policies/decide.ts";
import type { Database } from "./database.ts";

/**
 * D1 binds at most 100 parameters per statement. A principal's subjects are its id, its verified email,
 * its groups and `*`; logins keep at most MAX_GROUPS groups so the list always fits.
 */
export const MAX_SUBJECTS = 80;

export interface PrincipalGrants {
  readonly rows: readonly GrantRow[];
  /** The latest revocation cut-off among the subjects (epoch ms), or `null`. */
  readonly revokedBeforeMs: number | null;
  /** The hash of the policy the rows came from, or `null` if no policy was ever seeded. */
  readonly policyHash: string | null;
}

/**
 * Resolves a principal (its subjects: id, email, groups) to its effective grants, its revocation
 * cut-off and the policy hash, in ONE query. The caller must treat a thrown error as "deny": this
 * function never returns partial results.
 */
export async function loadPrincipalGrants(db: Kysely<Database>, subjects: readonly string[]): Promise<PrincipalGrants> {
  const list = [...new Set([...subjects, "*"])];
  if (list.length > MAX_SUBJECTS) throw new RangeError(`a principal has at most ${MAX_SUBJECTS} subjects`);

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
      sql<number | null>`NULL`.as("revoked_before_ms"),
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
      sql<number | null>`NULL`.as("revoked_before_ms"),
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
      sql.ref<number | null>("v.revoked_before_ms").as("revoked_before_ms"),
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
      sql<number | null>`NULL`.as("revoked_before_ms"),
    ]);

  const result = await tools.unionAll(servers).unionAll(revoked).unionAll(meta).execute();
  const rows: GrantRow[] = [];
  let revokedBeforeMs: number | null = null;
  let policyHash: string | null = null;
  for (const row of result) {
    if (row.kind === "tool" || row.kind === "server") {
      rows.push({
        kind: row.kind,
        server: row.server,
        tool: row.tool,
        level: row.level,
        rate_limit_per_minute: row.rate_limit_per_minute,
      });
    } else if (row.kind === "revoked" && row.revoked_before_ms !== null) {
      revokedBeforeMs = Math.max(revokedBeforeMs ?? 0, row.revoked_before_ms);
    } else if (row.kind === "policy") {
      policyHash = row.server;
    }
  }
  return { rows, revokedBeforeMs, policyHash };
}
