import {
  type CallToolRequest,
  CallToolRequestSchema,
  type CompleteRequest,
  CompleteRequestSchema,
  ErrorCode,
  type GetPromptRequest,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  McpError,
  type ReadResourceRequest,
  ReadResourceRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { BRIDGE_ROUTES, type BridgeKey } from "../../../container/src/contract.ts";
import type { ServerId } from "../../../policies/catalog.ts";
import { declaredCapabilities } from "../../../policies/client-capabilities.ts";
import type { AuditLog } from "../../audit/audit.ts";
import type { DecisionCache } from "../../authz/decision-cache.ts";
import { type Caller, loadContextWithoutGrants, loadRequestContext } from "../../authz/request-context.ts";
import { bridgeFetchFor, executeOnBridge } from "../../bridge/router.ts";
import type { ConnectElicitation } from "../../connect/elicit.ts";
import type { Database } from "../../db/database.ts";
import { HttpError } from "../../http/errors.ts";
import { refuseInvalidAudited } from "../audited.ts";
import {
  type ContentMethod,
  type ContentSender,
  complete,
  getPrompt,
  listPrompts,
  listResources,
  listResourceTemplates,
  readResource,
} from "../content.ts";
import type { ToolCallDeps } from "../deps.types.ts";
import { jsonRpcErrorResponse, RpcError } from "../errors.ts";
import { INSTRUCTIONS, SERVER_INFO } from "../server-info.ts";
import { outcomeOfReply } from "../tool-call.ts";
import { listTools } from "../tool-list.ts";
import { serveToolCall } from "./call.ts";
import { withoutHeaderMirroring } from "./headers.ts";
import { serveListen } from "./listen.ts";
import type { ListenTimings } from "./listen-stream.ts";
import { ALL_PROTOCOL_VERSIONS, checkModernRequest, type ModernRequest } from "./request.ts";

/**
 * The stateless 2026-07-28 path on `/mcp`. Each request stands alone: its token was checked by the OAuth
 * provider, it is authorized on its own (one D1 read: grants, standing, rate window), and its tools/call
 * goes through the one tool call (tool-call.ts), sent with ONE request to the server's container on the
 * bridge's `/execute` (one JSON-RPC request to the server's process). No session object, no bridge
 * session, no `Mcp-Session-Id` (one sent is ignored and never echoed: this request is not part of it).
 *
 * Served: `server/discover`, `ping`, `tools/list`, `tools/call`, and through the session path's functions
 * (content.ts) `resources/list`, `resources/templates/list`, `resources/read`, `prompts/list`, `prompts/get`,
 * `completion/complete`, and `subscriptions/listen` (listen.ts: the change notifications `server/discover`
 * advertises as `listChanged` and `subscribe`). Any other method (`resources/subscribe`, which the revision
 * replaced by listen, …) is 404 with -32601, as the revision asks of a method the server does not implement.
 */
export interface ModernDeps {
  readonly db: Kysely<Database>;
  readonly audit: AuditLog;
  readonly keys: () => Promise<{
    readonly bridge: BridgeKey;
    readonly audit: CryptoKey;
    /** MACs the `requestState` of InputRequiredResults (request-state.ts). */
    readonly requestState: CryptoKey;
  }>;
  readonly insecureDevBridgeUrl: string | null;
  readonly containers: DurableObjectNamespace | undefined;
  /** Keeps the invocation alive for work that outlives the response (a call's row after its client left). */
  readonly waitUntil: (promise: Promise<unknown>) => void;
  /** Issue 17: asks to connect a missing account (worker/connect/elicit.ts); null when no provider is configured. */
  readonly connect?: ConnectElicitation | null;
  /**
   * Decision facts a tools/call may reuse within a bound (authz/decision-cache.ts), as a direct call does;
   * absent: D1 is read on every request. SECURITY: the bound is what a block or a re-seed waits for at most
   * on this path, the same as on the direct one.
   */
  readonly decisions?: DecisionCache;
  /** `subscriptions/listen` clocks other than listen.ts's defaults (configuration, tests). */
  readonly timings?: Partial<ListenTimings>;
}

/** Lists change whenever the policy does: cached by nobody. Discovery says the same to everyone. */
const LIST_TTL_MS = 0;
const DISCOVER_TTL_MS = 5 * 60_000;
/** Bounds one server's pages of tools/list, like the session path (backends.ts). */
const MAX_LIST_PAGES = 20;
/** The bridge's `/execute` body wraps the message in {server, message}: one level its depth bound counts. */
const EXECUTE_ENVELOPE_LEVELS = 1;
/** Request ids toward the bridge: never the client's, so equal ids of two callers never meet. */
const MODERN_ID_PREFIX = "hatago-modern:";

export async function serveModern(
  deps: ModernDeps,
  caller: Caller,
  request: Request,
  message: unknown,
): Promise<Response> {
  try {
    return await serve(deps, caller, request, message);
  } catch (error) {
    // Refusals answer the request's id when it has a usable one (the revision's error examples do).
    if (error instanceof HttpError) return jsonRpcErrorResponse(error, idOf(message), request.url);
    throw error;
  }
}

function idOf(message: unknown): string | number | null {
  if (typeof message !== "object" || message === null) return null;
  const id = Reflect.get(message, "id");
  return typeof id === "string" || (typeof id === "number" && Number.isSafeInteger(id)) ? id : null;
}

async function serve(deps: ModernDeps, caller: Caller, request: Request, message: unknown): Promise<Response> {
  const checked = checkModernRequest(request, message);
  const id = checked.id;
  // SECURITY: requests that read no grants still check the caller's standing, as on the legacy path
  // (session.ts): a blocked or revoked person gets 401 on every request, notifications and ping included.
  const decides = id !== null && checked.method !== "server/discover" && checked.method !== "ping";
  if (!decides) await loadContextWithoutGrants(deps.db, caller, null);
  // A notification is accepted and has nothing to do: there is no session for it to change.
  if (id === null) return new Response(null, { status: 202 });
  const modern = { ...checked, id };
  switch (modern.method) {
    case "server/discover":
      return json(modern.id, discoverResult());
    case "ping":
      return json(modern.id, { resultType: "complete" });
    case "tools/list":
    case "tools/call":
      return await serveTools(deps, caller, request, modern);
    case "resources/list":
    case "resources/templates/list":
    case "resources/read":
    case "prompts/list":
    case "prompts/get":
    case "completion/complete":
      return await serveContent(deps, caller, request, { ...modern, method: modern.method });
    case "subscriptions/listen":
      return await serveListen(deps, caller, request, modern);
    default:
      throw new HttpError(404, `Method not found: ${modern.method.slice(0, 64)}`, {
        rpcCode: ErrorCode.MethodNotFound,
      });
  }
}

function discoverResult() {
  return {
    resultType: "complete",
    supportedVersions: [...ALL_PROTOCOL_VERSIONS],
    // listChanged and subscribe: served by subscriptions/listen (listen.ts).
    capabilities: {
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: true },
      completions: {},
      // Log lines of a call, on its own response stream, for a request that sets a log level (call.ts).
      logging: {},
    },
    _meta: { "io.modelcontextprotocol/serverInfo": SERVER_INFO },
    instructions: INSTRUCTIONS,
    ttlMs: DISCOVER_TTL_MS,
    cacheScope: "public",
  };
}

