import {
  BRIDGE_CONNECTION_PATH_PREFIX,
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeKey,
  type ConnectionAnswer,
  type ReplayCache,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";
import { connectionOf, isServerId, type ServerId } from "../../policies/catalog.ts";
import type { ConnectionSpec } from "../../policies/catalog.types.ts";
import { writeAuditRow } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import { judgeStanding, loadStanding } from "../authz/standing.ts";
import { containerName } from "../bridge/router.ts";
import { deleteConnection, loadConnection, saveConnection } from "../db/connections.repository.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import type { ConnectRuntime } from "./connect.runtime.ts";
import { providerClient } from "./provider-client.ts";
import { type TokenSet, tokenFingerprint } from "./token-seal.ts";
import { ConnectUpstreamError } from "./upstream-client.ts";

/**
 * A token this close to its expiry is refreshed before it is handed to a process: long enough for a tool
 * call to finish with it (the bridge's call timeout is a minute) and for a slow refresh.
 */
export const REFRESH_BEFORE_EXPIRY_MS = 120_000;

export interface ConnectionRequestContext {
  readonly runtime: ConnectRuntime;
  readonly key: BridgeKey;
  readonly replay: ReplayCache;
  readonly env: Env;
  /** The container making the request (deployed), or null for the local dev route. */
  readonly containerId: string | null;
}

/**
 * The bridge asks for (server, principal)'s token right before it starts or calls that person's process.
 * SECURITY: the (server, principal) comes from the verified `connection` credential and nothing else;
 * deployed, the asking container must be the one the router gives that (server, principal); the server
 * must declare a connection; the person's standing is checked (a block deletes the token here too). The
 * answer holds the token only for `connected`; it is never logged, and the audit row names no token.
 */
export async function handleBridgeConnectionRequest(
  request: Request,
  ctx: ConnectionRequestContext,
): Promise<Response> {
  const url = new URL(request.url);
  const server = url.pathname.slice(BRIDGE_CONNECTION_PATH_PREFIX.length);
  if (!url.pathname.startsWith(BRIDGE_CONNECTION_PATH_PREFIX) || !isServerId(server)) return problem(404, "not_found");
  if (request.method !== "GET") return problem(405, "method_not_allowed");
  if (request.headers.get("origin") !== null) return problem(403, "origin_refused");
  const spec = connectionOf(server);
  if (!spec) return problem(404, "no_connection_declared");
  const verified = await verifyBridgeCredential(request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
    key: ctx.key,
    replay: ctx.replay,
    server,
    use: "connection",
    sessionId: undefined,
  });
  if (!verified.ok) return problem(verified.status, `credential_${verified.reason}`);
  const principal = verified.claims.sub;
  if (ctx.containerId !== null) {
    const own = ctx.env.BRIDGE?.idFromName(containerName(server, principal)).toString();
    if (own === undefined || own !== ctx.containerId) return problem(403, "wrong_container");
  }
  const tool = (url.searchParams.get("tool") ?? "").slice(0, 256) || null;
  const resolved = await resolveConnection(ctx.runtime, ctx.env, server, principal, tool);
  switch (resolved.kind) {
    case "unavailable":
      return problem(503, "upstream_unavailable", { "retry-after": "30" }, resolved.message);
    case "missing":
      return json({ status: "missing", connectUrl: resolved.connectUrl, message: resolved.message });
    case "connected": {
      // Deployed, a connection injected at egress (egress.ts) never enters the container: its process gets a
      // placeholder the egress handler replaces. Locally there is no egress to rewrite: the token itself. The
      // fingerprint is the real token's either way (one-way), so the process still restarts when it changes.
      const token = tokenForProcess(spec, ctx.containerId !== null, resolved.token);
      return json({ status: "connected", token, fingerprint: await tokenFingerprint(resolved.token) });
    }
  }
}

/** What a container's process holds instead of the token when the token is added at egress. Not a secret. */
export const EGRESS_PLACEHOLDER = "hatago-egress-injected";

/** SECURITY: what the bridge may put into the process: the placeholder for an egress connection in a container. */
export function tokenForProcess(spec: ConnectionSpec, inContainer: boolean, token: string): string {
  return spec.egress && inContainer ? EGRESS_PLACEHOLDER : token;
}

export type ResolvedConnection =
  | { readonly kind: "connected"; readonly token: string }
  | { readonly kind: "missing"; readonly connectUrl: string; readonly message: string }
  | { readonly kind: "unavailable"; readonly message: string };

