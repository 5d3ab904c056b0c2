import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  JSONRPCRequestSchema,
  ReadResourceRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { jsonDepthExceeds, jsonRpcRequestProblem, MAX_JSON_DEPTH } from "../../container/src/contract.ts";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import type { ServerId } from "../../policies/catalog.ts";
import { type DeclaredCapabilities, usableWith } from "../../policies/client-capabilities.ts";
import { authorize, type Decision } from "../../policies/decide.ts";
import { argsDigest } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditAction } from "../db/audit-log.table.ts";
import { auditOrFail } from "./call-guards.ts";
import type { LiveTools, ToolCallDeps } from "./deps.types.ts";
import { RpcError } from "./errors.ts";
import { decideExecute, executeArgsProblem } from "./execute-stdio.ts";
import {
  EXECUTE_STDIO_TOOL,
  parseQualifiedName,
  parseQualifiedUri,
  type Qualified,
  targetNotFound,
  unknownTool,
} from "./names.ts";

/**
 * Audited requests: `tools/call` (with the gateway's own `execute_stdio`), `resources/read` and
 * `prompts/get`. Each one that reaches a live session is ONE decision and writes ONE audit row, whatever
 * its params: decided first (may this caller use that tool, prompt or resource?), then validated.
 *
 * - A caller who may not use the target gets exactly what a target that does not exist gets
 *   (`Tool <name> not found`), whatever its params; the row is a denial with the decision's reason.
 * - A caller who may gets `-32602` with a plain message; the row is a denial with reason `invalid_params`.
 * - A valid request runs, and its row records how it ended (tools.ts, content.ts, execute-stdio.ts).
 *
 * Invalid requests are refused here, before the SDK sees them: the SDK's `Server` validates a request
 * (its method's schema, task capabilities) before calling our handler and would answer on its own, with
 * no decision and no row. `auditedRequestProblem` is exactly what the SDK would refuse, plus a depth bound
 * and execute_stdio's own shape, so whatever passes it reaches our handler.
 */
export const AUDITED_METHODS = ["tools/call", "resources/read", "prompts/get"] as const;
export type AuditedMethod = (typeof AUDITED_METHODS)[number];

export interface AuditedRequest {
  readonly id: string | number;
  readonly method: AuditedMethod;
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * The message as an audited request: exactly one JSON-RPC request (no other top-level member, an id the
 * SDK accepts) of an audited method whose params, if any, are an object. Anything else is not a request
 * at all and decides nothing (the Worker refuses it with -32600: boundary.ts).
 */
export function auditedRequestOf(message: unknown): AuditedRequest | null {
  if (jsonRpcRequestProblem(message) !== null || !isPlainObject(message)) return null;
  const { id, method, params } = message;
  if (typeof id !== "string" && !(typeof id === "number" && Number.isSafeInteger(id))) return null;
  if (!isAuditedMethod(method)) return null;
  if (params !== undefined && !isPlainObject(params)) return null;
  return { id, method, params: params ?? {} };
}

export interface AuditedProblem {
  /** For the caller, when it may use the target. */
  readonly message: string;
  /** Nested past MAX_JSON_DEPTH: answered with HTTP 400, like every too-deep body. */
  readonly tooDeep: boolean;
}

const REQUEST_SCHEMAS = {
  "tools/call": CallToolRequestSchema,
  "resources/read": ReadResourceRequestSchema,
  "prompts/get": GetPromptRequestSchema,
} as const;

/** What keeps an audited request from running, or `null`. Pure: the Worker asks it too (boundary.ts, direct-call.ts). */
export function auditedRequestProblem(request: AuditedRequest, wrappedLevels = 0): AuditedProblem | null {
  const { id, method, params } = request;
  // The message is one level above its params. `wrappedLevels`: levels a path adds around the whole
  // message before the bridge sees it (the modern path sends it inside `/execute`'s {server, message}),
  // so a message the Worker accepts is never refused by the bridge's own bound.
  const maxDepth = MAX_JSON_DEPTH - wrappedLevels;
  if (jsonDepthExceeds(params, maxDepth - 1)) {
    return { tooDeep: true, message: `Invalid ${method} request: nested more than ${maxDepth} levels deep.` };
  }
  // The SDK refuses a task-augmented request itself (we declare no task support), before any handler.
  if (Object.hasOwn(params, "task")) {
    return { tooDeep: false, message: `Invalid ${method} request: task-augmented requests are not supported.` };
  }
  if (!isPlainToolCall(method, params)) {
    const envelope = JSONRPCRequestSchema.safeParse({ jsonrpc: "2.0", id, method, params });
    const parsed = envelope.success ? REQUEST_SCHEMAS[method].safeParse({ method, params }) : envelope;
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
      return { tooDeep: false, message: `Invalid ${method} request: ${issues}` };
    }
  }
  if (method === "tools/call" && params.name === EXECUTE_STDIO_TOOL) {
    const problem = executeArgsProblem(params.arguments);
    if (problem !== null) return { tooDeep: false, message: problem };
  }
  return null;
}

