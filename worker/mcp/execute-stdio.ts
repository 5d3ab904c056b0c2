import { type CallToolResult, ErrorCode, McpError, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { isServerId, type ServerId } from "../../policies/catalog.ts";
import { authorize } from "../../policies/decide.ts";
import type { AuditEntry } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { enforceRateLimit } from "./call-guards.ts";
import { RpcError } from "./errors.ts";
import { EXECUTE_STDIO_TOOL } from "./names.ts";
import type { ToolDeps } from "./tools.ts";

/** Sends one JSON-RPC request to a server's process through the bridge's `/execute`; resolves to its response. */
export type ExecuteFn = (server: ServerId, principal: string, message: unknown) => Promise<unknown>;

/**
 * The input: a server id and ONE JSON-RPC request. SECURITY: nothing else is accepted — no command, args,
 * env or cwd can reach the bridge through this tool (the bridge refuses them too).
 */
const ExecuteArgs = z.strictObject({
  server: z.string(),
  message: z.looseObject({
    jsonrpc: z.literal("2.0"),
    id: z.union([z.string(), z.number()]),
    method: z.string().min(1),
    params: z.optional(z.unknown()),
  }),
});

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

export async function runExecuteStdio<D extends { execute: ExecuteFn; db: ToolDeps["db"] }>(
  deps: D,
  ctx: RequestContext,
  rawArgs: unknown,
  digest: string,
  audit: Audit<D>,
): Promise<CallToolResult> {
  const parsed = ExecuteArgs.safeParse(rawArgs ?? {});
  const server = parsed.success && isServerId(parsed.data.server) ? parsed.data.server : null;
  const decision = server ? authorize(ctx.grants, { kind: "execute", server }) : null;
  if (!parsed.success || !server || !decision?.allow) {
    // SECURITY: only a caller who may use execute_stdio somewhere learns why its input was refused.
    const reason =
      decision && !decision.allow ? decision.reason : parsed.success ? "unknown_server" : "invalid_arguments";
    await audit(deps, ctx, {
      action: "execute_stdio",
      server,
      tool: null,
      decision: "deny",
      reason,
      argsDigest: digest,
    });
    if (decision && !decision.allow)
      throw new RpcError(ErrorCode.InvalidParams, `Tool ${EXECUTE_STDIO_TOOL} not found`);
    throw new RpcError(
      ErrorCode.InvalidParams,
      `Invalid arguments for ${EXECUTE_STDIO_TOOL}: ${parsed.success ? "unknown server" : parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
    );
  }
  const method = parsed.data.message.method;
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
    const response = await deps.execute(server, ctx.caller.principal, parsed.data.message);
    await record(typeof response === "object" && response !== null && "error" in response ? "jsonrpc_error" : "ok");
    return { content: [{ type: "text", text: JSON.stringify(response) }], structuredContent: { response } };
  } catch (error) {
    if (error instanceof RpcError || error instanceof McpError) throw error;
    await record("transport_error");
    throw new RpcError(
      ErrorCode.InternalError,
      `The "${server}" server is not available right now; try again shortly.`,
    );
  }
}
