import type { IncomingMessage, ServerResponse } from "node:http";
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import { connectionOf, type ServerId } from "../../policies/catalog.ts";
import { authenticate, type BridgeContext } from "./context.ts";
import { BRIDGE_LIMITS, MCP_SESSION_HEADER } from "./contract.ts";
import { dispatch } from "./dispatch.ts";
import { BridgeHttpError, badRequest, methodNotAllowed, notFound, unavailable } from "./errors.ts";
import { PostExchange } from "./exchange.ts";
import { ParkedError } from "./handshake.ts";
import { accepts, header, parseBoundedJson, readBody, requireJsonContentType } from "./http.ts";
import { type Classified, classify, isJsonObject, type JsonObject, paramsOf, resultResponse } from "./jsonrpc.ts";
import { admitCalls, admitSession } from "./limits.ts";
import { type ClientCaps, NO_CLIENT_CAPS } from "./port.ts";
import { Session } from "./session.ts";
import { SSE_HEADERS, writeSseEvent } from "./sse.ts";

/** `POST|GET|DELETE /servers/<id>/mcp`: MCP Streamable HTTP, one session per client. */
export async function handleMcp(ctx: BridgeContext, req: IncomingMessage, res: ServerResponse, server: ServerId) {
  const method = req.method ?? "";
  if (method !== "POST" && method !== "GET" && method !== "DELETE") throw methodNotAllowed("GET, POST, DELETE");
  const sessionId = header(req, MCP_SESSION_HEADER);
  const claims = await authenticate(ctx, req, server, "mcp", sessionId);
  const version = header(req, "mcp-protocol-version");
  if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    throw badRequest(
      "unsupported_protocol_version",
      `unsupported MCP-Protocol-Version; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")}`,
    );
  }
  if (method === "POST") return post(ctx, req, res, server, claims.sub, sessionId);
  const session = findSession(ctx, server, claims.sub, sessionId);
  if (method === "DELETE") {
    ctx.sessions.remove(session);
    res.writeHead(200).end();
    return;
  }
  if (!accepts(req).sse)
    throw new BridgeHttpError(406, "not_acceptable", "the GET stream needs Accept: text/event-stream");
  if (session.hasStream) throw new BridgeHttpError(409, "conflict", "this session already has a GET stream");
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  session.openStream(res);
}

function findSession(ctx: BridgeContext, server: ServerId, principal: string, sessionId: string | undefined): Session {
  if (sessionId === undefined) throw badRequest("session_required", "the Mcp-Session-Id header is required");
  // SECURITY: another principal's session id is "not found", exactly like an unknown one.
  const session = ctx.sessions.find(sessionId, server, principal);
  if (!session) throw notFound("unknown MCP session");
  return session;
}

