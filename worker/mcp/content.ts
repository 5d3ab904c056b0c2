import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  type CompleteRequest,
  CompleteRequestSchema,
  type CompleteResult,
  CompleteResultSchema,
  ErrorCode,
  type GetPromptRequest,
  GetPromptRequestSchema,
  type GetPromptResult,
  GetPromptResultSchema,
  ListPromptsRequestSchema,
  ListPromptsResultSchema,
  ListResourcesRequestSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesRequestSchema,
  ListResourceTemplatesResultSchema,
  type Prompt,
  type ReadResourceRequest,
  ReadResourceRequestSchema,
  type ReadResourceResult,
  ReadResourceResultSchema,
  type Resource,
  type ResourceTemplate,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import { authorize } from "../../policies/decide.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditAction } from "../db/audit-log.table.ts";
import type { Backends } from "./backends.ts";
import { allowedCallRecorder, auditOrFail, failedOutcome } from "./call-guards.ts";
import { contextOf } from "./context.ts";
import { RpcError } from "./errors.ts";
import { parseQualifiedName, parseQualifiedUri, qualifyName, qualifyUri, targetNotFound } from "./names.ts";
import type { ToolDeps } from "./tools.ts";

/** Lists are merged across servers and returned whole; this bounds one server's pages. */
const MAX_LIST_PAGES = 20;

type Capability = "resources" | "prompts" | "completions";

/**
 * How a path reaches a server for resources, prompts and completion: the only thing a path brings (the
 * session's SDK clients on its bridge sessions; a 2026-07-28 request's `/execute`). Everything else, the
 * decision, the audit row, the renaming into the gateway's namespace, is here, once, for both eras.
 *
 * `request` resolves to the server's result; it rejects with an `McpError` carrying the server's JSON-RPC
 * error, or any other error when the request never completed (the bridge down, a timeout).
 */
