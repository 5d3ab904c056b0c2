import { ErrorCode, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import { HttpError } from "../../http/errors.ts";

/**
 * The 2026-07-28 ("modern") request on `/mcp`: how the gateway tells it from a legacy one, and the
 * checks the revision puts on its headers (basic/transports/streamable-http, "Request Metadata").
 *
 * SECURITY: the headers mirror the body so intermediaries can route and decide without parsing it; a
 * gateway that let the two disagree would decide on one and run the other. So every mirrored header is
 * required and must equal the body, after decoding (Mcp-Name's Base64 sentinel), before anything is
 * decided: a refusal here is a 400 with HeaderMismatch (-32020), no decision, no audit row, nothing sent.
 */

/** Modern revisions this gateway serves statelessly. */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = ["2026-07-28"];

/** Every revision it serves: modern ones per request, legacy ones after `initialize` (the session path). */
export const ALL_PROTOCOL_VERSIONS: readonly string[] = [
  ...MODERN_PROTOCOL_VERSIONS,
  ...SUPPORTED_PROTOCOL_VERSIONS.filter((v) => !MODERN_PROTOCOL_VERSIONS.includes(v)),
];

export const META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion";
export const META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo";
export const META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities";
export const META_LOG_LEVEL = "io.modelcontextprotocol/logLevel";

/** Error codes the revision defines (basic/index, "Error Codes"). */
export const HEADER_MISMATCH = -32_020;
export const MISSING_REQUIRED_CLIENT_CAPABILITY = -32_021;
export const UNSUPPORTED_PROTOCOL_VERSION = -32_022;

/** The logging levels (server/utilities/logging, RFC 5424), lowest first. */
export const LOG_LEVELS: readonly string[] = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
];

/** Methods whose `Mcp-Name` header mirrors `params.name` or `params.uri`. */
const NAMED: Readonly<Record<string, "name" | "uri">> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri",
};

/**
 * Whether a POST to `/mcp` is modern: its body is one message (not `initialize`, which selects legacy
 * semantics whatever else it carries) whose params' `_meta` names a protocol version, or its
 * `MCP-Protocol-Version` header names a modern revision. A header saying modern over a body that does
 * not is modern, so it is refused for the mismatch instead of reaching a session.
 */
export function isModernRequest(request: Request, message: unknown): boolean {
  if (!isObject(message) || message.method === "initialize") return false;
  if (metaOf(message)?.[META_PROTOCOL_VERSION] !== undefined) return true;
  const header = request.headers.get("mcp-protocol-version");
  return header !== null && MODERN_PROTOCOL_VERSIONS.includes(header);
}

/** A GET or DELETE naming a modern revision: the revision has no GET stream and no sessions (405). */
export function isModernStreamRequest(request: Request): boolean {
  const header = request.headers.get("mcp-protocol-version");
  return (
    (request.method === "GET" || request.method === "DELETE") &&
    header !== null &&
    MODERN_PROTOCOL_VERSIONS.includes(header)
  );
}

/** A checked modern request. */
export interface ModernRequest {
  readonly id: string | number | null;
  readonly method: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly protocolVersion: string;
  /** What the client declared it can do, in this request's `_meta` (required of a request; `{}` for a notification). */
  readonly clientCapabilities: Readonly<Record<string, unknown>>;
  /** The lowest level of `notifications/message` the request wants; `null`: none (logging: MUST NOT send). */
  readonly logLevel: string | null;
  /** The request's `_meta.progressToken`, when it asked for progress. */
  readonly progressToken: string | number | undefined;
}

/**
 * The request, checked against its headers; throws the refusal. Order: the protocol version first (its
 * header must match the body; then it must be one we serve, else -32022 listing them), then `Mcp-Method`,
 * then `Mcp-Name` for the methods that name a target.
 */
