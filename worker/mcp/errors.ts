import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { bearerChallenge } from "../http/bearer.ts";
import { HttpError } from "../http/errors.ts";

/**
 * The MCP endpoints' errors. A refusal of the HTTP request itself is the Worker's one HttpError
 * (http/errors.ts), rendered here as JSON-RPC; an answer to one JSON-RPC request inside a served request is
 * an RpcError (below), which has no HTTP status of its own.
 */

/**
 * SECURITY: the caller's token is no longer good (revoked, blocked, unusable props): 401 with a Bearer
 * challenge (`error="invalid_token"`), so the client signs in again rather than retrying.
 */
export function invalidToken(publicMessage: string): HttpError {
  return new HttpError(401, publicMessage);
}

/**
 * The JSON-RPC rendering of an HttpError. A 401 carries the Bearer challenge for `requestUrl`'s origin
 * (http/bearer.ts), so every 401 on /mcp and /sse says where to sign in again.
 */
export function jsonRpcErrorResponse(
  error: HttpError,
  id: string | number | null = null,
  requestUrl?: string,
): Response {
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  if (error.retryAfterSeconds !== undefined) headers.set("retry-after", String(error.retryAfterSeconds));
  if (error.status === 401 && requestUrl !== undefined) {
    headers.set("www-authenticate", bearerChallenge(requestUrl, "invalid_token", error.publicMessage));
  }
  const body = {
    code: error.rpcCode,
    message: error.publicMessage,
    ...(error.data === undefined ? {} : { data: error.data }),
  };
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
