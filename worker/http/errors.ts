/**
 * The errors our own routes raise on purpose. Each has a public message (shown to the person or client)
 * and an internal cause (logged, never shown). Anything else thrown is a bug: it becomes a logged 500.
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

export class HttpError extends Error {
  readonly kind: HttpErrorKind;
  readonly status: number;
  readonly publicMessage: string;
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: HttpErrorKind, publicMessage: string, options: { cause?: unknown } = {}) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    this.kind = kind;
    this.status = STATUS[kind];
    this.publicMessage = publicMessage;
    this.retryAfterSeconds =
      kind === "upstream_unavailable"
        ? UPSTREAM_RETRY_AFTER_SECONDS
        : kind === "unavailable"
          ? UNAVAILABLE_RETRY_AFTER_SECONDS
          : undefined;
  }
}