/**
 * What one modern request needs to reach the servers: its context, and `/execute` toward each server.
 * `reuseFacts`: a tools/call, which costs what a direct call costs (test/workers/metering/modern-cost.test.ts),
 * including the D1 read it skips when this isolate read the caller's facts within the last second.
 */
async function prepare(deps: ModernDeps, caller: Caller, request: Request, reuseFacts = false) {
  const keys = deps.keys();
  const cache = reuseFacts ? deps.decisions : undefined;
  const ctx = await loadRequestContext(deps.db, caller, null, cache ? { cache } : {});
  const { bridge, audit, requestState } = await keys;
  const fetchBridge = bridgeFetchFor(
    { key: bridge, insecureDevBridgeUrl: deps.insecureDevBridgeUrl, containers: deps.containers },
    caller.principal,
  );
  // Closing the response stream cancels the call toward the child: the bridge cancels a call whose
  // request goes away (container/src/execute.ts).
  const rpc = async (server: ServerId, method: string, params: unknown) => {
    const id = `${MODERN_ID_PREFIX}${crypto.randomUUID()}`;
    const response = await fetchBridge(server, BRIDGE_ROUTES.execute, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ server, message: { jsonrpc: "2.0", id, method, params } }),
      signal: request.signal,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`bridge answered ${response.status}: ${text.slice(0, 200)}`);
    return { reply: JSON.parse(text) as unknown, id };
  };
  const liveTools = async (server: ServerId): Promise<Tool[]> => {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const { reply, id } = await rpc(server, "tools/list", cursor ? { cursor } : {});
      const outcome = outcomeOfReply(reply, id);
      if (outcome.kind !== "result") throw new Error(`tools/list of ${server} failed`);
      const listed = (outcome.result as { tools?: unknown; nextCursor?: unknown }).tools;
      if (!Array.isArray(listed)) throw new Error(`tools/list of ${server} has no tools`);
      tools.push(...(listed as Tool[]));
      const next = (outcome.result as { nextCursor?: unknown }).nextCursor;
      cursor = typeof next === "string" ? next : undefined;
      if (!cursor) break;
    }
    return tools;
  };
  const core: ToolCallDeps = {
    audit: deps.audit,
    auditKey: audit,
    liveTools,
    execute: (server, _principal, message) => executeOnBridge(fetchBridge, server, message),
  };
  return { ctx, rpc, liveTools, core, fetchBridge, stateKey: requestState };
}

