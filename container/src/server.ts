import type { IncomingMessage, ServerResponse } from "node:http";
import { isServerId } from "../../policies/catalog.ts";
import { authenticate, type BridgeContext } from "./context.ts";
import { BRIDGE_EVICT_PREFIX, BRIDGE_ROUTES } from "./contract.ts";
import { BridgeHttpError, methodNotAllowed, notFound, sendError, sendJson } from "./errors.ts";
import { handleExecute } from "./execute.ts";
import { handleListen } from "./listen.ts";
import { errorText } from "./log.ts";
import { handleMcp } from "./mcp.ts";

/**
 * HTTP routing. Paths are matched on the raw request target, exactly: no decoding, no case folding,
 * no trailing-slash or dot-segment leniency (`/servers/%6Demory/mcp` and `/servers/Memory/mcp` are 404).
 */
export function createHandler(ctx: BridgeContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(ctx, req, res).catch((error: unknown) => fail(ctx, res, error));
  };
}

async function route(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? "";
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  if (path === BRIDGE_ROUTES.health) return health(ctx, req, res);
  // SECURITY: browsers send Origin and the Worker never does; refusing it keeps a web page (DNS
  // rebinding against a local bridge, the CVE-2025-49596 class) from even reaching credential checks.
  if (req.headers.origin !== undefined)
    throw new BridgeHttpError(403, "origin_refused", "browser requests are refused");
  if (path === BRIDGE_ROUTES.execute) return handleExecute(ctx, req, res);
  if (path === BRIDGE_ROUTES.listen) return handleListen(ctx, req, res);
  if (path.startsWith(BRIDGE_EVICT_PREFIX)) return handleEvict(ctx, req, res, path.slice(BRIDGE_EVICT_PREFIX.length));
  if (path.startsWith(BRIDGE_ROUTES.mcpPrefix) && path.endsWith(BRIDGE_ROUTES.mcpSuffix)) {
    const id = path.slice(BRIDGE_ROUTES.mcpPrefix.length, path.length - BRIDGE_ROUTES.mcpSuffix.length);
    // SECURITY: `isServerId` is an exact own-property match; an id this instance does not host is unknown too.
    if (isServerId(id) && ctx.pool.hosts(id)) return handleMcp(ctx, req, res, id);
  }
  throw notFound();
}

/**
 * `DELETE /connections/<server>` (issue 17): the Worker deleted a person's connection. SECURITY: the person
 * is the credential's (`connection-evict`, minted by the Worker); their process of that server is stopped and
 * the token forgotten. It only ever takes something away.
 */
async function handleEvict(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  if (!isServerId(id) || !ctx.pool.hosts(id)) throw notFound();
  if (req.method !== "DELETE") throw methodNotAllowed("DELETE");
  const claims = await authenticate(ctx, req, id, "connection-evict", undefined);
  await ctx.pool.evict(id, claims.sub);
  res.writeHead(204).end();
}

/**
 * `GET /health`, without a credential (Cloudflare probes it). SECURITY: it shows states, counts, pids
 * and exit statuses; never a principal, a session id, a credential or a child's output.
 */
function health(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== "GET" && req.method !== "HEAD") throw methodNotAllowed("GET, HEAD");
  const { ok, servers } = ctx.pool.health();
  sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable", servers });
}

function fail(ctx: BridgeContext, res: ServerResponse, error: unknown): void {
  if (res.destroyed || res.writableEnded) {
    // The client left mid-request (an aborted upload, say): nobody to answer.
    ctx.log.debug("http.abandoned", { error: errorText(error) });
    return;
  }
  if (error instanceof BridgeHttpError) {
    if (error.internal) ctx.log.info("http.refused", { code: error.code, internal: error.internal });
    sendError(res, error);
    return;
  }
  ctx.log.error("http.internal_error", { error: errorText(error) });
  sendError(res, new BridgeHttpError(500, "internal_error", "internal error"));
}