export interface ContentSender {
  capabilities(server: ServerId): Promise<Readonly<Record<string, unknown>>>;
  request(server: ServerId, method: ContentMethod, params: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export type ContentMethod =
  | "resources/list"
  | "resources/templates/list"
  | "resources/read"
  | "prompts/list"
  | "prompts/get"
  | "completion/complete";

/** What the content requests need: the audit log. */
export interface ContentDeps {
  readonly audit: ToolDeps["audit"];
}

/** Servers whose resources and prompts the caller may see: a server-wide grant of at least `read`. */
function readableServers(ctx: RequestContext): ServerId[] {
  return SERVER_IDS.filter((s) => authorize(ctx.grants, { kind: "server-content", server: s }).allow);
}

async function withCapability(sender: ContentSender, server: ServerId, capability: Capability): Promise<boolean> {
  try {
    return Boolean((await sender.capabilities(server))[capability]);
  } catch (error) {
    console.error(JSON.stringify({ event: "backend_unavailable", server, error: String(error) }));
    return false;
  }
}

/**
 * One list merged across every server the caller may read that offers `capability`: each server's pages
 * fetched whole (bounded), each item renamed into the gateway's namespace.
 */
async function listAcross<T>(
  ctx: RequestContext,
  sender: ContentSender,
  capability: Capability,
  method: "resources/list" | "resources/templates/list" | "prompts/list",
  field: "resources" | "resourceTemplates" | "prompts",
  rename: (server: ServerId, item: T) => T,
): Promise<T[]> {
  const out: T[] = [];
  for (const server of readableServers(ctx)) {
    if (!(await withCapability(sender, server, capability))) continue;
    let cursor: string | undefined;
    for (let n = 0; n < MAX_LIST_PAGES; n++) {
      const result = await sender.request(server, method, cursor ? { cursor } : {});
      const items = result[field];
      if (Array.isArray(items)) for (const item of items as T[]) out.push(rename(server, item));
      cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
      if (!cursor) break;
    }
  }
  return out;
}

export const listResources = (ctx: RequestContext, sender: ContentSender) =>
  listAcross<Resource>(ctx, sender, "resources", "resources/list", "resources", (server, r) => ({
    ...r,
    uri: qualifyUri(server, r.uri),
  }));

export const listResourceTemplates = (ctx: RequestContext, sender: ContentSender) =>
  listAcross<ResourceTemplate>(
    ctx,
    sender,
    "resources",
    "resources/templates/list",
    "resourceTemplates",
    (server, t) => ({ ...t, uriTemplate: qualifyUri(server, t.uriTemplate) }),
  );

export const listPrompts = (ctx: RequestContext, sender: ContentSender) =>
  listAcross<Prompt>(ctx, sender, "prompts", "prompts/list", "prompts", (server, p) => ({
    ...p,
    name: qualifyName(server, p.name),
  }));

/**
 * The decision on a content request's target: a caller who may not read the server gets what a target that
 * does not exist gets, and the refusal is audited as a denial.
 */
export async function contentTarget(
  deps: ContentDeps,
  ctx: RequestContext,
  qualified: ReturnType<typeof parseQualifiedName>,
  action: AuditAction,
  name: string,
  /** What the name names, for the refusal's text: a prompt for prompts/get (and a prompt's completion). */
  kind: "Prompt" | "Resource" = action.startsWith("prompts") ? "Prompt" : "Resource",
): Promise<{ server: ServerId; name: string }> {
  const allowed = qualified && authorize(ctx.grants, { kind: "server-content", server: qualified.server }).allow;
  if (!allowed) {
    await auditOrFail(deps, ctx, {
      action,
      server: qualified?.server ?? null,
      tool: name,
      decision: "deny",
      reason: qualified ? "server_not_granted" : "unknown_target",
    });
    throw targetNotFound(kind, name);
  }
  return qualified;
}

/**
 * Runs an allowed read against its server and writes its one audit row before the answer, however it
 * ends: a JSON-RPC error from the server (a prompt that does not exist there) is recorded as such, and
 * so is a server that cannot be reached.
 */
async function audited<R>(
  deps: ContentDeps,
  ctx: RequestContext,
  action: AuditAction,
  t: { server: ServerId; name: string },
  run: () => Promise<R>,
): Promise<R> {
  const record = allowedCallRecorder(deps, ctx, { action, server: t.server, tool: t.name, digest: null });
  let result: R;
  try {
    result = await run();
  } catch (error) {
    // Our own errors (the audit log failing) are already the answer.
    if (error instanceof RpcError) throw error;
    const failed = failedOutcome(error);
    await record(failed.outcome, failed.errorCode);
    if (failed.outcome === "jsonrpc_error") throw error;
    throw new RpcError(
      ErrorCode.InternalError,
      `The "${t.server}" server is not available right now; try again shortly.`,
    );
  }
  await record("ok");
  return result;
}

/** resources/read: decided, audited, sent with the server's own URI, answered with ours. */
export async function readResource(
  deps: ContentDeps,
  ctx: RequestContext,
  sender: ContentSender,
  params: ReadResourceRequest["params"],
): Promise<Record<string, unknown>> {
  const t = await contentTarget(deps, ctx, parseQualifiedUri(params.uri), "resources/read", params.uri);
  const { _meta, ...rest } = params;
  const result = await audited(deps, ctx, "resources/read", t, () =>
    sender.request(t.server, "resources/read", { ...rest, uri: t.name }),
  );
  const contents = Array.isArray(result.contents) ? (result.contents as { uri: string }[]) : [];
  return { ...result, contents: contents.map((c) => ({ ...c, uri: qualifyUri(t.server, c.uri) })) };
}

/** prompts/get: decided, audited, sent with the server's own prompt name. */
export async function getPrompt(
  deps: ContentDeps,
  ctx: RequestContext,
  sender: ContentSender,
  params: GetPromptRequest["params"],
): Promise<Record<string, unknown>> {
  const t = await contentTarget(deps, ctx, parseQualifiedName(params.name), "prompts/get", params.name);
  const { _meta, ...rest } = params;
  return audited(deps, ctx, "prompts/get", t, () => sender.request(t.server, "prompts/get", { ...rest, name: t.name }));
}

/** completion/complete: decided (a refusal audited), sent with the server's own prompt name or URI. */
export async function complete(
  deps: ContentDeps,
  ctx: RequestContext,
  sender: ContentSender,
  params: CompleteRequest["params"],
): Promise<Record<string, unknown>> {
  const ref = params.ref;
  const qualified = ref.type === "ref/prompt" ? parseQualifiedName(ref.name) : parseQualifiedUri(ref.uri);
  const t = await contentTarget(
    deps,
    ctx,
    qualified,
    "completion/complete",
    ref.type === "ref/prompt" ? ref.name : ref.uri,
    ref.type === "ref/prompt" ? "Prompt" : "Resource",
  );
  const inner = ref.type === "ref/prompt" ? { ...ref, name: t.name } : { ...ref, uri: t.name };
  const { _meta, ...rest } = params;
  return sender.request(t.server, "completion/complete", { ...rest, ref: inner });
}

/** The result schema of each content method, for the session path's SDK clients. */
const RESULT_SCHEMAS = {
  "resources/list": ListResourcesResultSchema,
  "resources/templates/list": ListResourceTemplatesResultSchema,
  "resources/read": ReadResourceResultSchema,
  "prompts/list": ListPromptsResultSchema,
  "prompts/get": GetPromptResultSchema,
  "completion/complete": CompleteResultSchema,
} as const;

/** The session path's sender: the session's SDK client on the server's bridge session (backends.ts). */
export function backendsSender(backends: () => Backends): ContentSender {
  return {
    capabilities: (server) => backends().capabilities(server),
    request: async (server, method, params) => {
      const client = await backends().client(server);
      return (await client.request({ method, params }, RESULT_SCHEMAS[method])) as Record<string, unknown>;
    },
  };
}

export function registerContentHandlers(server: Server, deps: ToolDeps): void {
  const sender = backendsSender(deps.backends);
  server.setRequestHandler(ListResourcesRequestSchema, async (_req, extra) => ({
    resources: await listResources(contextOf(extra), sender),
  }));

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_req, extra) => ({
    resourceTemplates: await listResourceTemplates(contextOf(extra), sender),
  }));