async function serveTools(
  deps: ModernDeps,
  caller: Caller,
  request: Request,
  modern: ModernRequest & { readonly id: string | number },
): Promise<Response> {
  const reuseFacts = modern.method === "tools/call";
  const { ctx, liveTools, core, fetchBridge, stateKey } = await prepare(deps, caller, request, reuseFacts);
  // What this request's client declared in its `_meta`: it is listed, and may call, only the tools
  // those capabilities can use (policies/client-capabilities.ts).
  const declared = declaredCapabilities(modern.clientCapabilities);

  if (modern.method === "tools/list") {
    const tools = withoutHeaderMirroring(await listTools(ctx, liveTools, declared));
    return json(modern.id, { resultType: "complete", tools, ttlMs: LIST_TTL_MS, cacheScope: "private" });
  }
  // An invalid call is refused after its decision, with its one row, like on every path (audited.ts).
  const message = { jsonrpc: "2.0", id: modern.id, method: modern.method, params: modern.params };
  const refused = await refuseInvalidAudited(core, ctx, message, declared, EXECUTE_ENVELOPE_LEVELS);
  if (refused) {
    const body = { jsonrpc: "2.0", id: modern.id, error: { code: refused.error.code, message: refused.error.message } };
    return new Response(JSON.stringify(body), { status: refused.status, headers: JSON_HEADERS });
  }
  // `inputResponses` and `requestState` (a retry's) are read from the params as sent (call.ts); the parsed
  // params keep what goes to the server.
  const params = CallToolRequestSchema.shape.params.parse(modern.params) as CallToolRequest["params"];
  const connect = deps.connect ? { elicitation: deps.connect, db: deps.db } : null;
  return serveToolCall(
    { ctx, core, fetchBridge, stateKey, waitUntil: deps.waitUntil, connect },
    modern,
    declared,
    params,
  );
}

type ContentRequest = ModernRequest & { readonly id: string | number; readonly method: ContentMethod };

/**
 * resources/*, prompts/* and completion/complete: the session path's functions (content.ts: the same
 * decision, the same audit row, the same renaming), sent with one `/execute` request each. A read or a
 * prompt with invalid params is refused after its decision, with its row (audited.ts), like a tool call.
 */