/**
 * A `tools/call` whose params are a string `name`, plain-object `arguments` (or none) and no `_meta`: the
 * shape nearly every call has, and one both schemas above always accept, with an id auditedRequestOf took
 * (the SDK's params objects are not strict; `task` was refused before). Checked by hand because the two
 * zod parses were ~5% of the Worker's CPU per call (bench/RESULTS.md); anything else is parsed.
 * test/unit/audited-fast-path.test.ts holds the claim against the schemas.
 */
export function isPlainToolCall(method: AuditedMethod, params: Readonly<Record<string, unknown>>): boolean {
  if (method !== "tools/call" || typeof params.name !== "string" || Object.hasOwn(params, "_meta")) return false;
  const args = params.arguments;
  if (args === undefined) return true;
  if (typeof args !== "object" || args === null) return false;
  const proto: unknown = Object.getPrototypeOf(args);
  return proto === Object.prototype || proto === null;
}

type Verdict = { readonly allow: true } | { readonly allow: false; readonly reason: string };

/** What an audited request is about, and the decision on it. */
export interface AuditedTarget {
  readonly action: Extract<AuditAction, "tools/call" | "execute_stdio" | "resources/read" | "prompts/get">;
  /** The server it names, if any (the row's `server`). */
  readonly server: ServerId | null;
  /** The row's `tool` for a refusal: the server's own tool name, else the name or URI as sent. */
  readonly tool: string | null;
  /** The target in the server's own terms, when the name parsed. */
  readonly target: Qualified | null;
  readonly verdict: Verdict;
  /** The answer for a caller the verdict refuses: what a target that does not exist gets. */
  readonly refusal: RpcError;
}

/**
 * SECURITY: the decision on an audited request, made from its name alone (for execute_stdio, from the
 * server its arguments name): nothing else about the params is looked at first. Every path asks this:
 * the session's handlers, and the refusal of invalid requests below.
 */
export async function decideAudited(
  deps: { readonly liveTools: LiveTools },
  ctx: RequestContext,
  request: Pick<AuditedRequest, "method" | "params">,
  declared: DeclaredCapabilities,
): Promise<AuditedTarget> {
  const { method, params } = request;
  if (method === "tools/call") {
    const name = params.name;
    if (name === EXECUTE_STDIO_TOOL) {
      const decision = decideExecute(ctx, params.arguments);
      return {
        action: "execute_stdio",
        server: decision.server,
        tool: null,
        target: null,
        verdict: decision,
        get refusal() {
          return unknownTool(EXECUTE_STDIO_TOOL);
        },
      };
    }
    if (typeof name !== "string") return unnamed("tools/call", "name");
    const target = parseQualifiedName(name);
    const decided: Verdict = target
      ? await decideTool(deps, ctx, target.server, target.name)
      : { allow: false, reason: "unknown_tool" };
    // A tool the server offers only to clients that can answer its sampling, elicitation or roots requests
    // does not exist for a client that declared none of the ones it needs (policies/client-capabilities.ts).
    const verdict: Verdict =
      decided.allow && target && !usableWith(declared, target.server, target.name)
        ? { allow: false, reason: "client_capability_missing" }
        : decided;
    return {
      action: "tools/call",
      server: target?.server ?? null,
      tool: target?.name ?? name,
      target,
      verdict,
      // A getter: an Error captures a stack when made (~2% of the Worker's CPU per allowed call, for nothing).
      get refusal() {
        return unknownTool(name);
      },
    };
  }
  const field = method === "resources/read" ? "uri" : "name";
  const sent = params[field];
  if (typeof sent !== "string") return unnamed(method, field);
  const target = method === "resources/read" ? parseQualifiedUri(sent) : parseQualifiedName(sent);
  const verdict: Verdict = target
    ? authorize(ctx.grants, { kind: "server-content", server: target.server })
    : { allow: false, reason: "unknown_target" };
  return {
    action: method,
    server: target?.server ?? null,
    tool: sent,
    target,
    verdict,
    get refusal() {
      return targetNotFound(method === "prompts/get" ? "Prompt" : "Resource", sent);
    },
  };
}

