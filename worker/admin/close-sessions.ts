import type { Kysely } from "kysely";
import type { Database } from "../db/database.ts";
import { sessionsCoveredBy } from "../db/sessions.repository.ts";
import { sessionObjectName } from "../mcp/internal.ts";

/** The session object's one method the admin API calls (worker/mcp/session.ts, `McpSession.end`). */
interface EndableSession {
  end(): Promise<void>;
}

/**
 * Ends every recorded session a subject covers, so a blocked or revoked person's open GET or SSE stream
 * closes now instead of at its next request. Resolves to how many sessions were ended. A session whose
 * object cannot be reached is counted as not ended; its next request is refused by the standing check
 * anyway (authz/request-context.ts), so nothing is served to the person either way.
 */
export async function closeSessionsOf(
  db: Kysely<Database>,
  sessions: DurableObjectNamespace | undefined,
  subject: string,
): Promise<number> {
  if (!sessions) return 0;
  const keys = await sessionsCoveredBy(db, subject);
  const ended = await Promise.allSettled(
    keys.map((key) => {
      const stub = sessions.get(sessions.idFromName(sessionObjectName(key.principal, key.sessionId)));
      return (stub as unknown as EndableSession).end();
    }),
  );
  for (const result of ended) {
    if (result.status === "rejected")
      console.error(JSON.stringify({ event: "session_close_failed", error: String(result.reason) }));
  }
  return ended.filter((r) => r.status === "fulfilled").length;
}