async function serveContent(
  deps: ModernDeps,
  caller: Caller,
  request: Request,
  modern: ContentRequest,
): Promise<Response> {
  const { ctx, rpc, core } = await prepare(deps, caller, request);
  const message = { jsonrpc: "2.0", id: modern.id, method: modern.method, params: modern.params };
  const refused = await refuseInvalidAudited(
    core,
    ctx,
    message,
    declaredCapabilities(modern.clientCapabilities),
    EXECUTE_ENVELOPE_LEVELS,
  );
  if (refused) return errorResponse(modern.id, refused.error, refused.status);
  // The server's initialize result (the bridge answers it from its cache): asked once per request and server.
  const initialized = new Map<ServerId, Promise<Readonly<Record<string, unknown>>>>();
  const sender: ContentSender = {
    capabilities: (server) => {
      let pending = initialized.get(server);
      if (!pending) {
        pending = sendRpc(rpc, server, "initialize", INITIALIZE_PARAMS).then((r) =>
          isObject(r.capabilities) ? r.capabilities : {},
        );
        initialized.set(server, pending);
      }
      return pending;
    },
    request: (server, method, params) => sendRpc(rpc, server, method, params),
  };
  try {
    const parsed = CONTENT_REQUESTS[modern.method].safeParse({ method: modern.method, params: modern.params });
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
      throw new RpcError(ErrorCode.InvalidParams, `Invalid ${modern.method} request: ${issues}`);
    }
    const result = await runContent(core, ctx, sender, modern.method, parsed.data.params);
    return json(modern.id, { ...result, resultType: "complete" });
  } catch (error) {
    if (error instanceof RpcError) return errorResponse(modern.id, error, 200);
    // The server's own JSON-RPC error, passed on as the session path passes it on.
    if (error instanceof McpError) {
      const body = {
        jsonrpc: "2.0",
        id: modern.id,
        error: { code: error.code, message: error.message, data: error.data },
      };
      return new Response(JSON.stringify(body), { status: 200, headers: JSON_HEADERS });
    }
    throw error;
  }
}

/** Each content method's request schema: what the SDK's `Server` checks on the session path. */
const CONTENT_REQUESTS = {
  "resources/list": ListResourcesRequestSchema,
  "resources/templates/list": ListResourceTemplatesRequestSchema,
  "resources/read": ReadResourceRequestSchema,
  "prompts/list": ListPromptsRequestSchema,
  "prompts/get": GetPromptRequestSchema,
  "completion/complete": CompleteRequestSchema,
} as const;

async function runContent(
  deps: ToolCallDeps,
  ctx: Awaited<ReturnType<typeof prepare>>["ctx"],
  sender: ContentSender,
  method: ContentMethod,
  params: unknown,
): Promise<Record<string, unknown>> {
  switch (method) {
    case "resources/list":
      return { resources: await listResources(ctx, sender), ttlMs: LIST_TTL_MS, cacheScope: "private" };
    case "resources/templates/list":
      return {
        resourceTemplates: await listResourceTemplates(ctx, sender),
        ttlMs: LIST_TTL_MS,
        cacheScope: "private",
      };
    case "prompts/list":
      return { prompts: await listPrompts(ctx, sender), ttlMs: LIST_TTL_MS, cacheScope: "private" };
    case "resources/read":
      // A read is cacheable like a list (the revision requires both fields): never cached, the caller's own.
      return {
        ...(await readResource(deps, ctx, sender, params as ReadResourceRequest["params"])),
        ttlMs: LIST_TTL_MS,
        cacheScope: "private",
      };
    case "prompts/get":
      return getPrompt(deps, ctx, sender, params as GetPromptRequest["params"]);
    case "completion/complete":
      return complete(deps, ctx, sender, params as CompleteRequest["params"]);
  }
}

/** What the bridge is asked when it is asked `initialize` on `/execute`: answered from its cache. */
const INITIALIZE_PARAMS = {
  protocolVersion: "2025-11-25",
  capabilities: {},
  clientInfo: { name: "hatago-modern", version: "1.0.0" },
};

/**
 * One request to a server on `/execute`: its result, or an `McpError` with the server's JSON-RPC error;
 * any other failure (the bridge down) is an Error, which the content functions record as unavailable.
 */
async function sendRpc(
  rpc: Awaited<ReturnType<typeof prepare>>["rpc"],
  server: ServerId,
  method: string,
  params: unknown,
): Promise<Record<string, unknown>> {
  const { reply, id } = await rpc(server, method, params);
  if (!isObject(reply) || reply.id !== id) throw new Error("the bridge answered another request");
  if (isObject(reply.error)) {
    const code = typeof reply.error.code === "number" ? reply.error.code : ErrorCode.InternalError;
    const message = typeof reply.error.message === "string" ? reply.error.message : "error";
    // McpError prefixes its message; the server's own text is what is passed on.
    const error = new McpError(code, message, reply.error.data);
    error.message = message;
    throw error;
  }
  if (!isObject(reply.result)) throw new Error("the bridge's answer has no result");
  return reply.result;
}

function errorResponse(id: string | number, error: RpcError, status: number): Response {
  const body = { jsonrpc: "2.0", id, error: { code: error.code, message: error.message } };
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

function json(id: string | number, result: Record<string, unknown>): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", id, result }), { status: 200, headers: JSON_HEADERS });
}