export function checkModernRequest(request: Request, message: unknown): ModernRequest {
  if (!isObject(message) || typeof message.method !== "string") {
    throw mismatch("The body is not a JSON-RPC request.");
  }
  const id = typeof message.id === "string" || typeof message.id === "number" ? message.id : null;
  const method = message.method;
  const params = isObject(message.params) ? message.params : {};
  const meta = metaOf(message) ?? {};
  const headerVersion = headerValue(request, "mcp-protocol-version");
  const bodyVersion = meta[META_PROTOCOL_VERSION];
  if (headerVersion === null) throw mismatch("The MCP-Protocol-Version header is required.");
  if (typeof bodyVersion !== "string") {
    throw mismatch(`The body's _meta has no ${META_PROTOCOL_VERSION} to match MCP-Protocol-Version.`);
  }
  if (headerVersion !== bodyVersion) {
    throw mismatch(
      `Header mismatch: MCP-Protocol-Version '${headerVersion}' does not match the body's '${bodyVersion}'.`,
    );
  }
  if (!MODERN_PROTOCOL_VERSIONS.includes(bodyVersion)) {
    throw new HttpError(400, "Unsupported protocol version", {
      rpcCode: UNSUPPORTED_PROTOCOL_VERSION,
      data: { supported: [...ALL_PROTOCOL_VERSIONS], requested: bodyVersion },
    });
  }
  const headerMethod = headerValue(request, "mcp-method");
  if (headerMethod === null) throw mismatch("The Mcp-Method header is required.");
  if (headerMethod !== method) {
    throw mismatch(`Header mismatch: Mcp-Method '${headerMethod}' does not match the body's '${method}'.`);
  }
  const field = NAMED[method];
  if (field !== undefined) {
    const raw = headerValue(request, "mcp-name");
    if (raw === null) throw mismatch("The Mcp-Name header is required for this method.");
    const named = decodeSentinel(raw);
    if (named === null) throw mismatch("The Mcp-Name header is not validly encoded.");
    const sent = params[field];
    if (typeof sent !== "string" || sent !== named) {
      throw mismatch(`Header mismatch: Mcp-Name does not match the body's params.${field}.`);
    }
  }
  // The revision's required per-request fields (basic/index, "_meta"): a request without them is malformed,
  // -32602 with 400. (A notification carries no capabilities that matter: it is accepted and does nothing.)
  const capabilities = meta[META_CLIENT_CAPABILITIES];
  if (id !== null && !isObject(capabilities)) {
    throw new HttpError(
      400,
      `Invalid params: _meta must carry ${META_CLIENT_CAPABILITIES} (an object) on every request.`,
      { rpcCode: ErrorCode.InvalidParams },
    );
  }
  const logLevel = meta[META_LOG_LEVEL];
  if (logLevel !== undefined && !(typeof logLevel === "string" && LOG_LEVELS.includes(logLevel))) {
    throw new HttpError(400, `Invalid params: ${META_LOG_LEVEL} must be one of ${LOG_LEVELS.join(", ")}.`, {
      rpcCode: ErrorCode.InvalidParams,
    });
  }
  const token = meta.progressToken;
  return {
    id,
    method,
    params,
    protocolVersion: bodyVersion,
    clientCapabilities: isObject(capabilities) ? capabilities : {},
    logLevel: typeof logLevel === "string" ? logLevel : null,
    progressToken:
      typeof token === "string" || (typeof token === "number" && Number.isFinite(token)) ? token : undefined,
  };
}

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/**
 * A header value as the revision encodes it ("Value Encoding"): plain visible ASCII as is, or the Base64
 * sentinel `=?base64?…?=` around the value's UTF-8 bytes. `null` for anything else (invalid characters,
 * bad Base64, bytes that are not UTF-8).
 */
export function decodeSentinel(value: string): string | null {
  const encoded = SENTINEL.exec(value);
  // Anything shaped like the sentinel is one, and must decode: never taken as a plain value.
  if (!encoded && value.startsWith("=?base64?") && value.endsWith("?=")) return null;
  if (!encoded) return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) ? value : null;
  const base64 = encoded[1] ?? "";
  if (base64.length % 4 !== 0) return null;
  let binary: string;
  try {
    binary = atob(base64);
  } catch {
    return null;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
}

/** A header's value; `null` when absent. (Header names are case-insensitive; values are compared exactly.) */
function headerValue(request: Request, name: string): string | null {
  return request.headers.get(name);
}

function mismatch(message: string): HttpError {
  return new HttpError(400, message, { rpcCode: HEADER_MISMATCH });
}

function metaOf(message: Record<string, unknown>): Record<string, unknown> | null {
  const params = message.params;
  if (!isObject(params)) return null;
  return isObject(params._meta) ? params._meta : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
