import { ErrorCode, isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { type BridgeKey, importBridgeKey } from "../../container/src/contract.ts";
import { auditKeyFrom } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import { decisionCache } from "../authz/decision-cache.ts";
import type { Caller } from "../authz/request-context.ts";
import type { GatewaySettings, ListenSettings } from "../config.ts";
import type { ConnectElicitation } from "../connect/elicit.ts";
import { database } from "../db/database.ts";
import { HttpError } from "../http/errors.ts";
import { originGuard } from "../http/origin.ts";
import { AuthProps, subjectsOf } from "../oauth/props.ts";
import { MAX_REQUEST_BODY_BYTES, readJsonMessage } from "./body.ts";
import { screenBody } from "./boundary.ts";
import { DIRECT_SESSION_PREFIX, directCallOf, directCallsAllowed, runDirectCall } from "./direct-call.ts";
import { invalidToken, jsonRpcErrorResponse } from "./errors.ts";
import { encodeInternal, INTERNAL_HEADER, type InternalRoute, sessionObjectName } from "./internal.ts";
import { isModernRequest, isModernStreamRequest } from "./modern/request.ts";
import { requestStateKeyFrom } from "./modern/request-state.ts";
import { serveModern } from "./modern/serve.ts";
import type { SessionEnv } from "./settings.ts";

export const MCP_PATH = "/mcp";
export const SSE_PATH = "/sse";
export const SSE_MESSAGE_PATH = "/sse/message";
const SESSION_HEADER = "mcp-session-id";
const SESSION_ID = /^[\x21-\x7e]{1,128}$/;

export interface McpHandlerOptions {
  /** Origins (scheme://host[:port]) browsers may call from: the gateway's own, plus configured ones. */
  readonly allowedOrigins: readonly string[];
  /** The bridge secret and the local bridge URL, for tool calls sent straight to a container. */
  readonly gateway: GatewaySettings;
  /** Issue 17: the modern path's ask to connect a missing account (worker/connect/elicit.ts), if any provider. */
  readonly connect: ConnectElicitation | null;
  /** `subscriptions/listen` clocks from the configuration (HATAGO_LISTEN_*); listen.ts's defaults otherwise. */
  readonly listen?: ListenSettings;
}

interface ProtectedContext {
  readonly props?: unknown;
  readonly auth?: { readonly clientId?: string | undefined };
  waitUntil?(promise: Promise<unknown>): void;
}

/**
 * The MCP endpoints as the OAuth provider's protected API handler: `/mcp` (Streamable HTTP) and `/sse`
 * with `/sse/message` (legacy HTTP+SSE). By the time a request is here its bearer token is valid for this
 * resource; this checks the browser origin and the size, then hands the request to its session's
 * Durable Object. The client's token is not forwarded.
 */
export function createMcpHandler(options: McpHandlerOptions) {
  const originAllowed = originGuard(options.allowedOrigins);
  // SECURITY/robustness: only resolved values are kept between requests. A promise made by one request
  // and awaited by others hangs them all for good if its request is cancelled before it settles (workerd
  // ties I/O to the request that started it), so each request awaits its own until the keys exist.
  let keys: { bridge: BridgeKey; audit: CryptoKey; requestState: CryptoKey } | null = null;
  const keysOnce = async () => {
    if (keys) return keys;
    const made = {
      bridge: await importBridgeKey(options.gateway.bridgeSecret),
      audit: await auditKeyFrom(options.gateway.bridgeSecret),
      requestState: await requestStateKeyFrom(options.gateway.bridgeSecret),
    };
    keys ??= made;
    return keys;
  };
  /** The handler's named steps, in order; each either answers, throws an HttpError, or hands on. */
  return async function mcpHandler(request: Request, env: SessionEnv, ctx: ProtectedContext): Promise<Response> {
    try {
      refuseAtTheDoor(request, originAllowed);
      const caller = callerOf(ctx);
      const deps = {
        db: database(env.DB),
        audit: auditLog(env),
        keys: keysOnce,
        insecureDevBridgeUrl: options.gateway.insecureDevBridgeUrl,
        containers: env.BRIDGE,
        // Direct tool calls reuse decision facts for at most a second (authz/decision-cache.ts).
        decisions: decisionCache,
        // Issue 17: the modern path's ask to connect a missing account (worker/connect/elicit.ts).
        connect: options.connect,
        ...(options.listen ? { timings: options.listen } : {}),
      };
      const url = new URL(request.url);
      // Both eras on one endpoint (MCP 2026-07-28, versioning: "a dual-era server selects its behavior
      // from how the client opens"): a POST whose message carries modern `_meta` is served statelessly,
      // before anything about sessions is looked at (its Mcp-Session-Id, if any, is ignored).
      const read = url.pathname === MCP_PATH && request.method === "POST" ? await readJsonMessage(request) : null;
      if (read && isModernRequest(request, read.message)) {
        const refused = screenBody(read.message, { initializeAllowed: true });
        if (refused) return jsonRpcErrorResponse(refused.error, refused.id, request.url);
        const waitUntil = (promise: Promise<unknown>) => ctx.waitUntil?.(promise);
        return await serveModern({ ...deps, waitUntil }, caller, request, read.message);
      }
      if (url.pathname === MCP_PATH && isModernStreamRequest(request)) throw methodNotAllowed();
      const routed = routeOf(request, url);
      const namespace = env.MCP_SESSIONS;
      if (!namespace)
        throw new HttpError(503, "MCP sessions are not configured for this deployment.", {
          rpcCode: ErrorCode.InternalError,
        });
      if (request.method !== "POST") return await toSession(namespace, request, request.body, caller, routed);
      const screened = await screenLegacyPost(request, read, routed);
      if (screened.refusal) return screened.refusal;
      const call = screened.call;
      if (call) {
        const direct = runDirectCall(deps, caller, screened.routed.sessionId, call);
        // The audit row is written even if the client goes away mid-call.
        ctx.waitUntil?.(direct.catch(() => {}));
        const answered = await direct;
        if (answered) return answered;
      }
      return await toSession(namespace, request, screened.bytes, caller, screened.routed);
    } catch (error) {
      if (error instanceof HttpError) return jsonRpcErrorResponse(error, null, request.url);
      throw error;
    }
  };
}

/** SECURITY: DNS rebinding and cross-site requests (MCP transports: servers MUST validate Origin), and a declared size over the bound. */
function refuseAtTheDoor(request: Request, originAllowed: (request: Request) => boolean): void {
  if (!originAllowed(request)) {
    throw new HttpError(403, "This Origin may not use the MCP endpoint.", { rpcCode: ErrorCode.ConnectionClosed });
  }
  if (Number(request.headers.get("content-length") ?? "0") > MAX_REQUEST_BODY_BYTES) {
    throw new HttpError(413, `The request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`, {
      rpcCode: ErrorCode.InvalidRequest,
    });
  }
}

/** Who is calling, from the token's props. SECURITY: props we cannot read are no grant at all. */
function callerOf(ctx: ProtectedContext): Caller {
  const clientId = ctx.auth?.clientId ?? null;
  const props = ctx.props;
  const known = typeof props === "object" && props !== null ? callers.get(props) : undefined;
  if (known && known.clientId === clientId) return known;
  const parsed = AuthProps.safeParse(props);
  if (!parsed.success) throw invalidToken("The access token does not carry a usable identity; sign in again.");
  const caller: Caller = {
    principal: parsed.data.principal,
    subjects: subjectsOf(parsed.data),
    clientId,
    authenticatedAtMs: parsed.data.authenticatedAtMs,
  };
  if (typeof props === "object" && props !== null) callers.set(props, caller);
  return caller;
}

/**
 * Callers already parsed from a props object. The library decrypts a new object per check; a reused token
 * verdict (oauth/token-verdicts.ts) hands the same one back, and its parse (zod) is not repeated.
 */
const callers = new WeakMap<object, Caller>();

type Routed = ReturnType<typeof routeOf>;

/**
 * A legacy POST. SECURITY: every POST body (`/mcp` and `/sse/message`) is read and screened here,
 * the one boundary for size, JSON-RPC shape and nesting on every path (boundary.ts says why here). The bytes
 * read are passed on unchanged. A session's first POST also picks its id (direct-call.ts), and a POST of a
 * `d-` session may be a call that goes straight to a container.
 */
async function screenLegacyPost(
  request: Request,
  read: Awaited<ReturnType<typeof readJsonMessage>> | null,
  routed: Routed,
): Promise<
  | { readonly refusal: Response; readonly call?: undefined }
  | {
      readonly refusal?: undefined;
      readonly bytes: Uint8Array;
      readonly routed: Routed;
      readonly call: ReturnType<typeof directCallOf>;
    }
> {
  const { bytes, message } = read ?? (await readJsonMessage(request));
  const { route, fresh } = routed;
  const refused = screenBody(message, { initializeAllowed: fresh || route === "sse-message" });
  if (refused) return { refusal: jsonRpcErrorResponse(refused.error, refused.id, request.url) };
  let { sessionId } = routed;
  if (fresh && isInitializeRequest(message) && directCallsAllowed(message.params.capabilities)) {
    sessionId = `${DIRECT_SESSION_PREFIX}${sessionId}`;
  }
  const call = fresh || route !== "mcp" ? null : directCallOf(request, sessionId, message);
  return { bytes, routed: { ...routed, sessionId }, call };
}

/** Hands the request to its session's Durable Object, without the client's token. */
async function toSession(
  namespace: DurableObjectNamespace,
  request: Request,
  body: ReadableStream | Uint8Array | null,
  caller: Caller,
  routed: Routed,
): Promise<Response> {
  const { route, sessionId, fresh } = routed;
  const headers = new Headers(request.headers);
  headers.delete("authorization");
  if (body instanceof Uint8Array) headers.set("content-length", String(body.byteLength));
  headers.set(
    INTERNAL_HEADER,
    encodeInternal({ route, sessionId, fresh, caller: { ...caller, subjects: [...caller.subjects] } }),
  );
  const stub = namespace.get(namespace.idFromName(sessionObjectName(caller.principal, sessionId)));
  return await stub.fetch(new Request(request.url, { method: request.method, headers, body }));
}

/** A legacy request: which session, from the path and the Mcp-Session-Id header. */
function routeOf(request: Request, url: URL): { route: InternalRoute; sessionId: string; fresh: boolean } {
  const method = request.method;
  if (url.pathname === MCP_PATH) {
    if (method !== "POST" && method !== "GET" && method !== "DELETE") throw methodNotAllowed();
    const given = request.headers.get(SESSION_HEADER);
    // A POST without a session may only be initialize; the session object checks that.
    if (given === null) {
      if (method !== "POST")
        throw new HttpError(400, "Mcp-Session-Id header is required.", { rpcCode: ErrorCode.ConnectionClosed });
      return { route: "mcp", sessionId: crypto.randomUUID(), fresh: true };
    }
    if (!SESSION_ID.test(given))
      throw new HttpError(404, "Session not found: start a new session with initialize.", {
        rpcCode: ErrorCode.ConnectionClosed,
      });
    return { route: "mcp", sessionId: given, fresh: false };
  }
  if (url.pathname === SSE_PATH) {
    if (method !== "GET") throw methodNotAllowed();
    return { route: "sse-open", sessionId: crypto.randomUUID(), fresh: true };
  }
  if (url.pathname === SSE_MESSAGE_PATH) {
    if (method !== "POST") throw methodNotAllowed();
    const given = url.searchParams.get("sessionId");
    if (given === null || !SESSION_ID.test(given))
      throw new HttpError(404, "Session not found.", { rpcCode: ErrorCode.ConnectionClosed });
    return { route: "sse-message", sessionId: given, fresh: false };
  }
  throw new HttpError(404, "Not found.", { rpcCode: ErrorCode.MethodNotFound });
}

function methodNotAllowed(): HttpError {
  return new HttpError(405, "Method not allowed.", { rpcCode: ErrorCode.ConnectionClosed });
}
