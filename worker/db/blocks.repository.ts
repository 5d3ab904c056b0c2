import { type Kysely, sql } from "kysely";
import type { Database } from "./database.ts";

/**
 * Blocks and revocations (migrations/0002, 0004): the admin's two kill switches. Written by the admin API
 * and the console (worker/admin/blocks.routes.ts); read on every request by the standing check
 * (worker/authz/standing.ts, through the grants query).
 */
export type BlockRow = Database["blocks"];

/** Makes (or re-words) a block. The first block's time and author stay: it has held since then. */
export async function upsertBlock(db: Kysely<Database>, row: BlockRow): Promise<void> {
  await db
    .insertInto("blocks")
    .values(row)
    .onConflict((oc) => oc.column("subject").doUpdateSet({ reason: row.reason, blocked_by: row.blocked_by }))
    .execute();
}

/** The block on exactly this subject, if any. */
export async function blockOf(db: Kysely<Database>, subject: string): Promise<BlockRow | undefined> {
  return db.selectFrom("blocks").selectAll().where("subject", "=", subject).executeTakeFirst();
}

/** Lifts a block; whether there was one. */
export async function deleteBlock(db: Kysely<Database>, subject: string): Promise<boolean> {
  const lifted = await db.deleteFrom("blocks").where("subject", "=", subject).returning("subject").execute();
  return lifted.length > 0;
}

/** The blocks in force, newest first, at most `limit`. */
export async function newestBlocks(db: Kysely<Database>, limit: number): Promise<BlockRow[]> {
  return db.selectFrom("blocks").selectAll().orderBy("blocked_at_ms", "desc").limit(limit).execute();
}

/** Every blocked subject (the console's people list marks them). */
export async function blockedSubjects(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom("blocks").select("subject").execute();
  return rows.map((r) => r.subject);
}

export async function blockCount(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom("blocks").select(sql<number>`count(*)`.as("n")).executeTakeFirst();
  return row?.n ?? 0;
}

/** Moves a subject's revocation cut-off to `row.revoked_before_ms`: every earlier sign-in stops working. */
export async function upsertRevocation(db: Kysely<Database>, row: Database["revocations"]): Promise<void> {
  await db
    .insertInto("revocations")
    .values(row)
    .onConflict((oc) =>
      oc.column("subject").doUpdateSet({
        revoked_before_ms: row.revoked_before_ms,
        reason: row.reason,
        revoked_by: row.revoked_by,
      }),
    )
    .execute();
}

/** Whether any binding, recorded session or audit row has ever named the subject (a block's typo check). */
export async function subjectIsKnown(db: Kysely<Database>, subject: string): Promise<boolean> {
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .or([
          eb.exists(eb.selectFrom("bindings").select("role").where("subject", "=", subject)),
          eb.exists(eb.selectFrom("audit_log").select("id").where("principal", "=", subject)),
          eb.exists(eb.selectFrom("audit_log").select("id").where("subject", "=", subject)),
          eb.exists(eb.selectFrom("mcp_sessions").select("session_id").where("principal", "=", subject)),
          eb.exists(
            eb
              .selectFrom(["mcp_sessions as s", sql<{ value: string }>`json_each(s.subjects)`.as("j")])
              .select(sql`1`.as("one"))
              .where(sql.ref("j.value"), "=", subject),
          ),
        ])
        .as("known"),
    ])
    .executeTakeFirst();
  return Boolean(row?.known);
}

/**
 * The blocks and revocations among a list of subjects, with one query (both tables by primary key), as
 * `('blocked', subject)` and `('revoked', subject, cut-off)` rows; authz/standing.ts folds them.
 */
export async function standingRowsOf(
  db: Kysely<Database>,
  subjects: readonly string[],
): Promise<{ kind: string; subject: string; n: number | null }[]> {
  const list = JSON.stringify([...new Set(subjects)]);
  const inList = (column: string) => sql<boolean>`${sql.ref(column)} IN (SELECT value FROM json_each(${list}))`;
  return db
    .selectFrom("blocks as b")
    .where(inList("b.subject"))
    .select([sql<string>`'blocked'`.as("kind"), "b.subject as subject", sql<number | null>`NULL`.as("n")])
    .unionAll(
      db
        .selectFrom("revocations as v")
        .where(inList("v.subject"))
        .select([sql<string>`'revoked'`.as("kind"), "v.subject as subject", "v.revoked_before_ms as n"]),
    )
    .execute();
}
