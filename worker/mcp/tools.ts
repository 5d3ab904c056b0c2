import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import { authorize } from "../../policies/decide.ts";
import { argsDigest } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { Database } from "../db/database.ts";
import { decideAudited } from "./audited.ts";
import type { Backends } from "./backends.ts";
import { allowedCallRecorder, auditOrFail, enforceRateLimit, failedOutcome } from "./call-guards.ts";
import { contextOf } from "./context.ts";
import { RpcError } from "./errors.ts";
import { type ExecuteFn, executeStdioTool, runExecuteStdio } from "./execute-stdio.ts";
import { EXECUTE_STDIO_TOOL, qualifyName } from "./names.ts";

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

  // Only valid calls reach this handler: an invalid one was refused, after its decision and with its row,
  // before the SDK saw it (audited.ts, refuseInvalidAudited).
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const ctx = contextOf(extra);
    const digest = await argsDigest(deps.auditKey, req.params.arguments ?? {});
    if (req.params.name === EXECUTE_STDIO_TOOL) {
      return runExecuteStdio(deps, ctx, req.params.arguments, digest, auditOrFail);
    }
    const decided = await decideAudited(deps, ctx, { id: extra.requestId, method: "tools/call", params: req.params });
    const target = decided.target;
    if (!target || !decided.verdict.allow) {
      await auditOrFail(deps, ctx, {
        action: "tools/call",
        server: decided.server,
        tool: decided.tool,
        decision: "deny",
        reason: decided.verdict.allow ? "unknown_tool" : decided.verdict.reason,
        argsDigest: digest,
      });
      throw decided.refusal;
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
      const failed = failedOutcome(error);
      await record(failed.outcome, failed.errorCode);
      if (failed.outcome === "jsonrpc_error") throw error;
      throw new RpcError(
        ErrorCode.InternalError,
        `The "${target.server}" server is not available right now; try again shortly.`,
      );
    } finally {
      deps.inFlight.end(target.server, extra.requestId);
    }
  });
}
