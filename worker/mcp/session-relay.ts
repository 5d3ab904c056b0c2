import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Kysely } from "kysely";
import type { ServerId } from "../../policies/catalog.ts";
import type { Database } from "../db/database.ts";
import { recordBackend, type SessionKey } from "../db/sessions.repository.ts";
import type { BackendHooks } from "./backends.ts";
import { qualifyUri } from "./names.ts";

/** What the relay needs of its session. */
export interface RelayDeps {
  /** The session's client requests in flight per server: a server's own request relates to the latest. */
  readonly inFlight: ReadonlyMap<ServerId, readonly (string | number)[]>;
  readonly db: Kysely<Database>;
  readonly key: SessionKey;
  /** Whether the bridge sessions this session opens are recorded for direct calls (Streamable HTTP only). */
  readonly recordsBackends: () => boolean;
}

/**
 * A legacy session's relay: what backend servers send on their own initiative (list changes, resource
 * updates, log lines) and what they ask of the client mid-call (sampling, elicitation, roots), passed to
 * this session's client under the gateway's names. The 2026-07-28 path relays the same through
 * InputRequiredResults (modern/call.ts) and subscriptions/listen (modern/listen.ts).
 */
export function relayHooks(server: Server, deps: RelayDeps): BackendHooks {
  const related = (s: ServerId) => {
    const ids = deps.inFlight.get(s) ?? [];
    return ids.length > 0 ? { relatedRequestId: ids[ids.length - 1] } : {};
  };
  const quiet = (p: Promise<unknown>) => void p.catch(() => {});
  return {
    opened: async (s, bridgeSessionId, protocolVersion) => {
      // Streamable sessions only: the Worker sends direct calls for those alone.
      if (!deps.recordsBackends()) return;
      await recordBackend(deps.db, deps.key, s, bridgeSessionId, protocolVersion).catch((error: unknown) =>
        console.error(JSON.stringify({ event: "session_record_failed", server: s, error: String(error) })),
      );
    },
    toolsChanged: () => quiet(server.sendToolListChanged()),
    resourcesChanged: () => quiet(server.sendResourceListChanged()),
    promptsChanged: () => quiet(server.sendPromptListChanged()),
    resourceUpdated: (s, uri) => quiet(server.sendResourceUpdated({ uri: qualifyUri(s, uri) })),
    log: (s, params) =>
      quiet(server.sendLoggingMessage({ ...params, logger: params.logger ? `${s}/${params.logger}` : s })),
    sampling: (s, params, signal) => server.createMessage(params, { signal, ...related(s) }),
    elicitation: (s, params, signal) =>
      server.elicitInput(params as Parameters<Server["elicitInput"]>[0], { signal, ...related(s) }),
    roots: (s, signal) => server.listRoots(undefined, { signal, ...related(s) }),
  };
}
