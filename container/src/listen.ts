import type { IncomingMessage, ServerResponse } from "node:http";
import { isServerId } from "../../policies/catalog.ts";
import { authenticate, type BridgeContext, credentialMissing } from "./context.ts";
import { BRIDGE_CREDENTIAL_HEADER, BRIDGE_LIMITS, LISTEN_BODY_FIELDS, LISTEN_LIMITS } from "./contract.ts";
import { BridgeHttpError, badRequest, methodNotAllowed, notFound } from "./errors.ts";
import { header, parseBoundedJson, readBody, requireJsonContentType } from "./http.ts";
import { isJsonObject } from "./jsonrpc.ts";
import { admitSession } from "./limits.ts";
import { CHANGE_METHODS, type ChangeListener } from "./listener.ts";
import { SSE_HEADERS, writeSseEvent, writeSseKeepAlive } from "./sse.ts";

/** How often an open listen stream gets a keep-alive comment (the bridge's GET streams use the same). */
const LISTEN_KEEPALIVE_MS = 25_000;

/**
 * `POST /listen` (contract.ts, ListenRequestBody): one server's change notifications for the credential's
 * principal, as an event stream, for as long as the Worker keeps the request open. The Worker opens one per
 * server a 2026-07-28 `subscriptions/listen` may hear of (worker/mcp/modern/listen.ts) and decides, per
 * caller and per notification, what of it reaches the client: the bridge only delivers what the process said.
 *
 * SECURITY: the principal is the credential's (`listen`, minted by the Worker) and nothing else; a per-user
 * server's stream is that principal's own process (the pool's key), a shared server's is the one process.
 * Only the four change notifications are written (listener.ts, CHANGE_METHODS): never a log line, a progress
 * notification or a server's request, which belong to one call.
 *
 * The stream does not start the server's process and does not keep it running (listeners.ts): a stopped
 * process changes nothing, and one started later by a call is heard from its first line. Opening the stream
 * is admitted like a session (HATAGO_BRIDGE_MAX_SESSIONS per server; 503 beyond), and one principal holds
 * at most LISTEN_LIMITS.maxPerPrincipal streams on a server (429 beyond).
 */
export async function handleListen(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") throw methodNotAllowed("POST");
  // Refuse anonymous callers before reading their body.
  if (!header(req, BRIDGE_CREDENTIAL_HEADER)) throw credentialMissing();
  requireJsonContentType(req);
  const body = parseBoundedJson(await readBody(req, BRIDGE_LIMITS.maxRequestBytes));
  if (!isJsonObject(body)) throw badRequest("invalid_body", "the body must be a JSON object { server, resources }");
  for (const field of Object.keys(body)) {
    if (!(LISTEN_BODY_FIELDS as readonly string[]).includes(field)) {
      throw badRequest("field_not_allowed", `field not allowed: ${field.slice(0, 64)}`);
    }
  }
  const { server, resources } = body;
  if (!isServerId(server) || !ctx.pool.hosts(server)) throw notFound("unknown server");
  const uris = resourcesOf(resources);
  const claims = await authenticate(ctx, req, server, "listen", undefined);
  admitSession(ctx.pool.listeners.count(server), ctx.config);
  // SECURITY: one person cannot take every slot of a server's session limit with listen streams.
  if (ctx.pool.listeners.countOf(server, claims.sub) >= LISTEN_LIMITS.maxPerPrincipal) {
    throw tooManyListens();
  }

  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  const listener: ChangeListener = {
    principal: claims.sub,
    resources: uris,
    change: (method, line) => {
      if (CHANGE_METHODS.has(method) && !res.writableEnded) writeSseEvent(res, line);
    },
  };
  const remove = ctx.pool.listen(server, claims.sub, listener);
  const keepAlive = setInterval(() => writeSseKeepAlive(res), LISTEN_KEEPALIVE_MS);
  keepAlive.unref();
  ctx.log.debug("listen.opened", { server, resources: uris.size });
  res.on("close", () => {
    clearInterval(keepAlive);
    remove();
    ctx.log.debug("listen.closed", { server });
  });
}

/** The body's `resources`: a list of distinct strings within LISTEN_LIMITS (a 400 otherwise). */
function resourcesOf(value: unknown): ReadonlySet<string> {
  if (!Array.isArray(value) || value.length > LISTEN_LIMITS.maxResources) {
    throw badRequest("invalid_resources", `resources must be a list of at most ${LISTEN_LIMITS.maxResources} URIs`);
  }
  for (const uri of value) {
    if (typeof uri !== "string" || uri.length === 0 || uri.length > LISTEN_LIMITS.maxUriChars) {
      throw badRequest(
        "invalid_resources",
        `each resource must be a URI of 1 to ${LISTEN_LIMITS.maxUriChars} characters`,
      );
    }
  }
  return new Set(value as string[]);
}

/** 429: this principal already holds LISTEN_LIMITS.maxPerPrincipal streams on this server. */
function tooManyListens(): BridgeHttpError {
  return new BridgeHttpError(
    429,
    "too_many_listens",
    `at most ${LISTEN_LIMITS.maxPerPrincipal} listen streams per person on one server; close one first`,
    { headers: { "retry-after": String(LISTEN_RETRY_AFTER_SECONDS) } },
  );
}

/** A listen that was refused is tried again by the Worker at its next re-check (30 s by default). */
const LISTEN_RETRY_AFTER_SECONDS = 30;