async function post(
  ctx: BridgeContext,
  req: IncomingMessage,
  res: ServerResponse,
  server: ServerId,
  principal: string,
  sessionId: string | undefined,
): Promise<void> {
  requireJsonContentType(req);
  const accept = accepts(req);
  if (!accept.json && !accept.sse) {
    throw new BridgeHttpError(406, "not_acceptable", "Accept must allow application/json or text/event-stream");
  }
  const body = (await readBody(req, BRIDGE_LIMITS.maxRequestBytes)).trim();
  const parsed = parseBoundedJson(body);
  const batch = Array.isArray(parsed);
  const values: unknown[] = batch ? parsed : [parsed];
  if (values.length === 0 || values.length > BRIDGE_LIMITS.maxBatchMessages) {
    throw badRequest("invalid_batch", `a batch holds 1 to ${BRIDGE_LIMITS.maxBatchMessages} messages`);
  }
  const messages: Classified[] = values.map(classify);
  for (const m of messages)
    if (m.kind === "invalid") throw badRequest("invalid_message", `invalid JSON-RPC: ${m.reason}`);
  const init = messages.find((m) => m.kind === "request" && m.method === "initialize");
  if (init && init.kind === "request") {
    if (messages.length !== 1 || sessionId !== undefined) {
      throw badRequest("invalid_initialize", "initialize must be sent alone and without a session");
    }
    return initialize(ctx, res, server, principal, init.id, init.msg, accept);
  }
  const session = findSession(ctx, server, principal, sessionId);
  const requests = messages.filter((m) => m.kind === "request").length;
  admitCalls(ctx.pool.countersOf(server).inFlight, requests, ctx.config);
  const parkedFor = session.mux.unavailableForSeconds();
  if (requests > 0 && parkedFor > 0) {
    throw unavailable("server_unavailable", "server unavailable: its process keeps crashing", parkedFor);
  }
  // Connections (issue 17): a call to a server that acts as the person needs their token first.
  const calls = messages.filter((m) => m.kind === "request" && m.method === "tools/call");
  let refused: string | null = null;
  if (calls.length > 0 && connectionOf(server)) {
    const tool = calls.length === 1 && calls[0]?.kind === "request" ? paramsOf(calls[0].msg)?.name : undefined;
    const outcome = await ctx.pool.connectionFor(server, principal, typeof tool === "string" ? tool : "(batch)");
    if (!outcome.ok) refused = outcome.message;
  }
  const exchange = new PostExchange(res, { port: session, acceptsSse: accept.sse, acceptsJson: accept.json, batch });
  const raw = batch ? undefined : body;
  for (const m of messages) {
    if (refused !== null && m.kind === "request" && m.method === "tools/call") {
      // A tool error the person can act on (the connect URL), not a protocol failure to decode.
      exchange.expect(m.id);
      exchange.done(resultResponse(m.id, { content: [{ type: "text", text: refused }], isError: true }));
      continue;
    }
    dispatch(session, m, raw, exchange);
  }
  if (exchange.ids.length > 0) {
    res.on("close", () => {
      if (exchange.finished) return;
      // The client went away: its calls are cancelled toward the child (no one is left to answer).
      for (const id of exchange.ids) {
        const call = session.calls.get(id);
        if (call && call.sink === exchange) session.mux.cancel(session, id, "client disconnected");
      }
    });
  }
  exchange.finish();
}

async function initialize(
  ctx: BridgeContext,
  res: ServerResponse,
  server: ServerId,
  principal: string,
  id: string | number,
  msg: JsonObject,
  accept: { json: boolean; sse: boolean },
): Promise<void> {
  admitSession(ctx.sessions.count(server), ctx.config);
  const mux = ctx.pool.muxFor(server, principal);
  let childResult: JsonObject;
  try {
    childResult = await mux.ready();
  } catch (error) {
    if (error instanceof ParkedError) throw unavailable("server_unavailable", error.message, error.retryAfterSeconds);
    throw error;
  }
  const params = paramsOf(msg);
  const requested = params?.protocolVersion;
  // Version negotiation as the spec has it: echo a version we support, else offer our latest.
  const protocolVersion =
    typeof requested === "string" && SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
      ? requested
      : LATEST_PROTOCOL_VERSION;
  const session = new Session({ server, principal, caps: capsOf(params?.capabilities), protocolVersion, mux });
  ctx.sessions.add(session);
  ctx.log.info("session.created", { server, session: session.id, protocolVersion });
  const json = resultResponse(id, { ...childResult, protocolVersion });
  const headers = { [MCP_SESSION_HEADER]: session.id };
  if (accept.json) {
    res.writeHead(200, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(json) });
    res.end(json);
    return;
  }
  res.writeHead(200, { ...headers, ...SSE_HEADERS });
  writeSseEvent(res, json);
  res.end();
}

function capsOf(value: unknown): ClientCaps {
  if (!isJsonObject(value)) return NO_CLIENT_CAPS;
  const elicitation = value.elicitation;
  // An empty `elicitation: {}` means form mode (the spec's backwards-compatible reading).
  const form = isJsonObject(elicitation) && (Object.keys(elicitation).length === 0 || isJsonObject(elicitation.form));
  const url = isJsonObject(elicitation) && isJsonObject(elicitation.url);
  return {
    sampling: isJsonObject(value.sampling),
    elicitationForm: form,
    elicitationUrl: url,
    roots: isJsonObject(value.roots),
  };
}
