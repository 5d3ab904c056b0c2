import { type ClientCapabilities, ErrorCode, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { type BridgeKey, bridgeMcpPath } from "../../container/src/contract.ts";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import type { ServerId } from "../../policies/catalog.ts";
import { authorize } from "../../policies/decide.ts";
import { argsDigest } from "../audit/audit.ts";
import { type Caller, loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import { bridgeFetchFor } from "../bridge/router.ts";
import type { Database } from "../db/database.ts";
import { forgetBackend } from "../db/sessions.repository.ts";
import { auditedRequestOf, auditedRequestProblem } from "./audited.ts";
import { allowedCallRecorder, auditOrFail, enforceRateLimit } from "./call-guards.ts";
import { RpcError } from "./errors.ts";
import { parseQualifiedName, unknownTool } from "./names.ts";
import { SESSION_MAX_AGE_MS } from "./settings.ts";

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

/** A `tools/call` that may take the direct path, as the client sent it. */
export interface DirectCall {
  readonly id: string | number;
  readonly name: string;
  readonly server: ServerId;
  readonly tool: string;
  /** The call's params for the server: the client's, with the server's own tool name and without `_meta`. */
  readonly params: Readonly<Record<string, unknown>>;
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
  const forwarded =
    args === undefined ? { ...rest, name: target.name } : { ...rest, name: target.name, arguments: args };
  return { id, name, server: target.server, tool: target.name, params: forwarded, arguments: args ?? {} };
}

export interface DirectCallDeps {
  readonly db: Kysely<Database>;
  readonly keys: () => Promise<{ readonly bridge: BridgeKey; readonly audit: CryptoKey }>;
  readonly insecureDevBridgeUrl: string | null;
  readonly containers: DurableObjectNamespace | undefined;
}

/** Internal request ids never collide with the ids the session object's own client uses on the same session. */
const DIRECT_ID_PREFIX = "hatago-direct:";

/**
 * Runs a direct call: the caller's grants and session in one D1 read, the decision, the rate limit, the
 * call on the container, the audit row, the answer. Resolves to `null` when the session object has to
 * take the request after all (nothing was sent to a server and nothing audited in that case).
 */
export async function runDirectCall(
  deps: DirectCallDeps,
  caller: Caller,
  sessionId: string,
  call: DirectCall,
): Promise<Response | null> {
  // The arguments' digest does not depend on the D1 read: both run at once.
  const keys = deps.keys();
  const digesting = keys.then((k) => argsDigest(k.audit, call.arguments));
  digesting.catch(() => {});
  const ctx = await loadRequestContext(deps.db, caller, sessionId);
  const session = ctx.session;
  if (!session?.directCalls || Date.now() - session.createdMs >= SESSION_MAX_AGE_MS) return null;
  const backend = session.backends.get(call.server);
  if (!backend) return null;
  const bridgeKey = (await keys).bridge;
  const digest = await digesting;
  try {
    const decision = authorize(ctx.grants, { kind: "tool", server: call.server, tool: call.tool });
    if (!decision.allow) {
      await auditOrFail(deps, ctx, {
        action: "tools/call",
        server: call.server,
        tool: call.tool,
        decision: "deny",
        reason: decision.reason,
        argsDigest: digest,
      });
      throw unknownTool(call.name);
    }
    await enforceRateLimit(deps, ctx, "tools/call", call.server, call.tool, digest);
    return await forward(deps, bridgeKey, ctx, sessionId, call, backend, digest);
  } catch (error) {
    if (error instanceof RpcError)
      return answer(sessionId, { jsonrpc: "2.0", id: call.id, error: rpcErrorBody(error) });
    throw error;
  }
}

async function forward(
  deps: DirectCallDeps,
  bridgeKey: BridgeKey,
  ctx: RequestContext,
  sessionId: string,
  call: DirectCall,
  backend: { readonly bridgeSessionId: string; readonly protocolVersion: string },
  digest: string,
): Promise<Response | null> {
  const fetchBridge = bridgeFetchFor(
    { key: bridgeKey, insecureDevBridgeUrl: deps.insecureDevBridgeUrl, containers: deps.containers },
    ctx.caller.principal,
  );
  const internalId = `${DIRECT_ID_PREFIX}${crypto.randomUUID()}`;
  const record = allowedCallRecorder(deps, ctx, { server: call.server, tool: call.tool, digest });
  const unavailable = async (cause: unknown) => {
    console.error(JSON.stringify({ event: "direct_call_failed", server: call.server, error: String(cause) }));
    await record("transport_error");
    throw new RpcError(
      ErrorCode.InternalError,
      `The "${call.server}" server is not available right now; try again shortly.`,
    );
  };

  let reply: unknown;
  try {
    const response = await fetchBridge(call.server, bridgeMcpPath(call.server), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        // JSON only: anything the server says during the call besides its answer goes to the GET stream.
        accept: "application/json",
        "mcp-session-id": backend.bridgeSessionId,
        "mcp-protocol-version": backend.protocolVersion,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: internalId, method: "tools/call", params: call.params }),
    });
    if (response.status === 404) {
      // The bridge no longer knows this session (idle, or a new container): the session object reconnects.
      await response.body?.cancel();
      await forgetBackend(
        deps.db,
        { principal: ctx.caller.principal, sessionId },
        call.server,
        backend.bridgeSessionId,
      ).catch(() => {});
      return null;
    }
    const text = await response.text();
    if (!response.ok) return await unavailable(`bridge answered ${response.status}: ${text.slice(0, 200)}`);
    reply = JSON.parse(text);
  } catch (error) {
    if (error instanceof RpcError) throw error;
    return await unavailable(error);
  }
  if (!isPlainObject(reply) || reply.id !== internalId) return await unavailable("the bridge answered another request");
  if (isPlainObject(reply.error)) {
    const code = typeof reply.error.code === "number" ? reply.error.code : ErrorCode.InternalError;
    await record("jsonrpc_error", code);
    return answer(sessionId, { jsonrpc: "2.0", id: call.id, error: reply.error });
  }
  if (!isPlainObject(reply.result)) return await unavailable("the bridge's answer has no result");
  await record(reply.result.isError === true ? "tool_error" : "ok");
  return answer(sessionId, { jsonrpc: "2.0", id: call.id, result: reply.result });
}

function answer(sessionId: string, message: unknown): Response {
  return new Response(JSON.stringify(message), {
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-store", "mcp-session-id": sessionId },
  });
}

function rpcErrorBody(error: RpcError): { code: number; message: string } {
  return { code: error.code, message: error.message };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
