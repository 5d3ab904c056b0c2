import { type CallToolResult, ErrorCode, McpError, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type ExecuteRequestBody, jsonRpcRequestProblem } from "../../container/src/contract.ts";
import { isServerId, type ServerId } from "../../policies/catalog.ts";
import { authorize, type DenyReason } from "../../policies/decide.ts";
import type { AuditEntry } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { enforceRateLimit } from "./call-guards.ts";
import type { ToolCallDeps } from "./deps.types.ts";
import { RpcError, serverUnavailable } from "./errors.ts";
import { EXECUTE_STDIO_TOOL, unknownTool } from "./names.ts";

/**
 * The input: a server id and ONE JSON-RPC request. SECURITY: nothing else is accepted — no command, args,
 * env or cwd can reach the bridge through this tool, and the message is exactly one JSON-RPC request
 * (contract.ts, jsonRpcRequestProblem; the bridge refuses anything else too).
 */
const ExecuteArgs = z.strictObject({
  server: z.string(),
  message: z.custom<ExecuteRequestBody["message"]>((m) => jsonRpcRequestProblem(m) === null, {
    error: (issue) => jsonRpcRequestProblem(issue.input) ?? "must be one JSON-RPC request",
  }),
});

/** The decision for an execute_stdio call: the server its arguments name, if any, and whether the caller may. */
export type ExecuteDecision =
  | { readonly allow: true; readonly server: ServerId }
  | { readonly allow: false; readonly server: ServerId | null; readonly reason: DenyReason };

/**
 * SECURITY: decided first, from the one argument that names what is asked for (`server`), before anything
 * else about the arguments is looked at: a caller who may not use execute_stdio on that server (or on any,
 * or names no server we know) gets `Tool execute_stdio not found`, whatever else it sent, and so learns
 * nothing about the tool. Only a caller it is allowed for hears what is wrong with its arguments.
 */
export function decideExecute(ctx: RequestContext, args: unknown): ExecuteDecision {
  const named = typeof args === "object" && args !== null && !Array.isArray(args) ? Reflect.get(args, "server") : null;
  if (!isServerId(named)) return { allow: false, server: null, reason: "unknown_server" };
  const decision = authorize(ctx.grants, { kind: "execute", server: named });
  return decision.allow ? { allow: true, server: named } : { allow: false, server: named, reason: decision.reason };
}

/** What is wrong with execute_stdio's arguments, in words for a caller who may use it; `null` when nothing. */
export function executeArgsProblem(args: unknown): string | null {
  const parsed = parseExecuteArgs(args);
  return parsed.success ? null : parsed.problem;
}

function parseExecuteArgs(
  args: unknown,
): { success: true; data: z.infer<typeof ExecuteArgs> } | { success: false; problem: string } {
  const parsed = ExecuteArgs.safeParse(args ?? {});
  if (parsed.success) return { success: true, data: parsed.data };
  const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  return { success: false, problem: `Invalid arguments for ${EXECUTE_STDIO_TOOL}: ${issues}` };
}

export function executeStdioTool(servers: readonly ServerId[]): Tool {
  return {
    name: EXECUTE_STDIO_TOOL,
    title: "Send raw JSON-RPC to a server's process",
    description:
      "Diagnostics: sends one JSON-RPC request to the stdio process of a server and returns its raw response. Needs the execute level on that server.",
    inputSchema: {
      type: "object",
      properties: {
        server: { type: "string", enum: [...servers] },
        message: {
          type: "object",
          description: 'One JSON-RPC 2.0 request, e.g. {"jsonrpc":"2.0","id":1,"method":"tools/list"}',
          properties: {
            jsonrpc: { const: "2.0" },
            id: { type: ["string", "number"] },
            method: { type: "string" },
            params: {},
          },
          required: ["jsonrpc", "id", "method"],
        },
      },
      required: ["server", "message"],
      additionalProperties: false,
    },
    annotations: { destructiveHint: true, openWorldHint: false, readOnlyHint: false },
  };
}

type Audit<D> = (deps: D, ctx: RequestContext, entry: AuditEntry) => Promise<void>;

/** Runs one execute_stdio call: decision, then the arguments, then the rate limit, the request, the row. */
export async function runExecuteStdio<D extends Pick<ToolCallDeps, "execute" | "audit">>(
  deps: D,
  ctx: RequestContext,
  rawArgs: unknown,
  digest: string,
  audit: Audit<D>,
): Promise<CallToolResult> {
  const decision = decideExecute(ctx, rawArgs);
  const refused = (reason: string) =>
    audit(deps, ctx, {
      action: "execute_stdio",
      server: decision.server,
      tool: null,
      decision: "deny",
      reason,
      argsDigest: digest,
    });
  if (!decision.allow) {
    await refused(decision.reason);
    throw unknownTool(EXECUTE_STDIO_TOOL);
  }
  const parsed = parseExecuteArgs(rawArgs);
  if (!parsed.success) {
    await refused("invalid_params");
    throw new RpcError(ErrorCode.InvalidParams, parsed.problem);
  }
  const server = decision.server;
  const message = parsed.data.message;
  const method = message.method;
  await enforceRateLimit(deps, ctx, "execute_stdio", server, method, digest);
  const started = Date.now();
  const record = (outcome: "ok" | "jsonrpc_error" | "transport_error") =>
    audit(deps, ctx, {
      action: "execute_stdio",
      server,
      tool: method,
      decision: "allow",
      reason: "granted",
      outcome,
      durationMs: Date.now() - started,
      argsDigest: digest,
    });
  try {
    const response = await deps.execute(server, ctx.caller.principal, message);
    await record(typeof response === "object" && response !== null && "error" in response ? "jsonrpc_error" : "ok");
    return { content: [{ type: "text", text: JSON.stringify(response) }], structuredContent: { response } };
  } catch (error) {
    if (error instanceof RpcError || error instanceof McpError) throw error;
    await record("transport_error");
    throw serverUnavailable(server);
  }
}
