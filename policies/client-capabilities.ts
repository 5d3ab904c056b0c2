import { catalogSnapshot } from "./catalog.snapshot.ts";
import type { ServerId } from "./catalog.ts";
import { CLIENT_CAPABILITY_NAMES, type ClientCapabilityName, type ServerSnapshot } from "./catalog.types.ts";

/**
 * What a client can answer when a server asks it something during a call: the client capabilities some
 * servers gate tools on (a server registers `trigger-sampling-request` only for a client that declared
 * `sampling`). The bridge initializes every stdio server declaring all of them (container/src/handshake.ts),
 * so a server lists its full set to the gateway; the catalog snapshot records which tools need which
 * (`needs`: the tool is usable by a client that declared ANY one of them), and each client is listed, and
 * may call, only what its own declared capabilities can use (worker/mcp/tool-list.ts, tool-call.ts).
 */
export { CLIENT_CAPABILITY_NAMES, type ClientCapabilityName };

/** The client capabilities object that declares exactly one of them (the snapshot script's probes). */
export const CAPABILITY_PROBES: Readonly<Record<ClientCapabilityName, Readonly<Record<string, unknown>>>> = {
  sampling: { sampling: {} },
  "elicitation.form": { elicitation: { form: {} } },
  "elicitation.url": { elicitation: { url: {} } },
  roots: { roots: { listChanged: true } },
};

/** Every capability at once: what the bridge declares to a server. */
export const ALL_CLIENT_CAPABILITIES = {
  sampling: {},
  elicitation: { form: {}, url: {} },
  roots: { listChanged: true },
} as const;

export type DeclaredCapabilities = ReadonlySet<ClientCapabilityName>;

/**
 * What a client's capabilities object (initialize's, or a 2026-07-28 request's `_meta`) declares. An
 * empty `elicitation: {}` is form mode (the specification's backwards-compatible reading). Anything that is
 * not an object declares nothing.
 */
export function declaredCapabilities(capabilities: unknown): DeclaredCapabilities {
  const out = new Set<ClientCapabilityName>();
  if (!isObject(capabilities)) return out;
  if (isObject(capabilities.sampling)) out.add("sampling");
  const elicitation = capabilities.elicitation;
  if (isObject(elicitation)) {
    if (Object.keys(elicitation).length === 0 || isObject(elicitation.form)) out.add("elicitation.form");
    if (isObject(elicitation.url)) out.add("elicitation.url");
  }
  if (isObject(capabilities.roots)) out.add("roots");
  return out;
}

/** The capabilities a snapshot tool needs (any one of them), or `null` when it needs none or is not in the snapshot. */
export function toolNeeds(server: ServerId, tool: string): readonly ClientCapabilityName[] | null {
  const tools: ServerSnapshot["tools"] = catalogSnapshot[server].tools;
  if (!Object.hasOwn(tools, tool)) return null;
  return tools[tool]?.needs ?? null;
}

/**
 * Whether a client that declared `declared` can use the tool. A tool the snapshot does not know (the server
 * added it since) is taken as needing nothing: the server itself lists it only to a client of its own
 * choosing, and the snapshot test fails until it is recorded.
 */
export function usableWith(declared: DeclaredCapabilities, server: ServerId, tool: string): boolean {
  const needs = toolNeeds(server, tool);
  return needs === null || needs.some((n) => declared.has(n));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
