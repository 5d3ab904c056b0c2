import { DurableObject } from "cloudflare:workers";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  ElicitResultSchema,
  ErrorCode,
  isInitializeRequest,
  RootsListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { type BridgeKey, importBridgeKey } from "../../container/src/contract.ts";
import type { ServerId } from "../../policies/catalog.ts";
import { declaredCapabilities, usableWith } from "../../policies/client-capabilities.ts";
import { type AuditLog, argsDigest, auditKeyFrom } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import { loadContextWithoutGrants, loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import { bridgeFetchFor, executeOnBridge } from "../bridge/router.ts";
import { type GatewaySettings, parseConfig } from "../config.ts";
import { askForConnection, connectElicitationOf } from "../connect/elicit.ts";
import { type Database, database } from "../db/database.ts";
import { forgetSession } from "../db/sessions.repository.ts";
import { HttpError } from "../http/errors.ts";
import { type AuditedRefusal, auditedRequestOf, decideTool, refusalMessage, refuseInvalidAudited } from "./audited.ts";
import { Backends } from "./backends.ts";
import { batchesAllowed, readJsonBody } from "./body.ts";
import { allowedCallRecorder, rateLimitAllows } from "./call-guards.ts";
import { registerContentHandlers } from "./content.ts";
import { authInfoFor, contextOf } from "./context.ts";
import { streamableTransportAccepts } from "./direct-call.ts";
import { jsonRpcErrorResponse, RpcError } from "./errors.ts";
import { decodeInternal, INTERNAL_HEADER, type InternalInfo } from "./internal.ts";
import { parseQualifiedName } from "./names.ts";
import { passThroughValidator } from "./pass-through-validator.ts";
import { INSTRUCTIONS, SERVER_INFO } from "./server-info.ts";
import { relayHooks } from "./session-relay.ts";
import { negotiatedVersion, recordSessionMeta, replayInitialize, type SessionMeta } from "./session-state.ts";
import { SESSION_MAX_AGE_MS, type SessionEnv } from "./settings.ts";
import { WebSseServerTransport } from "./sse-transport.ts";
import { mayUseServer } from "./tool-list.ts";
import { registerToolHandlers, type ToolDeps } from "./tools.ts";

/**
 * One MCP session. The Worker routes every request of a session here (by principal and session id);
 * this object holds the SDK server the client talks to and one SDK client per backend server.
 *
 * State: the session's metadata is in Durable Object storage; the live objects are rebuilt from it after
 * an eviction by replaying the client's initialize (SDK transports have no restore API). Permissions are
 * never cached: every request reads them from D1.
 */
export class McpSession extends DurableObject<SessionEnv> {
  #settings: GatewaySettings | null = null;
  /** Kept as resolved values, like the Worker's keys (mcp/handler.ts). */
  #keys: { bridge: BridgeKey; audit: CryptoKey } | null = null;
  #db: Kysely<Database>;
  #audit: AuditLog;
  #server: Server | null = null;
  #transport: WebStandardStreamableHTTPServerTransport | WebSseServerTransport | null = null;
  #backends: Backends | null = null;
  #backendsOf: (() => Backends) | null = null;
  #meta: SessionMeta | null = null;
  #ending: Promise<void> | null = null;
  /** Tool calls in flight per server, newest last: server→client requests are tied to the newest. */
  readonly #inFlight = new Map<ServerId, (string | number)[]>();

  constructor(ctx: DurableObjectState, env: SessionEnv) {
    super(ctx, env);
    this.#db = database(env.DB);
    this.#audit = auditLog(env);
  }

  override async fetch(request: Request): Promise<Response> {
    const info = decodeInternal(request.headers.get(INTERNAL_HEADER));
    if (!info) return new Response("bad internal request", { status: 500 });
    try {
      this.#settings ??= gatewaySettingsOf(this.env);
      const meta = this.#meta ?? (await this.ctx.storage.get<SessionMeta>("meta")) ?? null;
      // SECURITY: the object name already includes the principal; this is the second lock on the door.
      if (meta && meta.principal !== info.caller.principal) throw sessionNotFound();
      this.#meta = meta;
      const body = info.route === "mcp" && request.method === "POST" ? await readJsonBody(request) : undefined;
      // Grants are read only for requests that are decided: not for notifications, answers to the
      // server's own requests, or DELETE. SECURITY: those still check the caller's standing (a smaller
      // query), so a blocked or revoked person is refused on every request.
      const ctx =
        info.route === "mcp" && (request.method === "DELETE" || (body !== undefined && !carriesRequest(body)))
          ? await loadContextWithoutGrants(this.#db, info.caller, info.sessionId)
          : await loadRequestContext(this.#db, info.caller, info.sessionId);
      switch (info.route) {
        case "mcp":
          return await this.#streamable(request, body, info, ctx);
        case "sse-open":
          return await this.#openSse(request, info, ctx);
        case "sse-message":
          return await this.#sseMessage(request, ctx);
      }
    } catch (error) {
      if (error instanceof HttpError) return jsonRpcErrorResponse(error, null, request.url);
      console.error(
        JSON.stringify({
          event: "session_error",
          error: String(error),
          stack: error instanceof Error ? error.stack : undefined,
        }),
      );
      return jsonRpcErrorResponse(new HttpError(500, "Internal error.", { rpcCode: ErrorCode.InternalError }));
    }
  }

  override async alarm(): Promise<void> {
    await this.#end();
  }

  /**
   * Ends the session now (its streams close, its records go): called by the admin API when the session's
   * caller is blocked or revoked, so an open GET or SSE stream does not outlive the decision.
   */
  async end(): Promise<void> {
    await this.#end();
  }

  async #streamable(request: Request, body: unknown, info: InternalInfo, ctx: RequestContext): Promise<Response> {
    let created = false;
    if (!this.#transport) {
      if (info.fresh && !isInitializeRequest(body)) {
        // MCP Streamable HTTP: a request without a session id, other than initialize, is a 400.
        throw new HttpError(400, "Bad Request: Mcp-Session-Id header is required (send initialize first).", {
          rpcCode: ErrorCode.ConnectionClosed,
        });
      }
      // SECURITY: only an id the Worker minted (`fresh`) starts a session; the Worker also refuses an
      // initialize that names an id (boundary.ts), so a client can neither choose one nor revive a deleted one.
      if (info.fresh && !this.#meta && request.method === "POST" && isInitializeRequest(body)) {
        this.#transport = await this.#build(info, "streamable");
        created = true;
      } else if (this.#meta?.kind === "streamable" && Date.now() - this.#meta.createdAtMs < SESSION_MAX_AGE_MS) {
        const rebuilt = await this.#build(info, "streamable");
        if (!(rebuilt instanceof WebStandardStreamableHTTPServerTransport)) throw sessionNotFound();
        this.#transport = rebuilt;
        await replayInitialize(rebuilt, this.#meta, ctx);
        // The record may predate this object's eviction or be missing; the session is alive, so it is rewritten.
        await recordSessionMeta(this.#db, this.#meta);
      } else {
        throw sessionNotFound();
      }
    }
    if (!(this.#transport instanceof WebStandardStreamableHTTPServerTransport)) throw sessionNotFound();
    if (Array.isArray(body)) {
      const version = negotiatedVersion(this.#meta?.initialize.protocolVersion);
      if (!batchesAllowed(version)) {
        throw new HttpError(400, `JSON-RPC batches are not part of MCP ${version}; send one message per request.`, {
          rpcCode: ErrorCode.InvalidRequest,
        });
      }
    }
    const refused = streamableTransportAccepts(request) ? await this.#refuseInvalid(body, ctx) : null;
    if (refused) {
      return new Response(JSON.stringify(refusalMessage(refused)), {
        status: refused.status,
        headers: { "content-type": "application/json", "cache-control": "no-store", "mcp-session-id": info.sessionId },
      });
    }
    const unavailable = await this.#preflight(body, ctx);
    if (unavailable) return unavailable;
    const response = await this.#transport.handleRequest(request, { parsedBody: body, authInfo: authInfoFor(ctx, "") });
    // DELETE: the session's records are gone before the client hears it ended (no direct call after it).
    if (request.method === "DELETE" && response.ok) await this.#end();
    if (created && response.ok && isInitializeRequest(body)) {
      await this.#remember({
        principal: info.caller.principal,
        sessionId: info.sessionId,
        kind: "streamable",
        initialize: body.params,
        createdAtMs: Date.now(),
        subjects: info.caller.subjects,
      });
    }
    return response;
  }

  /**
   * An audited request (tools/call, resources/read, prompts/get) the SDK would refuse before our handlers
   * (bad params, nested too deep): refused here instead, decided first and with its one audit row.
   */
  async #refuseInvalid(body: unknown, ctx: RequestContext): Promise<AuditedRefusal | null> {
    const backends = this.#backendsOf;
    const keys = this.#keys;
    if (!backends || !keys) return null;
    return refuseInvalidAudited(
      { audit: this.#audit, auditKey: keys.audit, liveTools: (s) => backends().tools(s) },
      ctx,
      body,
      declaredCapabilities(this.#server?.getClientCapabilities()),
    );
  }

  /**
   * A tool call to a server the caller may use, whose bridge connection is not open yet: open it first, so
   * a bridge that is down or too slow to start is answered at the HTTP layer (503 + Retry-After, with the
   * JSON-RPC error in the body) instead of hanging inside an event stream.
   */
  async #preflight(body: unknown, ctx: RequestContext): Promise<Response | null> {
    const request = auditedRequestOf(body);
    const name = request?.method === "tools/call" ? request.params.name : undefined;
    const backends = this.#backendsOf;
    const keys = this.#keys;
    if (!backends || !keys || !request || typeof name !== "string") return null;
    const target = parseQualifiedName(name);
    if (!target || !mayUseServer(ctx, target.server)) return null;
    try {
      await backends().connection(target.server);
      return null;
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      // The call is not sent, but it is still one decision and one row. A call the policy refuses, one this
      // client's capabilities cannot use, and one over the caller's rate limit are left to the handler,
      // which refuses them without the bridge (and audits the refusal) as on every other path.
      const decision = await decideTool({ liveTools: (s) => backends().tools(s) }, ctx, target.server, target.name);
      const declared = declaredCapabilities(this.#server?.getClientCapabilities());
      if (!decision.allow || !usableWith(declared, target.server, target.name)) return null;
      try {
        if (!(await rateLimitAllows({ audit: this.#audit }, ctx))) return null;
        const digest = await argsDigest(keys.audit, request.params.arguments ?? {});
        await allowedCallRecorder({ audit: this.#audit }, ctx, { server: target.server, tool: target.name, digest })(
          "transport_error",
        );
      } catch (auditError) {
        if (auditError instanceof RpcError) {
          return jsonRpcErrorResponse(new HttpError(503, auditError.message, { rpcCode: auditError.code }), request.id);
        }
        throw auditError;
      }
      return jsonRpcErrorResponse(error, request.id);
    }
  }

  async #openSse(_request: Request, info: InternalInfo, _ctx: RequestContext): Promise<Response> {
    if (this.#transport || this.#meta) throw sessionNotFound();
    const transport = (await this.#build(info, "sse")) as WebSseServerTransport;
    this.#transport = transport;
    await this.#remember({
      principal: info.caller.principal,
      sessionId: info.sessionId,
      kind: "sse",
      initialize: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "sse", version: "0" } },
      createdAtMs: Date.now(),
      subjects: info.caller.subjects,
    });
    return transport.response();
  }

  async #sseMessage(request: Request, ctx: RequestContext): Promise<Response> {
    const transport = this.#transport;
    if (!(transport instanceof WebSseServerTransport) || !transport.isOpen) throw sessionNotFound();
    const body = await readJsonBody(request);
    if (Array.isArray(body))
      throw new HttpError(400, "The HTTP+SSE transport takes one message per request.", {
        rpcCode: ErrorCode.InvalidRequest,
      });
    const refused = await this.#refuseInvalid(body, ctx);
    if (refused?.status === 400) {
      return new Response(JSON.stringify(refusalMessage(refused)), {
        status: 400,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
      });
    }
    // Answers travel on the event stream, as the SDK's would.
    if (refused) {
      await transport.send(refusalMessage(refused));
      return new Response("Accepted", { status: 202 });
    }
    try {
      transport.handleMessages(body, { authInfo: authInfoFor(ctx, "") });
    } catch {
      throw new HttpError(400, "The body is not a JSON-RPC message.", { rpcCode: ErrorCode.InvalidRequest });
    }
    return new Response("Accepted", { status: 202 });
  }

  /** Builds the SDK server and its transport for this session. */
  async #build(info: InternalInfo, kind: "streamable" | "sse") {
    const settings = this.#settings ?? gatewaySettingsOf(this.env);
    this.#keys ??= {
      bridge: await importBridgeKey(settings.bridgeSecret),
      audit: await auditKeyFrom(settings.bridgeSecret),
    };
    const keys = this.#keys;
    const fetchBridge = bridgeFetchFor(
      { key: keys.bridge, insecureDevBridgeUrl: settings.insecureDevBridgeUrl, containers: this.env.BRIDGE },
      info.caller.principal,
    );
    const server = new Server(SERVER_INFO, {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
      instructions: INSTRUCTIONS,
      jsonSchemaValidator: passThroughValidator,
    });
    const backends = () => {
      this.#backends ??= new Backends(
        fetchBridge,
        server.getClientCapabilities(),
        relayHooks(server, {
          inFlight: this.#inFlight,
          db: this.#db,
          key: { principal: info.caller.principal, sessionId: info.sessionId },
          recordsBackends: () => this.#meta?.kind === "streamable",
        }),
      );
      return this.#backends;
    };
    this.#backendsOf = backends;
    const deps = {
      audit: this.#audit,
      auditKey: keys.audit,
      backends,
      liveTools: (s: ServerId) => backends().tools(s),
      execute: (s: ServerId, _principal: string, message: unknown) => executeOnBridge(fetchBridge, s, message),
      inFlight: {
        begin: (s: ServerId, id: string | number) => this.#inFlight.set(s, [...(this.#inFlight.get(s) ?? []), id]),
        end: (s: ServerId, id: string | number) =>
          this.#inFlight.set(
            s,
            (this.#inFlight.get(s) ?? []).filter((x) => x !== id),
          ),
      },
    };
    // Issue 17: a client that takes URL-mode elicitation is asked to connect a missing account mid-call.
    const elicitation = connectElicitationOf(this.env);
    const beforeSend: ToolDeps["beforeSend"] = async (s, extra) =>
      elicitation && server.getClientCapabilities()?.elicitation?.url
        ? askForConnection(elicitation, this.#db, contextOf(extra).caller.principal, s, {
            elicit: (params, options) =>
              extra.sendRequest({ method: "elicitation/create", params }, ElicitResultSchema, options),
            complete: (elicitationId) =>
              extra.sendNotification({ method: "notifications/elicitation/complete", params: { elicitationId } }),
            signal: extra.signal,
          })
        : null;
    registerToolHandlers(server, { ...deps, beforeSend });
    registerContentHandlers(server, deps);
    server.setNotificationHandler(RootsListChangedNotificationSchema, async () => backends().rootsChanged());
    server.onclose = () => void this.#end();
    this.#server = server;

    const transport =
      kind === "streamable"
        ? new WebStandardStreamableHTTPServerTransport({
            sessionIdGenerator: () => info.sessionId,
            onsessionclosed: () => void this.#end(),
          })
        : new WebSseServerTransport(info.sessionId, `/sse/message?sessionId=${encodeURIComponent(info.sessionId)}`);
    await server.connect(transport);
    return transport;
  }

  async #remember(meta: SessionMeta): Promise<void> {
    this.#meta = meta;
    await this.ctx.storage.put("meta", meta);
    await this.ctx.storage.setAlarm(meta.createdAtMs + SESSION_MAX_AGE_MS);
    await recordSessionMeta(this.#db, meta);
  }

  /** Ends the session: its D1 records, backend sessions closed, state deleted. Later requests get 404. */
  #end(): Promise<void> {
    this.#ending ??= this.#endOnce().finally(() => {
      this.#ending = null;
    });
    return this.#ending;
  }

  async #endOnce(): Promise<void> {
    const meta = this.#meta ?? (await this.ctx.storage.get<SessionMeta>("meta")) ?? null;
    if (meta) {
      await forgetSession(this.#db, { principal: meta.principal, sessionId: meta.sessionId }).catch((error: unknown) =>
        console.error(JSON.stringify({ event: "session_forget_failed", error: String(error) })),
      );
    }
    const backends = this.#backends;
    const server = this.#server;
    this.#backends = null;
    this.#backendsOf = null;
    this.#server = null;
    this.#transport = null;
    this.#meta = null;
    await backends?.closeAll();
    if (server) {
      server.onclose = undefined;
      await server.close().catch(() => {});
    }
    await this.ctx.storage.deleteAll();
  }
}

/** The Worker refuses every request while the configuration is invalid, so this only fails on a bug. */
function gatewaySettingsOf(env: SessionEnv): GatewaySettings {
  const parsed = parseConfig(env);
  if (!parsed.ok)
    throw new HttpError(503, "The gateway is not configured correctly.", { rpcCode: ErrorCode.InternalError });
  return parsed.config.gateway;
}

function sessionNotFound(): HttpError {
  return new HttpError(404, "Session not found: start a new session with initialize.", {
    rpcCode: ErrorCode.ConnectionClosed,
  });
}

/** Whether a JSON-RPC body (one message or a batch) holds a request: a message with both a method and an id. */
function carriesRequest(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => typeof m !== "object" || m === null || ("method" in m && "id" in m));
}
