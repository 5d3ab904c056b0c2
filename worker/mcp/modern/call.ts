import type { CallToolRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import type { ExecuteModern } from "../../../container/src/contract.ts";
import type { ServerId } from "../../../policies/catalog.ts";
import { CAPABILITY_PROBES, type DeclaredCapabilities, toolNeeds } from "../../../policies/client-capabilities.ts";
import type { RequestContext } from "../../authz/request-context.ts";
import { CONNECT_PURPOSE, type ConnectElicitation, connectionGate } from "../../connect/elicit.ts";
import type { Database } from "../../db/database.ts";
import type { BridgeFetch } from "../backends.ts";
import type { ToolCallDeps } from "../deps.types.ts";
import { parseQualifiedName } from "../names.ts";
import { answerMessage, callTool, outcomeOfReply, type SendCall, type ToolCallAnswer } from "../tool-call.ts";
import { callOnBridge, cancelOnBridge } from "./bridge-call.ts";
import { type CallAnswer, type CallOutput, respondToCall } from "./call-stream.ts";
import {
  inputRequired,
  invalidRequestState,
  noLongerWaiting,
  offerable,
  type Retry,
  readRetry,
} from "./input-required.ts";
import { MISSING_REQUIRED_CLIENT_CAPABILITY, type ModernRequest } from "./request.ts";
import { type CallIdentity, callBinding } from "./request-state.ts";

/**
 * A modern `tools/call`: THE tool call (tool-call.ts: decision, audit, rate limit, outcome), sent as one
 * request on the bridge's `/execute` as a modern call (bridge-call.ts), answered as JSON or as a stream
 * (call-stream.ts). What the modern path adds:
 *
 * - Progress and log lines of the call, on its response stream: progress with the request's own
 *   `progressToken` (only if it sent one), log lines only at or above its `io.modelcontextprotocol/logLevel`
 *   (only if it set one), named after their server like on the legacy path.
 * - MRTR (basic/patterns/mrtr): when the server asks its client something, the call waits at the bridge
 *   and the client gets an InputRequiredResult (input-required.ts) whose sealed `requestState` names it;
 *   the retry that carries `inputResponses` and that state continues the same call. The retry is a request
 *   of its own: decided again, audited again (see below), and refused with its own denial row if its state
 *   is not valid for this caller and call (`request_state_invalid`, `request_state_expired`), or if the call
 *   no longer waits (`call_not_waiting`).
 * - A tool the request's declared capabilities cannot use, which the caller may otherwise call, is refused
 *   with MissingRequiredClientCapability (-32021, 400), as the revision asks (basic/index, "_meta").
 *
 * AUDIT: one row per decided request. A leg that ends asking for input: `allow`, reason `input_required`,
 * no outcome (the call is not over). The retry that ends the call: the call's row, `allow`/`granted` with
 * its outcome; a retry that is refused: a `deny` row with the reason. A call whose client never comes back
 * has its first row only: it ended at the bridge's timeout, with nobody left to tell.
 */

/** Request ids toward the bridge: never the client's, so equal ids of two callers never meet. */
const MODERN_ID_PREFIX = "hatago-modern:";

export interface ModernCallContext {
  readonly ctx: RequestContext;
  readonly core: ToolCallDeps;
  readonly fetchBridge: BridgeFetch;
  readonly stateKey: CryptoKey;
  readonly waitUntil: (promise: Promise<unknown>) => void;
  /** Issue 17: asking to connect a missing account (worker/connect/elicit.ts); null where none is configured. */
  readonly connect?: { readonly elicitation: ConnectElicitation; readonly db: Kysely<Database> } | null;
}

export async function serveToolCall(
  c: ModernCallContext,
  modern: ModernRequest & { readonly id: string | number },
  declared: DeclaredCapabilities,
  params: CallToolRequest["params"],
): Promise<Response> {
  const identity = modern.params.requestState === undefined ? null : await identityOf(c.ctx, params);
  const retry = await readRetry(c.stateKey, identity, modern.params);
  return respondToCall(async (out) => {
    let sent = false;
    const send: SendCall = async (server, call) => {
      sent = true;
      return sendModern(c, modern, declared, retry, out, server, call);
    };
    const answer = await callTool(c.core, c.ctx, params, send, { declared });
    if (!sent && identity && retry.kind === "continues" && retry.origin.kind === "bridge") {
      // Refused before it was sent (the decision or the rate limit): the waiting call ends now, not at its timeout.
      const { pending, round } = retry.origin;
      c.waitUntil(cancelOnBridge(c.fetchBridge, identity.server, identity.binding, pending, round));
    }
    return answerOf(modern.id, answer, params.name);
  }, c.waitUntil);
}

async function sendModern(
  c: ModernCallContext,
  modern: ModernRequest & { readonly id: string | number },
  declared: DeclaredCapabilities,
  retry: Retry,
  out: CallOutput,
  server: ServerId,
  call: CallToolRequest["params"],
): ReturnType<SendCall> {
  if (retry.kind === "refused") return { kind: "refused", reason: retry.reason, error: retry.error };
  // The gateway's own input requests (input-required.ts, origin `gateway`) are recognised by their purpose:
  // issue 17's "connect your account" (worker/connect/elicit.ts) is the only one.
  const own = retry.kind === "continues" && retry.origin.kind === "gateway" ? retry.origin : null;
  if (
    retry.kind === "continues" &&
    retry.origin.kind !== "bridge" &&
    (own?.purpose !== CONNECT_PURPOSE || !c.connect)
  ) {
    return { kind: "refused", reason: "request_state_invalid", error: invalidRequestState() };
  }
  const binding = await callBinding(server, call.name, call.arguments);
  if (c.connect) {
    const responses = retry.kind === "continues" ? retry.responses : {};
    const gate = await connectionGate(
      c.connect.elicitation,
      c.connect.db,
      c.ctx.caller.principal,
      server,
      declared.has("elicitation.url"),
      own ? { provider: String(own.data.provider), responses } : null,
      { signal: out.signal },
    );
    if (gate.kind === "answer") return { kind: "result", result: gate.result };
    if (gate.kind === "ask") {
      const identity = {
        principal: c.ctx.caller.principal,
        clientId: c.ctx.caller.clientId,
        server,
        tool: call.name,
        binding,
      };
      const origin = { kind: "gateway", purpose: CONNECT_PURPOSE, data: gate.data } as const;
      return {
        kind: "input_required",
        result: await inputRequired(c.stateKey, identity, origin, { [gate.key]: gate.request }),
      };
    }
  }
  const options: ExecuteModern = {
    caps: {
      sampling: declared.has("sampling"),
      elicitationForm: declared.has("elicitation.form"),
      elicitationUrl: declared.has("elicitation.url"),
      roots: declared.has("roots"),
    },
    logLevel: modern.logLevel,
    binding,
    ...(retry.kind === "continues" && retry.origin.kind === "bridge"
      ? { resume: { pending: retry.origin.pending, round: retry.origin.round, responses: retry.responses } }
      : {}),
  };
  const id = `${MODERN_ID_PREFIX}${crypto.randomUUID()}`;
  // The child sees a token only when this request asked for progress (the bridge maps it per call).
  const meta = modern.progressToken === undefined ? {} : { _meta: { progressToken: modern.progressToken } };
  const message = { jsonrpc: "2.0" as const, id, method: "tools/call", params: { ...call, ...meta } };
  const end = await callOnBridge(c.fetchBridge, server, message, options, out.signal, (n) =>
    relay(out, modern, server, n),
  );
  switch (end.kind) {
    case "response":
      return outcomeOfReply(end.message, id);
    case "not_waiting":
      return { kind: "refused", reason: "call_not_waiting", error: noLongerWaiting() };
    case "input": {
      if (!Object.values(end.event.requests).every((r) => offerable(declared, r))) {
        // SECURITY: the bridge offers only what the request declared (container/src/routing.ts); should it
        // ever not, the question is not passed on (mrtr: MUST NOT) and the call is ended, not left waiting.
        c.waitUntil(cancelOnBridge(c.fetchBridge, server, binding, end.event.pending, end.event.round));
        return { kind: "unavailable", cause: "the bridge offered an input request the request did not declare" };
      }
      const identity: CallIdentity = {
        principal: c.ctx.caller.principal,
        clientId: c.ctx.caller.clientId,
        server,
        tool: call.name,
        binding,
      };
      const origin = { kind: "bridge", pending: end.event.pending, round: end.event.round } as const;
      return { kind: "input_required", result: await inputRequired(c.stateKey, identity, origin, end.event.requests) };
    }
  }
}

/** A notification of the call, as this request's client may have it (or not at all). */
function relay(out: CallOutput, modern: ModernRequest, server: ServerId, n: Record<string, unknown>): void {
  const params = n.params;
  if (typeof params !== "object" || params === null || Array.isArray(params)) return;
  if (n.method === "notifications/progress") {
    // A retry carries its own token (or none): progress is about the request that is open now.
    if (modern.progressToken === undefined) return;
    out.notify({ ...n, params: { ...params, progressToken: modern.progressToken } });
  } else if (n.method === "notifications/message") {
    if (modern.logLevel === null) return;
    const logger = (params as { logger?: unknown }).logger;
    out.notify({ ...n, params: { ...params, logger: typeof logger === "string" ? `${server}/${logger}` : server } });
  }
}

/** The call's identity for its requestState: what it names, as the state was sealed (sendModern). */
async function identityOf(ctx: RequestContext, params: CallToolRequest["params"]): Promise<CallIdentity | null> {
  const target = parseQualifiedName(params.name);
  if (!target) return null;
  return {
    principal: ctx.caller.principal,
    clientId: ctx.caller.clientId,
    server: target.server,
    tool: target.name,
    binding: await callBinding(target.server, target.name, params.arguments),
  };
}

function answerOf(id: string | number, answer: ToolCallAnswer, name: string): CallAnswer {
  // The modern path always sends; `not_sent` is the direct path's alone.
  if (answer.kind === "not_sent") throw new Error("the modern path's call was not sent");
  if (answer.kind === "error" && answer.reason === "client_capability_missing") {
    const target = parseQualifiedName(name);
    const needs = target ? (toolNeeds(target.server, target.name) ?? []) : [];
    const requiredCapabilities: Record<string, unknown> = {};
    for (const need of needs) Object.assign(requiredCapabilities, CAPABILITY_PROBES[need]);
    return {
      status: 400,
      message: {
        jsonrpc: "2.0",
        id,
        error: {
          code: MISSING_REQUIRED_CLIENT_CAPABILITY,
          message: `The tool ${name} needs a client capability this request did not declare: ${needs.join(" or ")}.`,
          data: { requiredCapabilities },
        },
      },
    };
  }
  const body = answerMessage(id, answer);
  if ("result" in body && answer.kind === "result") {
    return { status: 200, message: { ...body, result: { ...body.result, resultType: "complete" } } };
  }
  return { status: 200, message: body };
}
