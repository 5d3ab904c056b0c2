import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
/**
 * Gateway errors: a public message for the client, an internal cause for the log. Anything that is not
 * a GatewayError is a bug and becomes a 500 that is logged, never a 400.
 */
import { bearerChallenge } from "../http/bearer.ts";

export class GatewayError extends Error {
  readonly status: number;
  /** JSON-RPC error code for the body. */
  readonly code: number;
  readonly retryAfterSeconds: number | undefined;
  /** The JSON-RPC error's `data`, when the code defines one (modern -32022 lists the supported versions). */
  readonly data: unknown;
  constructor(
    status: number,
    code: number,
    publicMessage: string,
    options: { cause?: unknown; retryAfterSeconds?: number; data?: unknown } = {},
  ) {
    super(publicMessage, { cause: options.cause });
    this.name = "GatewayError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.data = options.data;
  }
}

/**
 * SECURITY: the caller's token is no longer good (revoked, blocked, unusable props): 401 with a Bearer
 * challenge (`error="invalid_token"`), so the client signs in again rather than retrying.
 */
export function invalidToken(publicMessage: string): GatewayError {
  return new GatewayError(401, ErrorCode.ConnectionClosed, publicMessage);
}

/**
 * The HTTP answer for a gateway error. A 401 carries the Bearer challenge for `requestUrl`'s origin
 * (http/bearer.ts), so every 401 on /mcp and /sse says where to sign in again.
 */
export function jsonRpcErrorResponse(
  error: GatewayError,
  id: string | number | null = null,
  requestUrl?: string,
): Response {
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  if (error.retryAfterSeconds !== undefined) headers.set("retry-after", String(error.retryAfterSeconds));
  if (error.status === 401 && requestUrl !== undefined) {
    headers.set("www-authenticate", bearerChallenge(requestUrl, "invalid_token", error.message));
  }
  const body = { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) };
  return new Response(JSON.stringify({ jsonrpc: "2.0", id, error: body }), {
    status: error.status,
    headers,
  });
}

/**
 * An error an SDK request handler throws to answer with exactly this JSON-RPC code and message. (The
 * SDK's McpError prefixes "MCP error <code>:" to its message, which clients then prefix again.)
 */
export class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = "RpcError";
    this.code = code;
  }
}

/** The answer for a call that was allowed but never completed (bridge down, timeout, connection closed). */
export function serverUnavailable(server: string): RpcError {
  return new RpcError(ErrorCode.InternalError, `The "${server}" server is not available right now; try again shortly.`);
}
