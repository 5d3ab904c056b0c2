import type { IncomingMessage, ServerResponse } from "node:http";
import { connectionOf, isServerId } from "../../policies/catalog.ts";
import { authenticate, type BridgeContext, credentialMissing } from "./context.ts";
import { BRIDGE_CREDENTIAL_HEADER, BRIDGE_LIMITS, EXECUTE_BODY_FIELDS, jsonRpcRequestProblem } from "./contract.ts";
import { badRequest, methodNotAllowed, notFound, unavailable } from "./errors.ts";
import { ParkedError } from "./handshake.ts";
import { header, parseBoundedJson, readBody, requireJsonContentType } from "./http.ts";
import {
  classify,
  errorResponse,
  isJsonObject,
  type JsonRpcId,
  paramsOf,
  RPC_ERROR,
  resultResponse,
} from "./jsonrpc.ts";
import { admitCalls } from "./limits.ts";
import { type CallSink, NO_CLIENT_CAPS, type PendingCall, type Port } from "./port.ts";

/**
 * `POST /execute`: one JSON-RPC request to one server's process, for the gateway's `execute_stdio` tool.
 *
 * SECURITY: the body is `{ server, message }` and nothing else. A field that could steer a process
 * (command, args, env, cwd, shell, …) is refused by name, and so is any unknown field: the process
 * that answers is the catalog's, launched with the catalog's argv (CVE-2025-49596 class). The message is
 * exactly one JSON-RPC request (contract.ts, jsonRpcRequestProblem): anything else is refused at once
 * instead of reaching a child that would never answer it.
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
  if (!isServerId(server) || !ctx.pool.hosts(server)) throw notFound("unknown server");
  const problem = jsonRpcRequestProblem(message);
  const classified = classify(message);
  if (problem !== null || classified.kind !== "request") {
    throw badRequest("invalid_message", `message must be one JSON-RPC request: ${problem ?? "it is not one"}`);
  }
  const claims = await authenticate(ctx, req, server, "execute", undefined);
  const { id, method, msg } = classified;
  if (method === "logging/setLevel" || method === "resources/subscribe" || method === "resources/unsubscribe") {
    // These change per-connection state of a process other sessions may share, and /execute has no
    // stream to deliver what they would start.
    return reply(res, errorResponse(id, RPC_ERROR.methodNotFound, `${method} is not available through /execute`));
  }
  admitCalls(ctx.pool.countersOf(server).inFlight, 1, ctx.config);
  // Connections (issue 17): a call through /execute is a call like any other. The person's token is fetched
  // (refreshed, audited) and their process restarted when it changed; no connection answers with the URL.
  if (method === "tools/call" && connectionOf(server)) {
    const tool = paramsOf(msg)?.name;
    const outcome = await ctx.pool.connectionFor(server, claims.sub, typeof tool === "string" ? tool : "(unnamed)");
    if (!outcome.ok) {
      return reply(res, resultResponse(id, { content: [{ type: "text", text: outcome.message }], isError: true }));
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
  if (method === "initialize") return reply(res, resultResponse(id, initResult));
  const port = new ExecutePort(claims.sub);
  const answer = new Promise<string | undefined>((resolve) => {
    const sink: CallSink = { message: () => {}, done: resolve, abandon: () => resolve(undefined) };
    mux.call(port, id, method, msg, undefined, sink);
  });
  res.on("close", () => {
    if (!res.writableEnded) mux.cancel(port, id, "client disconnected");
  });
  const json = await answer;
  if (json === undefined) return;
  reply(res, json);
}

function reply(res: ServerResponse, json: string): void {
  if (res.destroyed) return;
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}

/** A one-request port: no capabilities (server→client requests are refused), nowhere to stream to. */
class ExecutePort implements Port {
  readonly principal: string;
  readonly label = "execute";
  readonly caps = NO_CLIENT_CAPS;
  readonly calls = new Map<JsonRpcId, PendingCall>();
  readonly subscriptions = new Set<string>();

  constructor(principal: string) {
    this.principal = principal;
  }

  deliver(): void {}

  acceptsLog(): boolean {
    return false;
  }
}
