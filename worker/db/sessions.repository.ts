import type { Kysely } from "kysely";
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

/** Records (or re-records, after the object was rebuilt) a Streamable HTTP session. */
export async function recordSession(
  db: Kysely<Database>,
  key: SessionKey,
  createdMs: number,
  directCalls: boolean,
): Promise<void> {
  const row = {
    principal: key.principal,
    session_id: key.sessionId,
    created_ms: createdMs,
    direct_calls: directCalls ? 1 : 0,
  };
  await db
    .insertInto("mcp_sessions")
    .values(row)
    .onConflict((oc) =>
      oc.columns(["principal", "session_id"]).doUpdateSet({ created_ms: createdMs, direct_calls: row.direct_calls }),
    )
    .execute();
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
