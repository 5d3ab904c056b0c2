import { BRIDGE_CONNECTION_HOST, BRIDGE_STATE_HOST } from "../../container/src/contract.ts";
import { connectionOf, isolationOf, SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import type { ConnectionSpec } from "../../policies/catalog.types.ts";
import type { ResolvedConnection } from "./bridge-token.ts";

/**
 * Egress injection (issue 17): a connection whose catalog entry says `egress` never enters the container. The
 * process holds a placeholder; each of its requests to the declared host leaves the container through the
 * container's Durable Object (`@cloudflare/containers` outbound handler, worker/bridge/container.ts), and this
 * handler sets the person's token on it in the Worker and sends it on. What the platform lets us see (read in
 * node_modules/@cloudflare/containers 0.3.7, infra/README.md "Egress injection"): plain HTTP to a host with a
 * handler, and HTTPS to that host when the class sets `interceptHttps` (the platform terminates TLS with its own
 * CA, which the process must trust). The handler's own `fetch` runs in the Worker, so it reaches the upstream
 * even though the container has no internet (`enableInternet = false`).
 *
 * SECURITY: whose token is decided by the container the request came from and nothing in the request: its
 * Durable Object's name (`user:<server>:<principal>`, worker/bridge/router.ts), checked against the id the
 * platform passed (`ctx.containerId`). Only the declared host of that server's connection gets a token; the
 * header is set, never appended, so a process cannot add a second one; the token is never logged.
 */

/** `api.github.com`: a DNS name, lower case, no port, no wildcard; never one of the gateway's internal hosts. */
const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
/** An HTTP header name (RFC 9110 §5.1 token), lower case. */
const HEADER = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const INTERNAL_HOSTS: readonly string[] = [BRIDGE_CONNECTION_HOST, BRIDGE_STATE_HOST];

/** An egress declaration, checked: the host, the header (lower case) and what goes before the token. */
export interface EgressRule {
  readonly server: ServerId;
  readonly provider: string;
  readonly host: string;
  readonly header: string;
  readonly prefix: string;
}

/** The rule of one connection, or an error naming what is wrong with its declaration. */
export function egressRuleOf(server: ServerId, spec: ConnectionSpec): EgressRule | null {
  const egress = spec.egress;
  if (!egress) return null;
  const header = (egress.header ?? "authorization").toLowerCase();
  const prefix = egress.prefix ?? "Bearer ";
  if (!HOST.test(egress.host) || INTERNAL_HOSTS.includes(egress.host)) {
    throw new Error(`${server}: connection.egress.host must be one DNS name (e.g. api.github.com), got ${egress.host}`);
  }
  if (!HEADER.test(header)) throw new Error(`${server}: connection.egress.header is not a header name`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
  if (/[\u0000-\u001f\u007f]/.test(prefix) || prefix.length > 32) {
    throw new Error(`${server}: connection.egress.prefix must be short and printable`);
  }
  return { server, provider: spec.provider, host: egress.host, header, prefix };
}

/**
 * The catalog's egress rules by host. One host belongs to one server: a container hosts one server, but two
 * servers sharing a host would make the table ambiguous to read, so it is refused.
 */
export function egressRules(
  servers: readonly ServerId[] = SERVER_IDS,
  specOf: (server: ServerId) => ConnectionSpec | null = connectionOf,
): ReadonlyMap<string, EgressRule> {
  const rules = new Map<string, EgressRule>();
  for (const server of servers) {
    const spec = specOf(server);
    const rule = spec ? egressRuleOf(server, spec) : null;
    if (!rule) continue;
    if (isolationOf(server) !== "per-user") {
      throw new Error(`${server}: a connection injected at egress needs a per-user server`);
    }
    const taken = rules.get(rule.host);
    if (taken) throw new Error(`${server}: egress host ${rule.host} is already ${taken.server}'s`);
    rules.set(rule.host, rule);
  }
  return rules;
}

/** The (server, principal) a container runs for, from its Durable Object's name (router.ts); null for others. */
export function subjectOfContainerName(name: string | null | undefined): { server: string; principal: string } | null {
  const match = /^user:([a-z0-9-]+):(.+)$/.exec(name ?? "");
  return match?.[1] && match[2] ? { server: match[1], principal: match[2] } : null;
}

export interface EgressDeps {
  /** The name of the container's Durable Object, as it knows itself (an RPC to it), or null. */
  nameOf(containerId: string): Promise<string | null>;
  /** The id the platform gives that name (`idFromName`), to check the answer above. */
  idOf(name: string): string | null;
  /** The person's token, as the bridge would get it (bridge-token.ts, resolveConnection). */
  resolve(server: ServerId, principal: string): Promise<ResolvedConnection>;
  /** Sends the request on (the Worker's `fetch`). */
  fetch(request: Request): Promise<Response>;
}

/** One request of a container's process to a host with an egress rule. */
export async function handleEgressRequest(
  request: Request,
  rule: EgressRule,
  containerId: string,
  deps: EgressDeps,
): Promise<Response> {
  const url = new URL(request.url);
  if (url.hostname !== rule.host) return refuse(421, "egress_host_mismatch", "This request is not for this handler.");
  const name = await deps.nameOf(containerId);
  const subject = subjectOfContainerName(name);
  // SECURITY: the name is believed only when it is the one the platform's id was made from.
  if (!name || !subject || deps.idOf(name) !== containerId || subject.server !== rule.server) {
    return refuse(403, "egress_not_allowed", `This container may not use the ${rule.host} connection.`);
  }
  const resolved = await deps.resolve(rule.server, subject.principal);
  if (resolved.kind === "missing") return refuse(401, "connection_missing", resolved.message);
  if (resolved.kind === "unavailable") return refuse(503, "connection_unavailable", resolved.message);
  const headers = new Headers(request.headers);
  headers.set(rule.header, `${rule.prefix}${resolved.token}`);
  // A redirect goes back to the process (manual): its next request passes here again, and a token is only
  // ever set on a request to the declared host.
  return deps.fetch(new Request(request, { headers, redirect: "manual" }));
}

function refuse(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status, headers: { "cache-control": "no-store" } });
}
