import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import { SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import { authorize, type Decision } from "../../policies/decide.ts";
import { argsDigest } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { Database } from "../db/database.ts";
import type { Backends } from "./backends.ts";
import { allowedCallRecorder, auditOrFail, enforceRateLimit } from "./call-guards.ts";
import { contextOf } from "./context.ts";
import { RpcError } from "./errors.ts";
import { type ExecuteFn, executeStdioTool, runExecuteStdio } from "./execute-stdio.ts";
import { EXECUTE_STDIO_TOOL, parseQualifiedName, qualifyName } from "./names.ts";

export interface ToolDeps {
  readonly db: Kysely<Database>;
  readonly auditKey: CryptoKey;
  readonly backends: () => Backends;
  readonly execute: ExecuteFn;
  /** Called around each forwarded call, so server→client requests can be tied to it. */
  readonly inFlight: {
    begin(server: ServerId, requestId: string | number): void;
    end(server: ServerId, requestId: string | number): void;
  };
}

/** Whether the caller holds anything at all on a server (only then is the backend asked for its list). */
export function mayUseServer(ctx: RequestContext, server: ServerId): boolean {
  if (ctx.grants.servers.has(server)) return true;
  for (const key of ctx.grants.tools) if (key.startsWith(`${server}/`)) return true;
  return false;
}

/**
 * SECURITY: the answer for a tool that does not exist and for one the caller may not use is the same
 * error, word for word, so a denial reveals nothing about what exists.
 */
export function unknownTool(name: string): RpcError {
  return new RpcError(ErrorCode.InvalidParams, `Tool ${name} not found`);
}

export function registerToolHandlers(server: Server, deps: ToolDeps): void {
  server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => {
    const ctx = contextOf(extra);
    const tools: Tool[] = [];
    if (SERVER_IDS.some((s) => authorize(ctx.grants, { kind: "execute", server: s }).allow)) {
      tools.push(
        executeStdioTool(SERVER_IDS.filter((s) => authorize(ctx.grants, { kind: "execute", server: s }).allow)),
      );
    }
    const perServer = await Promise.all(
      SERVER_IDS.filter((s) => mayUseServer(ctx, s)).map(async (s) => {
        try {
          return { server: s, tools: await deps.backends().tools(s) };
        } catch (error) {
          // One server being down must not hide the others' tools.
          console.error(JSON.stringify({ event: "backend_list_failed", server: s, error: String(error) }));
          return { server: s, tools: [] };
        }
      }),
    );
    for (const { server: s, tools: list } of perServer) {
      for (const tool of list) {
        if (authorize(ctx.grants, { kind: "tool", server: s, tool: tool.name, annotations: tool.annotations }).allow) {
          tools.push({ ...tool, name: qualifyName(s, tool.name) });
        }
      }
    }
    return { tools };
  });

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const ctx = contextOf(extra);
    const name = req.params.name;
    const digest = await argsDigest(deps.auditKey, req.params.arguments ?? {});
    if (name === EXECUTE_STDIO_TOOL) return runExecuteStdio(deps, ctx, req.params.arguments, digest, auditOrFail);

    const target = parseQualifiedName(name);
    const decision = target ? await decide(deps, ctx, target.server, target.name) : null;
    if (!target || !decision?.allow) {
      await auditOrFail(deps, ctx, {
        action: "tools/call",
        server: target?.server ?? null,
        tool: target?.name ?? name,
        decision: "deny",
        reason: decision && !decision.allow ? decision.reason : "unknown_tool",
        argsDigest: digest,
      });
      throw unknownTool(name);
    }
    await enforceRateLimit(deps, ctx, "tools/call", target.server, target.name, digest);

    const progressToken = req.params._meta?.progressToken;
    const onprogress =
      progressToken === undefined
        ? undefined
        : (p: { progress: number; total?: number; message?: string }) => {
            void extra.sendNotification({ method: "notifications/progress", params: { ...p, progressToken } });
          };
    deps.inFlight.begin(target.server, extra.requestId);
    const record = allowedCallRecorder(deps, ctx, { server: target.server, tool: target.name, digest });
    try {
      const { _meta, ...params } = req.params;
      const backends = deps.backends();
      const call = { ...params, name: target.name };
      const result = (await backends.callTool(target.server, call, {
        signal: extra.signal,
        onprogress,
      })) as CallToolResult;
      await record(result.isError ? "tool_error" : "ok");
      return result;
    } catch (error) {
      // Our own errors (the audit log failing) are already the answer.
      if (error instanceof RpcError) throw error;
      // The backend answered with a JSON-RPC error, or the request never completed (bridge down, timeout).
      const isRpc =
        error instanceof McpError &&
        error.code !== ErrorCode.RequestTimeout &&
        error.code !== ErrorCode.ConnectionClosed;
      await record(isRpc ? "jsonrpc_error" : "transport_error", error instanceof McpError ? error.code : null);
      if (isRpc) throw error;
      throw new RpcError(
        ErrorCode.InternalError,
        `The "${target.server}" server is not available right now; try again shortly.`,
      );
    } finally {
      deps.inFlight.end(target.server, extra.requestId);
    }
  });
}

/** Snapshot tools are decided from the policy alone; a tool the server added since needs its live annotations. */
async function decide(deps: ToolDeps, ctx: RequestContext, server: ServerId, tool: string): Promise<Decision> {
  const known: Readonly<Record<string, unknown>> = catalogSnapshot[server].tools;
  if (Object.hasOwn(known, tool)) return authorize(ctx.grants, { kind: "tool", server, tool });
  if (!ctx.grants.servers.has(server)) return { allow: false, reason: "unlisted_tool_not_covered" };
  const live = (await deps.backends().tools(server)).find((t) => t.name === tool);
  if (!live) return { allow: false, reason: "unlisted_tool_not_covered" };
  return authorize(ctx.grants, { kind: "tool", server, tool, annotations: live.annotations });
}
