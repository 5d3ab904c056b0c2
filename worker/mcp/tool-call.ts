import { type CallToolRequest, type CallToolResult, ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { ServerId } from "../../policies/catalog.ts";
import type { DeclaredCapabilities } from "../../policies/client-capabilities.ts";
import { argsDigest } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { decideAudited } from "./audited.ts";
import { allowedCallRecorder, auditOrFail, enforceRateLimit } from "./call-guards.ts";
import type { ToolCallDeps } from "./deps.types.ts";
import { RpcError, serverUnavailable } from "./errors.ts";
import { runExecuteStdio } from "./execute-stdio.ts";
import { EXECUTE_STDIO_TOOL } from "./names.ts";

/**
 * THE tool call: the rules of one `tools/call`, for every path that serves one (the session object's
 * SDK handler, tools.ts; the Worker's direct call on a legacy session, direct-call.ts; the stateless
 * 2026-07-28 request, modern/). Each path passes only how to send the call to the server; everything
 * else is decided here, once:
 *
 * 1. the decision (audited.ts, decideAudited → policies/decide.ts), from the name alone, and whether the
 *    client declared a capability the tool needs (policies/client-capabilities.ts);
 * 2. a refusal is audited as a denial and answered exactly like a tool that does not exist;
 * 3. the rate limit (audited when it refuses);
 * 4. the call is sent, in the server's own terms: its own tool name, no `_meta` (the gateway's client
 *    and the server's client are different parties; progress is the sender's business);
 * 5. the outcome is mapped, and recorded in the call's one audit row: a result (`ok`, or `tool_error`
 *    for `isError`), the server's JSON-RPC error (`jsonrpc_error`, passed on), or no answer at all
 *    (`transport_error`, answered with the one "server is not available" text).
 *
 * `execute_stdio` is a tools/call too, with rules of its own (execute-stdio.ts) and sent on `/execute`.
 */

/** How a sent call ended, as the path's sender saw it. */
export type SendOutcome =
  | { readonly kind: "result"; readonly result: CallToolResult }
  /** The server answered with a JSON-RPC error; `error` is what the path passes on to its client. */
  | { readonly kind: "server_error"; readonly code: number; readonly error: unknown }
  /** The call never completed: the bridge is down or refused it, a timeout, a closed connection. */
  | { readonly kind: "unavailable"; readonly cause: unknown }
  /**
   * Nothing reached the server and nothing is recorded: the path hands the request to another (the
   * direct path, when the bridge no longer knows its session: the session object reconnects).
   */
  | { readonly kind: "not_sent" }
  /**
   * The server asked its client something and the call waits for the answer (2026-07-28 MRTR, the modern
   * path): `result` is the InputRequiredResult. Recorded as an allowed request that ended `input_required`,
   * with no outcome yet; the retry that carries the answer is decided again and records how the call ended.
   */
  | { readonly kind: "input_required"; readonly result: Record<string, unknown> }
  /**
   * The call to continue is not the caller's to continue, or is gone (the modern path's retry): nothing was
   * sent; recorded as a denial with `reason`, answered with `error`.
   */
  | { readonly kind: "refused"; readonly reason: string; readonly error: RpcError };

/** Sends an allowed call to the server: the only thing a path brings to the call. */
export type SendCall = (server: ServerId, params: CallToolRequest["params"]) => Promise<SendOutcome>;

export type ToolCallAnswer =
  | { readonly kind: "result"; readonly result: CallToolResult }
  /**
   * Ours: not found / not yours, rate limited, not available, the audit log down, invalid arguments.
   * `reason`: the decision's, when the decision refused the call.
   */
  | { readonly kind: "error"; readonly error: RpcError; readonly reason?: string }
  | { readonly kind: "input_required"; readonly result: Record<string, unknown> }
  /** The server's own JSON-RPC error, as the sender gave it. */
  | { readonly kind: "server_error"; readonly error: unknown }
  | { readonly kind: "not_sent" };

export interface ToolCallOptions {
  /**
   * What the client declared it can answer (its initialize capabilities; a modern request's `_meta`). A
   * tool that needs a capability it did not declare is refused like a tool that does not exist, and
   * audited as a denial (`client_capability_missing`). Required: an omission would offer every tool.
   */
  readonly declared: DeclaredCapabilities;
  /** The arguments' audit digest, when the path started computing it early (direct-call.ts). */
  readonly digest?: Promise<string>;
}

/**
 * One tools/call. `params` are a valid call's (audited.ts, auditedRequestProblem is null for it): the
 * paths refuse invalid ones before, with their own decision and row.
 */
export async function callTool(
  deps: ToolCallDeps,
  ctx: RequestContext,
  params: CallToolRequest["params"],
  send: SendCall,
  options: ToolCallOptions,
): Promise<ToolCallAnswer> {
  const digest = await (options.digest ?? argsDigest(deps.auditKey, params.arguments ?? {}));
  try {
    if (params.name === EXECUTE_STDIO_TOOL) {
      return { kind: "result", result: await runExecuteStdio(deps, ctx, params.arguments, digest, auditOrFail) };
    }
    const decided = await decideAudited(deps, ctx, { method: "tools/call", params }, options.declared);
    const target = decided.target;
    if (!target || !decided.verdict.allow) {
      const reason = decided.verdict.allow ? "unknown_tool" : decided.verdict.reason;
      await auditOrFail(deps, ctx, {
        action: "tools/call",
        server: decided.server,
        tool: decided.tool,
        decision: "deny",
        reason,
        argsDigest: digest,
      });
      return { kind: "error", error: decided.refusal, reason };
    }
    await enforceRateLimit(deps, ctx, "tools/call", target.server, target.name, digest);
    const { _meta, ...rest } = params;
    const record = allowedCallRecorder(deps, ctx, { server: target.server, tool: target.name, digest });
    const sentAtMs = Date.now();
    const sent = await send(target.server, { ...rest, name: target.name }).catch(
      (cause: unknown): SendOutcome => ({ kind: "unavailable", cause }),
    );
    switch (sent.kind) {
      case "not_sent":
        return sent;
      case "result":
        await record(sent.result.isError === true ? "tool_error" : "ok");
        return sent;
      case "server_error":
        await record("jsonrpc_error", sent.code);
        return { kind: "server_error", error: sent.error };
      case "unavailable":
        console.error(
          JSON.stringify({ event: "tool_call_unavailable", server: target.server, error: String(sent.cause) }),
        );
        await record("transport_error");
        return { kind: "error", error: serverUnavailable(target.server) };
      case "input_required":
      case "refused": {
        const entry = { action: "tools/call", server: target.server, tool: target.name, argsDigest: digest } as const;
        await auditOrFail(
          deps,
          ctx,
          sent.kind === "refused"
            ? { ...entry, decision: "deny", reason: sent.reason }
            : { ...entry, decision: "allow", reason: "input_required", durationMs: Date.now() - sentAtMs },
        );
        return sent.kind === "refused" ? { kind: "error", error: sent.error, reason: sent.reason } : sent;
      }
    }
  } catch (error) {
    // Our own refusals (the rate limit, the audit log down, execute_stdio's) are the answer.
    if (error instanceof RpcError) return { kind: "error", error };
    // execute_stdio passes on a JSON-RPC error it was given as one.
    if (error instanceof McpError) return { kind: "error", error: new RpcError(error.code, error.message) };
    throw error;
  }
}

/** A call's answer as a JSON-RPC message body, for the paths that write JSON themselves. */
export function answerMessage(id: string | number, answer: Exclude<ToolCallAnswer, { kind: "not_sent" }>) {
  switch (answer.kind) {
    case "result":
      return { jsonrpc: "2.0" as const, id, result: answer.result };
    case "error":
      return { jsonrpc: "2.0" as const, id, error: { code: answer.error.code, message: answer.error.message } };
    case "server_error":
      return { jsonrpc: "2.0" as const, id, error: answer.error };
    case "input_required":
      return { jsonrpc: "2.0" as const, id, result: answer.result };
  }
}

/** A bridge's JSON-RPC answer to the call sent with `id`, as the one tool call takes it. */
export function outcomeOfReply(reply: unknown, id: string | number): SendOutcome {
  if (!isPlainObject(reply) || reply.id !== id)
    return { kind: "unavailable", cause: "the bridge answered another request" };
  if (isPlainObject(reply.error)) {
    const code = typeof reply.error.code === "number" ? reply.error.code : ErrorCode.InternalError;
    return { kind: "server_error", code, error: reply.error };
  }
  if (!isPlainObject(reply.result)) return { kind: "unavailable", cause: "the bridge's answer has no result" };
  return { kind: "result", result: reply.result as CallToolResult };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
