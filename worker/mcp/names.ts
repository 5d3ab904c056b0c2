import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { isServerId, type ServerId } from "../../policies/catalog.ts";
import { RpcError } from "./errors.ts";

/**
 * How several servers' tools, prompts and resources share one endpoint.
 *
 * Tools and prompts: `<server>__<name>` (e.g. `memory__read_graph`). Server ids are `[a-z][a-z0-9-]*`
 * and never contain `__`, so the first `__` always ends the server id: two servers cannot produce the
 * same public name, whatever their tools are called. `execute_stdio` has no `__`, so it cannot collide
 * with any of them either.
 *
 * Resources: `hatago:<server>:<original uri>` (e.g. `hatago:everything:demo://resource/static/1`). The
 * original URI is kept verbatim after the prefix, so URI templates (`{id}`) still expand.
 *
 * Parsing is exact: no case folding, no Unicode normalization, no percent-decoding. A name that does
 * not parse names nothing, and is answered exactly like a tool that does not exist.
 */
export const NAME_SEPARATOR = "__";
export const RESOURCE_SCHEME = "hatago:";
/** The gateway's own tool: one JSON-RPC request to a server's process. Needs `execute` on that server. */
export const EXECUTE_STDIO_TOOL = "execute_stdio";

export interface Qualified {
  readonly server: ServerId;
  readonly name: string;
}

export function qualifyName(server: ServerId, name: string): string {
  return `${server}${NAME_SEPARATOR}${name}`;
}

export function parseQualifiedName(qualified: string): Qualified | null {
  const at = qualified.indexOf(NAME_SEPARATOR);
  if (at <= 0) return null;
  const server = qualified.slice(0, at);
  const name = qualified.slice(at + NAME_SEPARATOR.length);
  if (!isServerId(server) || name.length === 0) return null;
  return { server, name };
}

export function qualifyUri(server: ServerId, uri: string): string {
  return `${RESOURCE_SCHEME}${server}:${uri}`;
}

export function parseQualifiedUri(qualified: string): Qualified | null {
  if (!qualified.startsWith(RESOURCE_SCHEME)) return null;
  const rest = qualified.slice(RESOURCE_SCHEME.length);
  const at = rest.indexOf(":");
  if (at <= 0) return null;
  const server = rest.slice(0, at);
  const name = rest.slice(at + 1);
  if (!isServerId(server) || name.length === 0) return null;
  return { server, name };
}

/**
 * SECURITY: the answer for a tool that does not exist and for one the caller may not use is the same
 * error, word for word, so a denial reveals nothing about what exists.
 */
export function unknownTool(name: string): RpcError {
  return new RpcError(ErrorCode.InvalidParams, `Tool ${name} not found`);
}

/** The same for resources and prompts: "no such resource/prompt" and "not yours" read alike. */
export function targetNotFound(what: "Resource" | "Prompt", name: string): RpcError {
  return new RpcError(ErrorCode.InvalidParams, `${what} ${name} not found`);
}
