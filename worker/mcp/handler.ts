import { ErrorCode, isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { type BridgeKey, importBridgeKey } from "../../container/src/contract.ts";
import { auditKeyFrom } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import { decisionCache } from "../authz/decision-cache.ts";
import type { Caller } from "../authz/request-context.ts";
import type { GatewaySettings } from "../config.ts";
import type { ConnectElicitation } from "../connect/elicit.ts";
import { database } from "../db/database.ts";
import { originGuard } from "../http/origin.ts";
import { AuthProps, subjectsOf } from "../oauth/props.ts";
import { MAX_REQUEST_BODY_BYTES, readJsonMessage } from "./body.ts";
import { screenBody } from "./boundary.ts";
import { DIRECT_SESSION_PREFIX, directCallOf, directCallsAllowed, runDirectCall } from "./direct-call.ts";
import { GatewayError, invalidToken, jsonRpcErrorResponse } from "./errors.ts";
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
  return async function mcpHandler(request: Request, env: SessionEnv, ctx: ProtectedContext): Promise<Response> {
    try {
      // SECURITY: DNS rebinding and cross-site requests (MCP transports: servers MUST validate Origin).
      if (!originAllowed(request)) {
        throw new GatewayError(403, ErrorCode.ConnectionClosed, "This Origin may not use the MCP endpoint.");
      }
      if (Number(request.headers.get("content-length") ?? "0") > MAX_REQUEST_BODY_BYTES) {
        throw new GatewayError(
          413,
          ErrorCode.InvalidRequest,
          `The request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`,
        );
      }
      const props = AuthProps.safeParse(ctx.props);
      // SECURITY: a grant whose props we cannot read is treated as no grant at all.
      if (!props.success) throw invalidToken("The access token does not carry a usable identity; sign in again.");
      const url = new URL(request.url);
      const caller: Caller = {
        principal: props.data.principal,
        subjects: subjectsOf(props.data),
        clientId: ctx.auth?.clientId ?? null,
        authenticatedAtMs: props.data.authenticatedAtMs,
      };
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
      };
      // Both eras on one endpoint (MCP 2026-07-28, versioning: "a dual-era server selects its behavior
      // from how the client opens"): a POST whose message carries modern `_meta` is served statelessly,
      // before anything about sessions is looked at (its Mcp-Session-Id, if any, is ignored).
      let read: Awaited<ReturnType<typeof readJsonMessage>> | null = null;
      if (url.pathname === MCP_PATH && request.method === "POST") {
        read = await readJsonMessage(request);
        if (isModernRequest(request, read.message)) {
          const refused = screenBody(read.message, { initializeAllowed: true });
          if (refused) return jsonRpcErrorResponse(refused.error, refused.id, request.url);
          const waitUntil = (promise: Promise<unknown>) => ctx.waitUntil?.(promise);
          return await serveModern({ ...deps, waitUntil }, caller, request, read.message);
        }
      }
      if (url.pathname === MCP_PATH && isModernStreamRequest(request)) throw methodNotAllowed();
      const routed = routeOf(request, url);
      const { route, fresh } = routed;
      let { sessionId } = routed;
      const namespace = env.MCP_SESSIONS;
      if (!namespace)
        throw new GatewayError(503, ErrorCode.InternalError, "MCP sessions are not configured for this deployment.");
      // SECURITY: every POST body (`/mcp` and `/sse/message`) is read and screened here, the one boundary
      // for size, JSON-RPC shape and nesting on every path (boundary.ts says why here). The bytes read are
      // passed on unchanged. A session's first POST also picks its id (direct-call.ts), and a POST of a
      // `d-` session may be a call that goes straight to a container.
      let body: ReadableStream | Uint8Array | null = request.body;
      if (request.method === "POST") {
        const { bytes, message } = read ?? (await readJsonMessage(request));
        const refused = screenBody(message, { initializeAllowed: fresh || route === "sse-message" });
        if (refused) return jsonRpcErrorResponse(refused.error, refused.id, request.url);
        if (fresh && isInitializeRequest(message) && directCallsAllowed(message.params.capabilities)) {
          sessionId = `${DIRECT_SESSION_PREFIX}${sessionId}`;
        }
        const call = fresh || route !== "mcp" ? null : directCallOf(request, sessionId, message);
        if (call) {
          const direct = runDirectCall(deps, caller, sessionId, call);
          // The audit row is written even if the client goes away mid-call.
          ctx.waitUntil?.(direct.catch(() => {}));
          const answered = await direct;
          if (answered) return answered;
        }
        body = bytes;
      }
      const headers = new Headers(request.headers);
      headers.delete("authorization");
      if (body instanceof Uint8Array) headers.set("content-length", String(body.byteLength));
      headers.set(
        INTERNAL_HEADER,
        encodeInternal({ route, sessionId, fresh, caller: { ...caller, subjects: [...caller.subjects] } }),
      );
      const stub = namespace.get(namespace.idFromName(sessionObjectName(props.data.principal, sessionId)));
      return await stub.fetch(new Request(request.url, { method: request.method, headers, body }));
    } catch (error) {
      if (error instanceof GatewayError) return jsonRpcErrorResponse(error, null, request.url);
      throw error;
    }
  };
}

function routeOf(request: Request, url: URL): { route: InternalRoute; sessionId: string; fresh: boolean } {
  const method = request.method;
  if (url.pathname === MCP_PATH) {
    if (method !== "POST" && method !== "GET" && method !== "DELETE") throw methodNotAllowed();
    const given = request.headers.get(SESSION_HEADER);
    // A POST without a session may only be initialize; the session object checks that.
    if (given === null) {
      if (method !== "POST")
        throw new GatewayError(400, ErrorCode.ConnectionClosed, "Mcp-Session-Id header is required.");
      return { route: "mcp", sessionId: crypto.randomUUID(), fresh: true };
    }
    if (!SESSION_ID.test(given))
      throw new GatewayError(
        404,
        ErrorCode.ConnectionClosed,
        "Session not found: start a new session with initialize.",
      );
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
      throw new GatewayError(404, ErrorCode.ConnectionClosed, "Session not found.");
    return { route: "sse-message", sessionId: given, fresh: false };
  }
  throw new GatewayError(404, ErrorCode.MethodNotFound, "Not found.");
}

function methodNotAllowed(): GatewayError {
  return new GatewayError(405, ErrorCode.ConnectionClosed, "Method not allowed.");
}
