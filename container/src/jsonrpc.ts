/**
 * Just enough JSON-RPC 2.0 for a multiplexer: classify a parsed message, rewrite its id, build errors.
 *
 * Messages are parsed once and otherwise passed through: the bridge looks at `jsonrpc`, `id`, `method`
 * and (for progress) `params._meta.progressToken`, and leaves every other byte to the two ends, which
 * validate their own protocol. That is both the fidelity rule (what the server sends reaches the client
 * unchanged) and the hot-path rule (no schema validation per message).
 */

export type JsonRpcId = string | number;
export type JsonObject = Record<string, unknown>;

export type Classified =
  | { readonly kind: "request"; readonly id: JsonRpcId; readonly method: string; readonly msg: JsonObject }
  | { readonly kind: "notification"; readonly method: string; readonly msg: JsonObject }
  | { readonly kind: "response"; readonly id: JsonRpcId; readonly msg: JsonObject }
  | { readonly kind: "invalid"; readonly reason: string };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isJsonRpcId(value: unknown): value is JsonRpcId {
  return typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
}

export function classify(value: unknown): Classified {
  if (!isJsonObject(value) || value.jsonrpc !== "2.0") return { kind: "invalid", reason: "not a JSON-RPC 2.0 object" };
  const { id, method } = value;
  if (typeof method === "string") {
    if (method.length === 0) return { kind: "invalid", reason: "empty method" };
    if (id === undefined) return { kind: "notification", method, msg: value };
    if (!isJsonRpcId(id)) return { kind: "invalid", reason: "id must be a string or a number" };
    return { kind: "request", id, method, msg: value };
  }
  if (method !== undefined) return { kind: "invalid", reason: "method must be a string" };
  if (!("result" in value) && !isJsonObject(value.error))
    return { kind: "invalid", reason: "neither request nor response" };
  if (!isJsonRpcId(id)) return { kind: "invalid", reason: "response id must be a string or a number" };
  return { kind: "response", id, msg: value };
}

/**
 * `raw` with its top-level id replaced. Fast path: the SDKs serialise `{..., "jsonrpc":"2.0","id":N}`
 * with the id last, and when `raw` (which parsed to `msg`, whose id is `oldId`) ends with `,"id":<oldId>}`
 * that suffix can only be the top-level id member (a quote preceded by a comma cannot be inside a
 * string here, and the final `}` closes the top-level object), so the id is spliced in without
 * re-serialising a possibly large result. Otherwise the object is re-serialised.
 */
export function withId(raw: string, msg: JsonObject, oldId: JsonRpcId, newId: JsonRpcId): string {
  const oldTail = `,"id":${JSON.stringify(oldId)}}`;
  if (raw.endsWith(oldTail)) return `${raw.slice(0, raw.length - oldTail.length)},"id":${JSON.stringify(newId)}}`;
  msg.id = newId;
  return JSON.stringify(msg);
}

/** The `_meta` object of a message's params, when there is one. */
export function metaOf(msg: JsonObject): JsonObject | undefined {
  const params = msg.params;
  if (!isJsonObject(params)) return undefined;
  const meta = params._meta;
  return isJsonObject(meta) ? meta : undefined;
}

export function paramsOf(msg: JsonObject): JsonObject | undefined {
  return isJsonObject(msg.params) ? msg.params : undefined;
}

/** JSON-RPC and MCP error codes the bridge answers with. */
export const RPC_ERROR = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** The SDK's ConnectionClosed: the server process went away with the call in flight. */
  connectionClosed: -32000,
  /** The SDK's RequestTimeout. */
  requestTimeout: -32001,
} as const;

export function errorResponse(id: JsonRpcId | null, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } });
}

export function resultResponse(id: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", id, result });
}

export function notification(method: string, params: JsonObject): string {
  return JSON.stringify({ jsonrpc: "2.0", method, params });
}
