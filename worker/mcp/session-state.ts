import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  type InitializeRequest,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import type { RequestContext } from "../authz/request-context.ts";
import type { Database } from "../db/database.ts";
import { recordSession } from "../db/sessions.repository.ts";
import { authInfoFor } from "./context.ts";
import { directCallsAllowed } from "./direct-call.ts";

/**
 * What a legacy session remembers across evictions, and how it comes back: its metadata in the object's
 * storage, its record in D1, and the SDK transport rebuilt by replaying the client's own initialize.
 */
export interface SessionMeta {
  readonly principal: string;
  readonly sessionId: string;
  readonly kind: "streamable" | "sse";
  /** The client's initialize params, replayed to rebuild the session after the object was evicted. */
  readonly initialize: InitializeRequest["params"];
  readonly createdAtMs: number;
  /** The caller's binding subjects when the session began (recorded in D1, so a block can find it). */
  readonly subjects?: readonly string[];
}

/** The version the SDK server negotiated: the client's if we support it, else our latest. */
export function negotiatedVersion(requested: string | undefined): string {
  return requested && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
}

/** Brings a rebuilt transport to the initialized state by replaying the client's own initialize. */
export async function replayInitialize(
  transport: WebStandardStreamableHTTPServerTransport,
  meta: SessionMeta,
  ctx: RequestContext,
): Promise<void> {
  const version = negotiatedVersion(meta.initialize.protocolVersion);
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const init = await transport.handleRequest(
    new Request("http://session/mcp", { method: "POST", headers, body: "{}" }),
    {
      parsedBody: { jsonrpc: "2.0", id: "hatago-restore", method: "initialize", params: meta.initialize },
      authInfo: authInfoFor(ctx, ""),
    },
  );
  await init.text();
  const done = await transport.handleRequest(
    new Request("http://session/mcp", {
      method: "POST",
      headers: { ...headers, "mcp-session-id": meta.sessionId, "mcp-protocol-version": version },
      body: "{}",
    }),
    { parsedBody: { jsonrpc: "2.0", method: "notifications/initialized" }, authInfo: authInfoFor(ctx, "") },
  );
  await done.text();
}

/**
 * Records the session in D1: the Worker reads Streamable HTTP records for direct tool calls, and a block
 * finds the sessions to close by them. Best effort: without the record every call takes the session
 * path (slower, otherwise the same), and a blocked caller's stream ends at its next request instead.
 */
export async function recordSessionMeta(db: Kysely<Database>, meta: SessionMeta): Promise<void> {
  const key = { principal: meta.principal, sessionId: meta.sessionId };
  const direct = meta.kind === "streamable" && directCallsAllowed(meta.initialize.capabilities);
  await recordSession(db, key, meta.createdAtMs, direct, meta.subjects ?? [meta.principal]).catch((error: unknown) =>
    console.error(JSON.stringify({ event: "session_record_failed", error: String(error) })),
  );
}
