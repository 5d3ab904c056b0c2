import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  type Prompt,
  ReadResourceRequestSchema,
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

/** Servers whose resources and prompts the caller may see: a server-wide grant of at least `read`. */
function readableServers(ctx: RequestContext): ServerId[] {
  return SERVER_IDS.filter((s) => authorize(ctx.grants, { kind: "server-content", server: s }).allow);
}

async function withCapability(backends: Backends, server: ServerId, capability: Capability): Promise<boolean> {
  try {
    return Boolean((await backends.capabilities(server))[capability]);
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
  backends: Backends,
  capability: Capability,
  page: (client: Client, cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>,
  rename: (server: ServerId, item: T) => T,
): Promise<T[]> {
  const out: T[] = [];
  for (const server of readableServers(ctx)) {
    if (!(await withCapability(backends, server, capability))) continue;
    const client = await backends.client(server);
    let cursor: string | undefined;
    for (let n = 0; n < MAX_LIST_PAGES; n++) {
      const result = await page(client, cursor);
      for (const item of result.items) out.push(rename(server, item));
      cursor = result.nextCursor;
      if (!cursor) break;
    }
  }
  return out;
}

export function registerContentHandlers(server: Server, deps: ToolDeps): void {
  const target = async (
    ctx: RequestContext,
    qualified: ReturnType<typeof parseQualifiedName>,
    action: AuditAction,
    name: string,
  ) => {
    const allowed = qualified && authorize(ctx.grants, { kind: "server-content", server: qualified.server }).allow;
    if (!allowed) {
      await auditOrFail(deps, ctx, {
        action,
        server: qualified?.server ?? null,
        tool: name,
        decision: "deny",
        reason: qualified ? "server_not_granted" : "unknown_target",
      });
      throw targetNotFound(action.startsWith("prompts") ? "Prompt" : "Resource", name);
    }
    return qualified;
  };

  /**
   * Runs an allowed read against its server and writes its one audit row before the answer, however it
   * ends: a JSON-RPC error from the server (a prompt that does not exist there) is recorded as such, and
   * so is a server that cannot be reached.
   */
  const audited = async <R>(
    ctx: RequestContext,
    action: AuditAction,
    t: { server: ServerId; name: string },
    run: (client: Client) => Promise<R>,
  ) => {
    const record = allowedCallRecorder(deps, ctx, { action, server: t.server, tool: t.name, digest: null });
    let result: R;
    try {
      result = await run(await deps.backends().client(t.server));
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
  };

  server.setRequestHandler(ListResourcesRequestSchema, async (_req, extra) => ({
    resources: await listAcross<Resource>(
      contextOf(extra),
      deps.backends(),
      "resources",
      async (client, cursor) => {
        const r = await client.listResources(cursor ? { cursor } : {});
        return { items: r.resources, nextCursor: r.nextCursor };
      },
      (server, r) => ({ ...r, uri: qualifyUri(server, r.uri) }),
    ),
  }));

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_req, extra) => ({
    resourceTemplates: await listAcross<ResourceTemplate>(
      contextOf(extra),
      deps.backends(),
      "resources",
      async (client, cursor) => {
        const r = await client.listResourceTemplates(cursor ? { cursor } : {});
        return { items: r.resourceTemplates, nextCursor: r.nextCursor };
      },
      (server, t) => ({ ...t, uriTemplate: qualifyUri(server, t.uriTemplate) }),
    ),
  }));

  server.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
    const ctx = contextOf(extra);
    const t = await target(ctx, parseQualifiedUri(req.params.uri), "resources/read", req.params.uri);
    const result = await audited(ctx, "resources/read", t, (client) =>
      client.readResource({ ...req.params, uri: t.name }),
    );
    return { ...result, contents: result.contents.map((c) => ({ ...c, uri: qualifyUri(t.server, c.uri) })) };
  });

  server.setRequestHandler(SubscribeRequestSchema, async (req, extra) => {
    const t = await target(contextOf(extra), parseQualifiedUri(req.params.uri), "resources/subscribe", req.params.uri);
    await (await deps.backends().client(t.server)).subscribeResource({ uri: t.name });
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, async (req, extra) => {
    const t = await target(
      contextOf(extra),
      parseQualifiedUri(req.params.uri),
      "resources/unsubscribe",
      req.params.uri,
    );
    await (await deps.backends().client(t.server)).unsubscribeResource({ uri: t.name });
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async (_req, extra) => ({
    prompts: await listAcross<Prompt>(
      contextOf(extra),
      deps.backends(),
      "prompts",
      async (client, cursor) => {
        const r = await client.listPrompts(cursor ? { cursor } : {});
        return { items: r.prompts, nextCursor: r.nextCursor };
      },
      (server, p) => ({ ...p, name: qualifyName(server, p.name) }),
    ),
  }));

  server.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
    const ctx = contextOf(extra);
    const t = await target(ctx, parseQualifiedName(req.params.name), "prompts/get", req.params.name);
    return audited(ctx, "prompts/get", t, (client) => client.getPrompt({ ...req.params, name: t.name }));
  });

  server.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
    const ctx = contextOf(extra);
    const ref = req.params.ref;
    const qualified = ref.type === "ref/prompt" ? parseQualifiedName(ref.name) : parseQualifiedUri(ref.uri);
    const t = await target(ctx, qualified, "completion/complete", ref.type === "ref/prompt" ? ref.name : ref.uri);
    const inner = ref.type === "ref/prompt" ? { ...ref, name: t.name } : { ...ref, uri: t.name };
    return (await deps.backends().client(t.server)).complete({ ...req.params, ref: inner });
  });

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    await deps.backends().setLoggingLevel(req.params.level);
    return {};
  });
}
