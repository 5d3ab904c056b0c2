import type { IncomingMessage, ServerResponse } from "node:http";
import { connectionOf, isServerId } from "../../policies/catalog.ts";
import { authenticate, type BridgeContext, credentialMissing } from "./context.ts";
import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_LIMITS,
  EXECUTE_BODY_FIELDS,
  EXECUTE_EVENTS,
  type ExecuteModern,
  jsonRpcRequestProblem,
} from "./contract.ts";
import { BridgeHttpError, badRequest, methodNotAllowed, notFound, unavailable } from "./errors.ts";
import { ParkedError } from "./handshake.ts";
import { header, parseBoundedJson, readBody, requireJsonContentType } from "./http.ts";
import { classify, errorResponse, isJsonObject, paramsOf, RPC_ERROR, resultResponse } from "./jsonrpc.ts";
import { admitCalls } from "./limits.ts";
import { ModernCall, ModernPort, pendingCallsOf } from "./modern-call.ts";
import { parseModern } from "./modern-options.ts";
import { type CallSink, SilentPort } from "./port.ts";
import { SSE_HEADERS } from "./sse.ts";

/**
 * `POST /execute`: one JSON-RPC request to one server's process, for the gateway's `execute_stdio` tool.
 *
 * SECURITY: the body is `{ server, message, modern? }` and nothing else. A field that could steer a process
 * (command, args, env, cwd, shell, …) is refused by name, and so is any unknown field: the process
 * that answers is the catalog's, launched with the catalog's argv (CVE-2025-49596 class). The message is
 * exactly one JSON-RPC request (contract.ts, jsonRpcRequestProblem): anything else is refused at once
 * instead of reaching a child that would never answer it.
 *
 * With `modern` (a 2026-07-28 call from worker/mcp/modern/) the answer is a stream, and a call whose server
 * asks its client something waits here for the client's retry (modern-call.ts); a `resume` continues it.
 */
export async function handleExecute(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") throw methodNotAllowed("POST");
  // Refuse anonymous callers before reading their body.
  if (!header(req, BRIDGE_CREDENTIAL_HEADER)) throw credentialMissing();
  requireJsonContentType(req);
  const body = parseBoundedJson(await readBody(req, BRIDGE_LIMITS.maxRequestBytes));
  if (!isJsonObject(body)) throw badRequest("invalid_body", "the body must be a JSON object { server, message }");
  for (const field of Object.keys(body)) {
    if (!(EXECUTE_BODY_FIELDS as readonly string[]).includes(field)) {
      throw badRequest("field_not_allowed", `field not allowed: ${field.slice(0, 64)}`);
    }
  }
  const { server, message } = body;
  const modern = body.modern === undefined ? undefined : parseModern(body.modern);
  if (!isServerId(server) || !ctx.pool.hosts(server)) throw notFound("unknown server");
  const problem = jsonRpcRequestProblem(message);
  const classified = classify(message);
  if (problem !== null || classified.kind !== "request") {
    throw badRequest("invalid_message", `message must be one JSON-RPC request: ${problem ?? "it is not one"}`);
  }
  const claims = await authenticate(ctx, req, server, "execute", undefined);
  const { id, method, msg } = classified;
  if (modern?.resume) return resumeModern(ctx, res, server, claims.sub, id, { ...modern, resume: modern.resume });
  if (method === "logging/setLevel" || method === "resources/subscribe" || method === "resources/unsubscribe") {
    // These change per-connection state of a process other sessions may share, and /execute has no
    // stream to deliver what they would start.
    return answer(
      res,
      modern,
      errorResponse(id, RPC_ERROR.methodNotFound, `${method} is not available through /execute`),
    );
  }
  admitCalls(ctx.pool.countersOf(server).inFlight, 1, ctx.config);
  // Connections (issue 17): a call through /execute is a call like any other. The person's token is fetched
  // (refreshed, audited) and their process restarted when it changed; no connection answers with the URL.
  if (method === "tools/call" && connectionOf(server)) {
    const tool = paramsOf(msg)?.name;
    const outcome = await ctx.pool.connectionFor(server, claims.sub, typeof tool === "string" ? tool : "(unnamed)");
    if (!outcome.ok) {
      return answer(
        res,
        modern,
        resultResponse(id, { content: [{ type: "text", text: outcome.message }], isError: true }),
      );
    }
  }
  const mux = ctx.pool.muxFor(server, claims.sub);
  let initResult: Record<string, unknown>;
  try {
    initResult = await mux.ready();
  } catch (error) {
    if (error instanceof ParkedError) throw unavailable("server_unavailable", error.message, error.retryAfterSeconds);
    throw error;
  }
  // The child was initialized by the bridge; a second initialize would change its idea of the client.
  if (method === "initialize") return answer(res, modern, resultResponse(id, initResult));
  if (modern) {
    const port = new ModernPort(claims.sub, modern);
    const call = new ModernCall({
      mux,
      port,
      server,
      binding: modern.binding,
      clientId: id,
      callTimeoutMs: ctx.config.callTimeoutMs,
      registry: pendingCallsOf(ctx.pool),
      log: ctx.log,
    });
    call.attach(res);
    mux.call(port, id, method, msg, undefined, call);
    return;
  }
  const port = new SilentPort(claims.sub, "execute");
  const answered = new Promise<string | undefined>((resolve) => {
    const sink: CallSink = { message: () => {}, done: resolve, abandon: () => resolve(undefined) };
    mux.call(port, id, method, msg, undefined, sink);
  });
  res.on("close", () => {
    if (!res.writableEnded) mux.cancel(port, id, "client disconnected");
  });
  const json = await answered;
  if (json === undefined) return;
  reply(res, json);
}

/**
 * A retry of a modern call that waits for its client's answers. SECURITY: the principal is the credential's;
 * the call must be this principal's, on this server, with the first leg's binding, at the round answered
 * (modern-call.ts, PendingCalls.find). Anything else is one 404, whichever fact failed.
 */
function resumeModern(
  ctx: BridgeContext,
  res: ServerResponse,
  server: string,
  principal: string,
  legId: string | number,
  modern: ExecuteModern & { resume: NonNullable<ExecuteModern["resume"]> },
): void {
  const { pending, round, cancel } = modern.resume;
  const call = pendingCallsOf(ctx.pool).find(pending, principal, server, modern.binding, round);
  if (!call) throw new BridgeHttpError(404, "call_not_waiting", "no call is waiting for this input");
  if (cancel === true) {
    call.cancel("the retry was refused");
    res.writeHead(204).end();
    return;
  }
  call.resume(res, legId, modern);
}

/** An answer the bridge gives itself: JSON, or for a modern call its stream's one `response` event. */
function answer(res: ServerResponse, modern: ExecuteModern | undefined, json: string): void {
  if (!modern) {
    reply(res, json);
    return;
  }
  if (res.destroyed) return;
  res.writeHead(200, SSE_HEADERS);
  res.end(`event: ${EXECUTE_EVENTS.response}\ndata: ${json}\n\n`);
}

function reply(res: ServerResponse, json: string): void {
  if (res.destroyed) return;
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}
