import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { z } from "zod";
import { type BridgeKey, LISTEN_LIMITS } from "../../../container/src/contract.ts";
import { SERVER_IDS, type ServerId } from "../../../policies/catalog.ts";
import { authorize } from "../../../policies/decide.ts";
import { type Caller, loadRequestContext, type RequestContext } from "../../authz/request-context.ts";
import type { Database } from "../../db/database.ts";
import { HttpError } from "../../http/errors.ts";
import { type ContentDeps, contentTarget } from "../content.ts";
import { RpcError } from "../errors.ts";
import { parseQualifiedUri, qualifyUri } from "../names.ts";
import { mayUseServer } from "../tool-list.ts";
import { type ListenRules, ListenStream, type ListenTimings } from "./listen-stream.ts";
import type { ModernRequest } from "./request.ts";

/**
 * `subscriptions/listen` (MCP 2026-07-28, basic/patterns/subscriptions): a long-lived event stream of the
 * change notifications the client opted in to, for the servers the caller may use. What reaches whom:
 *
 * - `notifications/tools/list_changed` of a server the caller holds anything on (the servers its tools/list
 *   is asked of, tool-list.ts `mayUseServer`);
 * - `notifications/prompts/list_changed` and `notifications/resources/list_changed` of a server the caller
 *   may read (a server-wide grant: what its prompts/list and resources/list merge, content.ts);
 * - `notifications/resources/updated` for a URI the client named in `resourceSubscriptions` and may read:
 *   each named URI is decided like a legacy `resources/subscribe` (content.ts `contentTarget`: a refusal is
 *   audited as a denial and reads like a resource that does not exist; it is left out of the acknowledged
 *   filter, so the client sees "not honored" either way).
 *
 * SECURITY: every notification is decided against the caller's grants as last read (`policies/decide.ts`,
 * the decision lists use); a server the caller holds nothing on is not even listened to. The grants and the
 * caller's standing are read again every LISTEN_RECHECK_MS: a blocked or revoked person's stream ends then
 * with a JSON-RPC error (the 401's code and text), a policy re-seed that changes what the caller's lists hold
 * emits the matching `list_changed` (the gateway's own lists changed), and servers are listened to or let go.
 *
 * Audit, as for lists: opening a listen and relaying notifications write no row; a refused resource
 * subscription writes its denial row, as on the legacy path.
 */

/**
 * How often a listen reads the caller's standing and grants again (one D1 read): a blocked person's stream
 * ends within this, and a policy change reaches the client's lists within it.
 */
export const LISTEN_RECHECK_MS = 30_000;
/**
 * Workers keep a request alive while its client is connected (idle time costs no CPU), but a deployment or a
 * runtime update ends it, and an open stream keeps the running containers it listens to awake. The gateway
 * ends a listen gracefully after this (the revision's `subscriptions/listen` result), well inside the
 * default one-hour access token, so a client listens again with a token that is still good.
 */
export const LISTEN_MAX_MS = 15 * 60_000;
/**
 * A keep-alive comment this often (streamable-http: encouraged for listen streams; proxies cut idle ones; the
 * reference SDK's own interval). It also bounds how long a stream its client left is kept: `request.signal`
 * aborts when the client goes (the `enable_request_signal` flag, wrangler.jsonc), and where that does not
 * arrive a failed write tells the Worker, so the listen and its streams toward the bridge end at a
 * keep-alive at the latest (locally, before the flag, the second one after the close:
 * test/e2e/modern-listen.test.ts).
 */
export const LISTEN_KEEPALIVE_MS = 15_000;

/** The content requests' deps (a refused subscription's audit row, content.ts), and the grants' database. */
export interface ListenDeps extends ContentDeps {
  readonly db: Kysely<Database>;
  readonly keys: () => Promise<{ readonly bridge: BridgeKey }>;
  readonly insecureDevBridgeUrl: string | null;
  readonly containers: DurableObjectNamespace | undefined;
  /** Tests only: shorter clocks than the constants above. */
  readonly timings?: Partial<ListenTimings>;
}

/** The revision's SubscriptionFilter. Fields it may gain later are ignored (not honored, not refused). */
const SubscriptionFilter = z.object({
  toolsListChanged: z.boolean().optional(),
  promptsListChanged: z.boolean().optional(),
  resourcesListChanged: z.boolean().optional(),
  resourceSubscriptions: z
    .array(z.string().min(1).max(LISTEN_LIMITS.maxUriChars))
    .max(LISTEN_LIMITS.maxResources)
    .optional(),
});
type Filter = z.infer<typeof SubscriptionFilter>;

/** The filter the gateway honors, as acknowledged: only what was asked for and is served. */
interface Honored {
  readonly toolsListChanged?: true;
  readonly promptsListChanged?: true;
  readonly resourcesListChanged?: true;
  readonly resourceSubscriptions?: readonly string[];
}

type Target = { readonly server: ServerId; readonly name: string };

