/**
 * THE error our own code raises on purpose, on every surface of the Worker: a status, a public message
 * (shown to the person or client) and an internal cause (logged, never shown). It has three renderings,
 * one per kind of caller, each written once: a page (http/page.ts `errorPage`, the console's
 * `plainPage`), OAuth JSON (`oauthErrorResponse` below: `/admin`, `/api`) and JSON-RPC
 * (mcp/errors.ts `jsonRpcErrorResponse`: `/mcp`, `/sse`). Anything else thrown is a bug: a logged 500.
 */
export type HttpErrorKind =
  | "bad_request"
  | "forbidden"
  | "payload_too_large"
  | "unsupported_media_type"
  | "upstream_unavailable"
  | "unavailable";

const STATUS: Record<HttpErrorKind, number> = {
  bad_request: 400,
  forbidden: 403,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upstream_unavailable: 502,
  unavailable: 503,
};

/** An upstream outage is usually brief; ask clients to wait this long before retrying. */
const UPSTREAM_RETRY_AFTER_SECONDS = 30;
/** Our own storage failing (D1): retry sooner. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** JSON-RPC's "server error" code, which MCP's transports use for refusals of the HTTP request itself. */
const CONNECTION_CLOSED = -32_000;

export interface HttpErrorOptions {
  readonly cause?: unknown;
  /** The JSON-RPC error code of the JSON-RPC rendering (default -32000, a refused HTTP request). */
  readonly rpcCode?: number;
  /** The JSON-RPC error's `data`, when the code defines one (modern -32022 lists the supported versions). */
  readonly data?: unknown;
  /** `Retry-After`, in seconds (defaults: 30 for `upstream_unavailable`, 5 for any 503). */
  readonly retryAfterSeconds?: number;
}

export class HttpError extends Error {
  readonly status: number;
  readonly publicMessage: string;
  readonly retryAfterSeconds: number | undefined;
  readonly rpcCode: number;
  readonly data: unknown;

  /** `status` is a number, or a kind for the statuses pages use most (`"unavailable"` → 503). */
  constructor(status: number | HttpErrorKind, publicMessage: string, options: HttpErrorOptions = {}) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    this.status = typeof status === "number" ? status : STATUS[status];
    this.publicMessage = publicMessage;
    this.rpcCode = options.rpcCode ?? CONNECTION_CLOSED;
    this.data = options.data;
    this.retryAfterSeconds =
      options.retryAfterSeconds ??
      (status === "upstream_unavailable"
        ? UPSTREAM_RETRY_AFTER_SECONDS
        : this.status === 503
          ? UNAVAILABLE_RETRY_AFTER_SECONDS
          : undefined);
  }
}

/** The OAuth error code (RFC 6749 §5.2, RFC 6750 §3.1) an HTTP error is rendered with. */
export function oauthErrorCode(error: HttpError): string {
  if (error.status === 401) return "invalid_token";
  if (error.status === 403) return "access_denied";
  if (error.status === 404) return "not_found";
  if (error.status >= 500) return "temporarily_unavailable";
  return "invalid_request";
}

/** The OAuth JSON rendering: `{error, error_description}` with the error's status and `Retry-After`. */
export function oauthErrorResponse(error: HttpError, headers = new Headers()): Response {
  headers.set("content-type", "application/json");
  headers.set("cache-control", "no-store");
  if (error.retryAfterSeconds !== undefined) headers.set("retry-after", String(error.retryAfterSeconds));
  const body = { error: oauthErrorCode(error), error_description: error.publicMessage };
  return new Response(JSON.stringify(body), { status: error.status, headers });
}
