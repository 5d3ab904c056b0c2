import { type Kysely, sql } from "kysely";
import type { Database } from "./database.ts";

/**
 * The session records the Worker reads to send tool calls straight to a container
 * (migrations/0003_mcp_sessions.sql). Only the session Durable Object writes them; the grants query reads
 * them (worker/db/grants.repository.ts).
 */
export interface SessionKey {
  readonly principal: string;
  readonly sessionId: string;
}

/**
 * Records (or re-records, after the object was rebuilt) a session: Streamable HTTP sessions for direct
 * calls, SSE sessions (never direct) so that a block can find and close them. `subjects` are the
 * caller's binding subjects, so a block of an email or a group finds the sessions it covers.
 */
export async function recordSession(
  db: Kysely<Database>,
  key: SessionKey,
  createdMs: number,
  directCalls: boolean,
  subjects: readonly string[],
): Promise<void> {
  const row = {
    principal: key.principal,
    session_id: key.sessionId,
    created_ms: createdMs,
    direct_calls: directCalls ? 1 : 0,
    subjects: JSON.stringify(subjects),
  };
  await db
    .insertInto("mcp_sessions")
    .values(row)
    .onConflict((oc) =>
      oc
        .columns(["principal", "session_id"])
        .doUpdateSet({ created_ms: createdMs, direct_calls: row.direct_calls, subjects: row.subjects }),
    )
    .execute();
}

/** Recorded sessions more than this many at once are closed by their own next request instead. */
export const MAX_SESSIONS_CLOSED_AT_ONCE = 1_000;

/**
 * The recorded sessions a subject covers: the principal's own, and those whose caller carried that
 * email or group. A full scan of `mcp_sessions` for email and group subjects: it holds live sessions
 * only (rows are deleted when a session ends), and a block is rare.
 */
export async function sessionsCoveredBy(db: Kysely<Database>, subject: string): Promise<SessionKey[]> {
  const rows = await db
    .selectFrom("mcp_sessions as s")
    .where((eb) =>
      eb.or([
        eb("s.principal", "=", subject),
        eb.exists(
          eb
            .selectFrom(sql<{ value: string }>`json_each(${sql.ref("s.subjects")})`.as("j"))
            .select(sql`1`.as("one"))
            .where(sql.ref("j.value"), "=", subject),
        ),
      ]),
    )
    .select(["s.principal", "s.session_id"])
    .limit(MAX_SESSIONS_CLOSED_AT_ONCE)
    .execute();
  return rows.map((r) => ({ principal: r.principal, sessionId: r.session_id }));
}

/** Records the bridge session a gateway session opened on one server. */
export async function recordBackend(
  db: Kysely<Database>,
  key: SessionKey,
  server: string,
  bridgeSessionId: string,
  protocolVersion: string,
): Promise<void> {
  await db
    .insertInto("mcp_session_backends")
    .values({
      principal: key.principal,
      session_id: key.sessionId,
      server,
      bridge_session_id: bridgeSessionId,
      protocol_version: protocolVersion,
    })
    .onConflict((oc) =>
      oc
        .columns(["principal", "session_id", "server"])
        .doUpdateSet({ bridge_session_id: bridgeSessionId, protocol_version: protocolVersion }),
    )
    .execute();
}

/** Forgets one bridge session of a gateway session (the bridge no longer knows it). */
export async function forgetBackend(
  db: Kysely<Database>,
  key: SessionKey,
  server: string,
  bridgeSessionId: string,
): Promise<void> {
  await db
    .deleteFrom("mcp_session_backends")
    .where("principal", "=", key.principal)
    .where("session_id", "=", key.sessionId)
    .where("server", "=", server)
    .where("bridge_session_id", "=", bridgeSessionId)
    .execute();
}

/**
 * Forgets a session and its bridge sessions (it ended). The session row goes first: without it the Worker
 * sends nothing straight to a container, so a failure between the two leaves only unused rows behind.
 */
export async function forgetSession(db: Kysely<Database>, key: SessionKey): Promise<void> {
  await db
    .deleteFrom("mcp_sessions")
    .where("principal", "=", key.principal)
    .where("session_id", "=", key.sessionId)
    .execute();
  await db
    .deleteFrom("mcp_session_backends")
    .where("principal", "=", key.principal)
    .where("session_id", "=", key.sessionId)
    .execute();
}

/**
 * The newest recorded session of a principal: its binding subjects (a JSON array, as recorded) and when
 * it began. The console learns a person's emails and groups only from a sign-in, so from here.
 */
export async function latestSessionOf(
  db: Kysely<Database>,
  principal: string,
): Promise<{ subjects: string; created_ms: number } | undefined> {
  return db
    .selectFrom("mcp_sessions")
    .select(["subjects", "created_ms"])
    .where("principal", "=", principal)
    .orderBy("created_ms", "desc")
    .limit(1)
    .executeTakeFirst();
}