export async function serveListen(
  deps: ListenDeps,
  caller: Caller,
  request: Request,
  modern: Pick<ModernRequest, "params"> & { readonly id: string | number },
): Promise<Response> {
  // The answer is an event stream and nothing else: a client that cannot take one cannot listen.
  const accept = request.headers.get("accept")?.toLowerCase() ?? "";
  if (!accept.includes("text/event-stream") && !accept.includes("*/*")) {
    throw new HttpError(
      406,
      "subscriptions/listen answers with an event stream: the Accept header must allow text/event-stream.",
      { rpcCode: ErrorCode.InvalidRequest },
    );
  }
  const parsed = SubscriptionFilter.safeParse(modern.params.notifications);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    return rpcError(modern.id, ErrorCode.InvalidParams, `Invalid params: notifications must be a filter (${issues})`);
  }
  // SECURITY: decided like every request: standing and grants from D1, fail closed (401/503).
  const ctx = await loadRequestContext(deps.db, caller, null);
  let subscribed: ReadonlyMap<string, Target>;
  try {
    subscribed = await decideSubscriptions(deps, ctx, parsed.data.resourceSubscriptions ?? []);
  } catch (error) {
    // The audit log failing: no stream without its rows.
    if (error instanceof RpcError) return rpcError(modern.id, error.code, error.message);
    throw error;
  }
  const honored = honoredFilter(parsed.data, subscribed);
  const { bridge } = await deps.keys();
  const stream = new ListenStream({
    id: modern.id,
    caller,
    ctx,
    db: deps.db,
    route: { key: bridge, insecureDevBridgeUrl: deps.insecureDevBridgeUrl, containers: deps.containers },
    honored,
    rules: listenRules(honored, subscribed),
    timings: {
      recheckMs: deps.timings?.recheckMs ?? LISTEN_RECHECK_MS,
      maxMs: deps.timings?.maxMs ?? LISTEN_MAX_MS,
      keepAliveMs: deps.timings?.keepAliveMs ?? LISTEN_KEEPALIVE_MS,
    },
    signal: request.signal,
  });
  return new Response(stream.readable, {
    status: 200,
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-store, no-transform",
      "x-accel-buffering": "no",
    },
  });
}

/** Each named URI decided once, concurrently; the ones the caller may read, by the client's URI. */
async function decideSubscriptions(
  deps: ListenDeps,
  ctx: RequestContext,
  uris: readonly string[],
): Promise<ReadonlyMap<string, Target>> {
  const decided = await Promise.all(
    [...new Set(uris)].map(async (uri) => {
      try {
        return [uri, await contentTarget(deps, ctx, parseQualifiedUri(uri), "resources/subscribe", uri)] as const;
      } catch (error) {
        // "Not found" (not the caller's, or nothing): not honored. Anything else (the audit log) fails the listen.
        if (error instanceof RpcError && error.code === ErrorCode.InvalidParams) return null;
        throw error;
      }
    }),
  );
  return new Map(decided.filter((d) => d !== null));
}

function honoredFilter(filter: Filter, subscribed: ReadonlyMap<string, Target>): Honored {
  return {
    ...(filter.toolsListChanged === true ? { toolsListChanged: true } : {}),
    ...(filter.promptsListChanged === true ? { promptsListChanged: true } : {}),
    ...(filter.resourcesListChanged === true ? { resourcesListChanged: true } : {}),
    ...(subscribed.size > 0 ? { resourceSubscriptions: [...subscribed.keys()] } : {}),
  };
}

/** The one decision on a server's prompts and resources (the same as content.ts lists use). */
function readable(ctx: RequestContext, server: ServerId): boolean {
  return authorize(ctx.grants, { kind: "server-content", server }).allow;
}

/** What one listen relays, and what it listens to, under the caller's grants as last read. */
function listenRules(honored: Honored, subscribed: ReadonlyMap<string, Target>): ListenRules {
  const lists = honored.promptsListChanged === true || honored.resourcesListChanged === true;
  return {
    wanted(ctx) {
      const wanted = new Map<ServerId, readonly string[]>();
      for (const server of SERVER_IDS) {
        const content = readable(ctx, server);
        const uris = content ? [...subscribed.values()].filter((t) => t.server === server).map((t) => t.name) : [];
        const tools = honored.toolsListChanged === true && mayUseServer(ctx, server);
        if (tools || (lists && content) || uris.length > 0) wanted.set(server, uris.sort());
      }
      return wanted;
    },
    relay(ctx, server, message) {
      const method = message.method;
      switch (method) {
        case "notifications/tools/list_changed":
          return honored.toolsListChanged && mayUseServer(ctx, server) ? { method } : null;
        case "notifications/prompts/list_changed":
          return honored.promptsListChanged && readable(ctx, server) ? { method } : null;
        case "notifications/resources/list_changed":
          return honored.resourcesListChanged && readable(ctx, server) ? { method } : null;
        case "notifications/resources/updated": {
          const params = message.params;
          const uri = typeof params === "object" && params !== null ? Reflect.get(params, "uri") : undefined;
          if (typeof uri !== "string") return null;
          // SECURITY: only a URI this client named and was granted, of this very server, and still readable.
          const ours = qualifyUri(server, uri);
          return subscribed.get(ours)?.server === server && readable(ctx, server)
            ? { method, params: { uri: ours } }
            : null;
        }
        default:
          return null;
      }
    },
    policyChanges(before, after) {
      const changed: string[] = [];
      if (honored.toolsListChanged && toolsKey(before) !== toolsKey(after)) {
        changed.push("notifications/tools/list_changed");
      }
      if (readableKey(before) !== readableKey(after)) {
        if (honored.promptsListChanged) changed.push("notifications/prompts/list_changed");
        if (honored.resourcesListChanged) changed.push("notifications/resources/list_changed");
      }
      return changed;
    },
  };
}

/** Everything a caller's tool list is decided on (tool-list.ts): its tool grants and server-wide levels. */
function toolsKey(ctx: RequestContext): string {
  return JSON.stringify([[...ctx.grants.tools].sort(), [...ctx.grants.servers].sort()]);
}

/** The servers whose prompts and resources the caller's lists merge. */
function readableKey(ctx: RequestContext): string {
  return SERVER_IDS.filter((s) => readable(ctx, s)).join(",");
}

function rpcError(id: string | number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } }), {
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}
