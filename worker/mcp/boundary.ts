import { ErrorCode, JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { jsonDepthExceeds, jsonRpcRequestProblem, MAX_JSON_DEPTH } from "../../container/src/contract.ts";
import { HttpError } from "../http/errors.ts";
import { auditedRequestOf, auditedRequestProblem } from "./audited.ts";

/**
 * SECURITY: the gateway's one boundary for what a client's MCP message may be.
 *
 * Where: in the Worker (mcp/handler.ts), which reads every POST body of `/mcp` and `/sse/message` for it.
 * Every client byte enters there (the session objects are reachable only through the Worker's binding),
 * and it is the only code in front of BOTH places a message is handled: the direct path, in the Worker,
 * and the session object. A check in the session object alone would miss direct calls; one in each would
 * be two checks to keep equal. Size (body.ts) and nesting are bounded here, once, for every path.
 *
 * What: each message (each member of a batch) is one JSON-RPC 2.0 message as MCP has it (the SDK's own
 * schema: a request, a notification or a response, with params that are an object and no other member),
 * nested at most MAX_JSON_DEPTH levels (container/src/contract.ts: the one, iterative depth check the
 * bridge uses too). Anything else is refused at once: HTTP 400 with JSON-RPC -32600 (not a request) or
 * -32602 (a request whose params are too deep), a plain message, and no audit row: it decides nothing.
 *
 * The one exception is a single request of an audited method (tools/call, resources/read, prompts/get):
 * whatever its params (too deep, wrong types), it is a decision about a tool, a resource or a prompt, and
 * deciding needs the caller's grants and a live session, which the session object holds. So it passes
 * here and is refused there, decided first and with its one audit row (audited.ts, refuseInvalidAudited);
 * HTTP 400 if it was too deep. Nothing walks its params before that refusal but JSON.parse (iterative)
 * and the depth check itself.
 *
 * A batch is refused whole when any member would be refused, audited requests included: nothing in it
 * reaches a handler, so nothing in it is decided (like a batch refused for its length or protocol version).
 */
export interface Refusal {
  readonly error: HttpError;
  /** The refused request's id, when it had a usable one. */
  readonly id: string | number | null;
}

export interface ScreenOptions {
  /**
   * Whether the body may hold an `initialize`: only when the request carries no session id (the Worker
   * mints one), and on `/sse/message`, whose session the server opened on GET /sse.
   */
  readonly initializeAllowed: boolean;
}

/** Screens a parsed POST body; a refusal, or `null` when it may go on. */
export function screenBody(body: unknown, options: ScreenOptions): Refusal | null {
  if (!Array.isArray(body)) {
    const problem = screenMessage(body, options);
    if (problem) return { error: new HttpError(400, problem.message, { rpcCode: problem.code }), id: idOf(body) };
    // An audited request is screened by its session (above): only there can it be decided.
    return null;
  }
  if (body.length === 0) return refuse(ErrorCode.InvalidRequest, "An empty batch is not a JSON-RPC request.");
  for (const message of body) {
    const audited = auditedRequestOf(message);
    const problem = audited ? auditedProblem(audited) : screenMessage(message, options);
    if (problem)
      return refuse(problem.code, `A message of the batch was refused, so the batch was: ${problem.message}`);
  }
  return null;
}

interface Problem {
  readonly code: number;
  readonly message: string;
}

function screenMessage(message: unknown, options: ScreenOptions): Problem | null {
  if (!options.initializeAllowed && isObject(message) && message.method === "initialize") {
    // SECURITY: the server assigns every session id (MCP transports, session management). An initialize
    // that names one is refused rather than given a fresh id silently: such a client is confused or
    // hostile (choosing an id, or reviving a deleted one with new capabilities), and refusing leaves no
    // path on which a client's value could become a session's id.
    return { code: ErrorCode.InvalidRequest, message: "initialize must not carry Mcp-Session-Id." };
  }
  if (auditedRequestOf(message)) return null;
  if (jsonDepthExceeds(message, MAX_JSON_DEPTH)) {
    // A request (exactly one, with an object for params) whose params are too deep, or not a request at all.
    const request = jsonRpcRequestProblem(message) === null && idOf(message) !== null;
    return request
      ? { code: ErrorCode.InvalidParams, message: `The request's params nest more than ${MAX_JSON_DEPTH} levels.` }
      : { code: ErrorCode.InvalidRequest, message: `The message nests more than ${MAX_JSON_DEPTH} levels.` };
  }
  const parsed = JSONRPCMessageSchema.safeParse(message);
  if (!parsed.success) return { code: ErrorCode.InvalidRequest, message: "The body is not a JSON-RPC 2.0 message." };
  const m = parsed.data;
  // A method without an id is a notification; MCP's are all `notifications/…`. A `tools/call` without an
  // id would be ignored by the SDK without an answer (and without a decision): refuse it so it is seen.
  if ("method" in m && !("id" in m) && !m.method.startsWith("notifications/")) {
    return { code: ErrorCode.InvalidRequest, message: `${m.method.slice(0, 64)} is a request: it needs an id.` };
  }
  return null;
}

function auditedProblem(request: Parameters<typeof auditedRequestProblem>[0]): Problem | null {
  const problem = auditedRequestProblem(request);
  if (!problem) return null;
  return { code: problem.tooDeep ? ErrorCode.InvalidParams : ErrorCode.InvalidRequest, message: problem.message };
}

function refuse(code: number, message: string): Refusal {
  return { error: new HttpError(400, message, { rpcCode: code }), id: null };
}

function idOf(message: unknown): string | number | null {
  if (!isObject(message)) return null;
  const id = message.id;
  return typeof id === "string" || (typeof id === "number" && Number.isSafeInteger(id)) ? id : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