/** A request that names nothing (its name is not a string) is decided as a refusal of its params. */
function unnamed(action: "tools/call" | "resources/read" | "prompts/get", field: string): AuditedTarget {
  return {
    action,
    server: null,
    tool: null,
    target: null,
    verdict: { allow: false, reason: "invalid_params" },
    refusal: new RpcError(ErrorCode.InvalidParams, `Invalid ${action} request: params.${field} must be a string.`),
  };
}

/** Snapshot tools are decided from the policy alone; a tool the server added since needs its live annotations. */
export async function decideTool(
  deps: { readonly liveTools: LiveTools },
  ctx: RequestContext,
  server: ServerId,
  tool: string,
): Promise<Decision> {
  const known: Readonly<Record<string, unknown>> = catalogSnapshot[server].tools;
  if (Object.hasOwn(known, tool)) return authorize(ctx.grants, { kind: "tool", server, tool });
  if (!ctx.grants.servers.has(server)) return { allow: false, reason: "unlisted_tool_not_covered" };
  let listed: readonly { name: string; annotations?: Tool["annotations"] }[];
  try {
    listed = await deps.liveTools(server);
  } catch {
    // SECURITY: a tool we cannot see cannot be decided: refused (fail closed), and still one row.
    return { allow: false, reason: "server_unavailable" };
  }
  const live = listed.find((t) => t.name === tool);
  if (!live) return { allow: false, reason: "unlisted_tool_not_covered" };
  return authorize(ctx.grants, { kind: "tool", server, tool, annotations: live.annotations });
}

export interface AuditedRefusal {
  readonly id: string | number;
  readonly error: RpcError;
  /** 400 for a request nested too deep (like every too-deep body), else 200 with the JSON-RPC error. */
  readonly status: 200 | 400;
}

/**
 * Refuses an audited request that may not run as sent, after its decision, with its one audit row; `null`
 * for anything else (not an audited request, or a valid one: the SDK's handlers take those).
 */
export async function refuseInvalidAudited(
  deps: Pick<ToolCallDeps, "liveTools" | "audit" | "auditKey">,
  ctx: RequestContext,
  message: unknown,
  declared: DeclaredCapabilities,
  wrappedLevels = 0,
): Promise<AuditedRefusal | null> {
  const request = auditedRequestOf(message);
  const problem = request ? auditedRequestProblem(request, wrappedLevels) : null;
  if (!request || !problem) return null;
  const status = problem.tooDeep ? 400 : 200;
  const decided = await decideAudited(deps, ctx, request, declared);
  // The digest walk is iterative (audit.ts), so even a too-deep argument is digested, not stored.
  const digest =
    request.method === "tools/call" ? await argsDigest(deps.auditKey, request.params.arguments ?? {}) : null;
  try {
    await auditOrFail(deps, ctx, {
      action: decided.action,
      server: decided.server,
      tool: decided.tool,
      decision: "deny",
      reason: decided.verdict.allow ? "invalid_params" : decided.verdict.reason,
      argsDigest: digest,
    });
  } catch (error) {
    // The audit log is unavailable: that is the answer (no row, no result).
    if (error instanceof RpcError) return { id: request.id, error, status };
    throw error;
  }
  const error = decided.verdict.allow ? new RpcError(ErrorCode.InvalidParams, problem.message) : decided.refusal;
  return { id: request.id, error, status };
}

/** The JSON-RPC error message of a refusal. */
export function refusalMessage(refusal: AuditedRefusal) {
  return {
    jsonrpc: "2.0" as const,
    id: refusal.id,
    error: { code: refusal.error.code, message: refusal.error.message },
  };
}

function isAuditedMethod(value: unknown): value is AuditedMethod {
  return typeof value === "string" && (AUDITED_METHODS as readonly string[]).includes(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
