import type { ServerResponse } from "node:http";

/**
 * The bridge's HTTP errors: a stable code and a public message for the caller, an optional internal
 * cause for the log. Bad input is always one of these (4xx), never a 500.
 */
export class BridgeHttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly internal: string | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { headers?: Record<string, string>; internal?: string } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = options.headers ?? {};
    this.internal = options.internal;
  }
}

export function badRequest(code: string, message: string): BridgeHttpError {
  return new BridgeHttpError(400, code, message);
}

export function notFound(message = "not found"): BridgeHttpError {
  return new BridgeHttpError(404, "not_found", message);
}

export function unavailable(code: string, message: string, retryAfterSeconds: number): BridgeHttpError {
  return new BridgeHttpError(503, code, message, { headers: { "retry-after": String(retryAfterSeconds) } });
}

export function methodNotAllowed(allow: string): BridgeHttpError {
  return new BridgeHttpError(405, "method_not_allowed", "method not allowed", { headers: { allow } });
}

/** `{"error":{"code":"…","message":"…"}}`: the same shape for every non-JSON-RPC failure. */
export function sendError(res: ServerResponse, error: BridgeHttpError): void {
  sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const body = JSON.stringify(value);
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}
