import {
  type CallToolRequest,
  type ClientCapabilities,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { type BridgeKey, bridgeMcpPath } from "../../container/src/contract.ts";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import type { ServerId } from "../../policies/catalog.ts";
import { declaredCapabilities } from "../../policies/client-capabilities.ts";
import { type AuditLog, argsDigest } from "../audit/audit.ts";
import { type DecisionCache, wasReused } from "../authz/decision-cache.ts";
import { type Caller, loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import { bridgeFetchFor } from "../bridge/router.ts";
import type { Database } from "../db/database.ts";
import { forgetBackend } from "../db/sessions.repository.ts";
import { auditedRequestOf, auditedRequestProblem } from "./audited.ts";
import { parseQualifiedName } from "./names.ts";
import { SESSION_MAX_AGE_MS } from "./settings.ts";
import { answerMessage, callTool, outcomeOfReply, type SendCall, type SendOutcome } from "./tool-call.ts";

/**
 * Direct tool calls: the Worker sends a `tools/call` straight to the server's container (one Durable
 * Object hop) instead of through the session's Durable Object and then the container (two).
 *
 * The session object still owns the session: it answers initialize and the lists, holds the GET stream,
 * opens the bridge sessions and records them in D1 (migrations/0003_mcp_sessions.sql). The Worker reads
 * that record in the same D1 query as the caller's grants and uses the session's own bridge session, so a
 * direct call is the same call on the same bridge session as one made by the session object.
 *
 * A call takes this path only when nothing about it needs the session object:
 * - the client declared no sampling, elicitation or roots (a server→client request during the call would
 *   need the call's own stream, which the session object holds); sessions of such clients get session ids
 *   starting with DIRECT_SESSION_PREFIX, so other sessions never pay for the D1 read twice;
 * - no progress was asked for (progress travels on the call's stream);
 * - the tool is in the catalog snapshot (its decision needs no live annotations);
 * - the session is recorded, alive, and already has a bridge session for that server.
 * Everything else (and a bridge that no longer knows the session) goes through the session object, which
 * answers exactly as before. Messages the server sends during a direct call that are not its answer (log
 * lines) reach the client on its GET stream, through the session object.
 */
export const DIRECT_SESSION_PREFIX = "d-";

/** Whether a client with these capabilities can have its tool calls sent straight to the container. */
export function directCallsAllowed(capabilities: ClientCapabilities | undefined): boolean {
  return !capabilities?.sampling && !capabilities?.elicitation && !capabilities?.roots;
}

/** What a direct session's client declared: none of the capabilities tools are gated on. */
const NOTHING_DECLARED = declaredCapabilities({});

/** A `tools/call` that may take the direct path, as the client sent it. */
export interface DirectCall {
  readonly id: string | number;
  readonly name: string;
  readonly server: ServerId;
  readonly tool: string;
  /** The call's params as the client sent them (the one tool call renames and strips `_meta`). */
  readonly params: CallToolRequest["params"];
  readonly arguments: unknown;
}

/**
 * Whether the SDK's Streamable HTTP transport would take this POST at all (Accept, protocol version): what
 * it refuses (406, 400) before any handler is left to it, on every path.
 */
export function streamableTransportAccepts(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) return false;
  const version = request.headers.get("mcp-protocol-version");
  return version === null || SUPPORTED_PROTOCOL_VERSIONS.includes(version);
}

/** The request as a direct call, or `null` when it must go through the session object. */
export function directCallOf(request: Request, sessionId: string, body: unknown): DirectCall | null {
  if (!sessionId.startsWith(DIRECT_SESSION_PREFIX)) return null;
  if (!streamableTransportAccepts(request)) return null;
  // Only a valid call: one the session object would refuse (bad params, nested too deep) is refused
  // there, after its decision and with its audit row (audited.ts), exactly as on any other session.
  const call = auditedRequestOf(body);
  if (call?.method !== "tools/call" || auditedRequestProblem(call) !== null) return null;
  const { id, params } = call;
  const { name, arguments: args, _meta, ...rest } = params;
  if (typeof name !== "string") return null;
  if (args !== undefined && !isPlainObject(args)) return null;
  if (_meta !== undefined && (!isPlainObject(_meta) || _meta.progressToken !== undefined)) return null;
  const target = parseQualifiedName(name);
  if (!target) return null;
  const known: Readonly<Record<string, unknown>> = catalogSnapshot[target.server].tools;
  if (!Object.hasOwn(known, target.name)) return null;
  const sent: CallToolRequest["params"] =
    args === undefined ? { ...rest, name } : { ...rest, name, arguments: args as Record<string, unknown> };
  return { id, name, server: target.server, tool: target.name, params: sent, arguments: args ?? {} };
}

export interface DirectCallDeps {
  readonly db: Kysely<Database>;
  readonly audit: AuditLog;
  readonly keys: () => Promise<{ readonly bridge: BridgeKey; readonly audit: CryptoKey }>;
  readonly insecureDevBridgeUrl: string | null;
  readonly containers: DurableObjectNamespace | undefined;
  /**
   * Decision facts reused within a bound (authz/decision-cache.ts); absent: D1 is read on every call.
   * SECURITY: the bound is what a block or a re-seed waits for at most on this path.
   */
  readonly decisions?: DecisionCache;
}

/**
 * Runs a direct call: the caller's grants and session in one D1 read, then the one tool call
 * (tool-call.ts), sent on the session's own bridge session. Resolves to `null` when the session object
 * has to take the request after all (nothing was sent to a server and nothing audited in that case).
 */
export async function runDirectCall(
  deps: DirectCallDeps,
  caller: Caller,
  sessionId: string,
  call: DirectCall,
): Promise<Response | null> {
  // The arguments' digest does not depend on the D1 read: both run at once.
  const keys = deps.keys();
  const digest = keys.then((k) => argsDigest(k.audit, call.arguments));
  digest.catch(() => {});
  const cache = deps.decisions;
  let ctx = await loadRequestContext(deps.db, caller, sessionId, cache ? { cache } : {});
  let backend = directBackend(ctx, call.server);
  // A reused session record may predate the bridge session the session object opened since: read it again
  // before sending the call the long way (once; a record read for this request is what D1 says).
  if (!backend && cache && wasReused(ctx)) {
    ctx = await loadRequestContext(deps.db, caller, sessionId, { cache, fresh: true });
    backend = directBackend(ctx, call.server);
  }
  if (!backend) return null;
  const { bridge, audit } = await keys;
  const fetchBridge = bridgeFetchFor(
    { key: bridge, insecureDevBridgeUrl: deps.insecureDevBridgeUrl, containers: deps.containers },
    caller.principal,
  );
  const coreDeps = {
    audit: deps.audit,
    auditKey: audit,
    // Only snapshot tools take this path (directCallOf), and execute_stdio never does: neither is asked.
    liveTools: () => Promise.reject(new Error("the direct path lists no tools")),
    execute: () => Promise.reject(new Error("the direct path runs no execute_stdio")),
  };
  const send: SendCall = (server, params) =>
    sendOnBridgeSession(deps, fetchBridge, { principal: caller.principal, sessionId }, server, backend, params);
  // Only a client that declared no sampling, elicitation or roots has a direct session (directCallsAllowed).
  const answer = await callTool(coreDeps, ctx, call.params, send, { digest, declared: NOTHING_DECLARED });
  if (answer.kind === "not_sent") {
    // The record named a bridge session the bridge no longer knows: the next call reads it again.
    cache?.drop(caller);
    return null;
  }
  return new Response(JSON.stringify(answerMessage(call.id, answer)), {
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-store", "mcp-session-id": sessionId },
  });
}

/** The session's bridge session for `server`, if the session is recorded, direct, alive and has one. */
function directBackend(ctx: RequestContext, server: ServerId) {
  const session = ctx.session;
  if (!session?.directCalls || Date.now() - session.createdMs >= SESSION_MAX_AGE_MS) return undefined;
  return session.backends.get(server);
}

/** Internal request ids never collide with the ids the session object's own client uses on the same session. */
const DIRECT_ID_PREFIX = "hatago-direct:";

/** How the direct path sends: one JSON POST on the session's own bridge session. */
async function sendOnBridgeSession(
  deps: DirectCallDeps,
  fetchBridge: ReturnType<typeof bridgeFetchFor>,
  session: { readonly principal: string; readonly sessionId: string },
  server: ServerId,
  backend: { readonly bridgeSessionId: string; readonly protocolVersion: string },
  params: CallToolRequest["params"],
): Promise<SendOutcome> {
  const internalId = `${DIRECT_ID_PREFIX}${crypto.randomUUID()}`;
  const response = await fetchBridge(server, bridgeMcpPath(server), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      // JSON only: anything the server says during the call besides its answer goes to the GET stream.
      accept: "application/json",
      "mcp-session-id": backend.bridgeSessionId,
      "mcp-protocol-version": backend.protocolVersion,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: internalId, method: "tools/call", params }),
  });
  if (response.status === 404) {
    // The bridge no longer knows this session (idle, or a new container): the session object reconnects.
    await response.body?.cancel();
    await forgetBackend(deps.db, session, server, backend.bridgeSessionId).catch(() => {});
    return { kind: "not_sent" };
  }
  const text = await response.text();
  if (!response.ok) return { kind: "unavailable", cause: `bridge answered ${response.status}: ${text.slice(0, 200)}` };
  return outcomeOfReply(JSON.parse(text), internalId);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