/**
 * (server, principal)'s current access token: loaded, checked against the person's standing (the kill
 * switch), refreshed when close to expiry, and audited as a use when `tool` names the call about to be made.
 * One home for both ways a token leaves the Worker: to the bridge (above) and at egress (egress.ts).
 * SECURITY: the caller has established (server, principal) from something the container cannot choose.
 */
export async function resolveConnection(
  runtime: ConnectRuntime,
  env: Env,
  server: ServerId,
  principal: string,
  tool: string | null,
): Promise<ResolvedConnection> {
  const spec = connectionOf(server);
  if (!spec) throw new Error(`server ${server} declares no connection`);
  const connectUrl = `${runtime.publicUrl}/connect/${spec.provider}`;
  const missing = (message: string): ResolvedConnection => ({ kind: "missing", connectUrl, message });
  const provider = runtime.config.providers.find((p) => p.id === spec.provider);
  if (!provider) return missing(`This gateway has no "${spec.provider}" provider configured; ask its operator.`);

  const db = database(env.DB);
  const ring = await runtime.keys();
  const loaded = await loadConnection(db, ring, principal, provider.id);
  const origin = { principal, clientId: null, sessionId: null, policyHash: null };
  if (loaded.kind !== "ok") {
    return missing(
      `The "${server}" server acts with your own ${provider.label} account, and you have not connected it yet. ` +
        `Open ${connectUrl} to connect it, then call again.`,
    );
  }
  // SECURITY: the kill switch. A blocked subject of this person (as they were when they connected) ends it.
  const standing = await loadStanding(db, [principal, ...loaded.subjects]);
  if (!judgeStanding(standing, Date.now()).ok || standing.blockedSubjects.length > 0) {
    await deleteConnection(db, principal, provider.id);
    return missing("Your access has been blocked by an administrator.");
  }
  let tokens: TokenSet = loaded.tokens;
  if (tokens.expiresAtMs !== null && tokens.expiresAtMs - Date.now() < REFRESH_BEFORE_EXPIRY_MS) {
    try {
      tokens = await refreshOnce(`${principal}\u0000${provider.id}`, () =>
        providerClient(provider, runtime.publicUrl, env.OAUTH_KV).refresh(loaded.tokens),
      );
      await saveConnection(db, ring, {
        principal,
        provider: provider.id,
        subjects: loaded.subjects,
        tokens,
        connectedAtMs: loaded.connectedAtMs,
      });
    } catch (cause) {
      if (!(cause instanceof ConnectUpstreamError)) throw cause;
      if (cause.kind === "unavailable") {
        console.warn(JSON.stringify({ event: "connection_refresh_unavailable", provider: provider.id }));
        return {
          kind: "unavailable",
          message: `${provider.label} could not be reached to renew your connection; try again shortly.`,
        };
      }
      // SECURITY: the upstream refused the refresh (revoked, expired): the connection is over.
      await deleteConnection(db, principal, provider.id);
      await writeAuditRow(auditLog(env), origin, {
        action: "connection:refresh_failed",
        server,
        tool,
        decision: "deny",
        reason: "refresh_refused",
        subject: provider.id,
      });
      return missing(
        `${provider.label} refused to renew your connection (it may have been revoked there), so it was removed. ` +
          `Open ${connectUrl} to connect again, then call again.`,
      );
    }
  }
  if (tool !== null) {
    await writeAuditRow(auditLog(env), origin, {
      action: "connection:use",
      server,
      tool,
      decision: "allow",
      reason: "connected",
      subject: provider.id,
    });
  }
  return { kind: "connected", token: tokens.accessToken };
}

/**
 * Two calls at once must not both spend the refresh token (a rotating provider would refuse the second and
 * we would delete a good connection). Within one isolate they share one refresh; across isolates they can
 * still race (README "Limitations").
 */
const refreshing = new Map<string, Promise<TokenSet>>();
function refreshOnce(key: string, run: () => Promise<TokenSet>): Promise<TokenSet> {
  const existing = refreshing.get(key);
  if (existing) return existing;
  const started = run().finally(() => refreshing.delete(key));
  refreshing.set(key, started);
  return started;
}

function json(body: ConnectionAnswer): Response {
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}

function problem(status: number, code: string, headers: Record<string, string> = {}, message = code): Response {
  return Response.json({ error: { code, message } }, { status, headers: { "cache-control": "no-store", ...headers } });
}