  server.setRequestHandler(
    ReadResourceRequestSchema,
    async (req, extra) => (await readResource(deps, contextOf(extra), sender, req.params)) as ReadResourceResult,
  );

  server.setRequestHandler(SubscribeRequestSchema, async (req, extra) => {
    const t = await contentTarget(
      deps,
      contextOf(extra),
      parseQualifiedUri(req.params.uri),
      "resources/subscribe",
      req.params.uri,
    );
    await (await deps.backends().client(t.server)).subscribeResource({ uri: t.name });
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, async (req, extra) => {
    const t = await contentTarget(
      deps,
      contextOf(extra),
      parseQualifiedUri(req.params.uri),
      "resources/unsubscribe",
      req.params.uri,
    );
    await (await deps.backends().client(t.server)).unsubscribeResource({ uri: t.name });
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async (_req, extra) => ({
    prompts: await listPrompts(contextOf(extra), sender),
  }));

  server.setRequestHandler(
    GetPromptRequestSchema,
    async (req, extra) => (await getPrompt(deps, contextOf(extra), sender, req.params)) as GetPromptResult,
  );

  server.setRequestHandler(
    CompleteRequestSchema,
    async (req, extra) => (await complete(deps, contextOf(extra), sender, req.params)) as CompleteResult,
  );

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    await deps.backends().setLoggingLevel(req.params.level);
    return {};
  });
}
