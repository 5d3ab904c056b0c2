import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  type CallToolRequest,
  type ClientCapabilities,
  type CreateMessageRequest,
  CreateMessageRequestSchema,
  type CreateMessageResult,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  ListRootsRequestSchema,
  type ListRootsResult,
  type LoggingMessageNotification,
  LoggingMessageNotificationSchema,
  type Progress,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  type ServerCapabilities,
  type Tool,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { ServerId } from "../../policies/catalog.ts";
import { HttpError } from "../http/errors.ts";
import { passThroughValidator } from "./pass-through-validator.ts";

/** Sends one HTTP request to the bridge that hosts `server` (path is the bridge's, e.g. `/servers/memory/mcp`). */
export type BridgeFetch = (server: ServerId, path: string, init: RequestInit) => Promise<Response>;

/** What the session does with what a backend server sends on its own initiative. */
export interface BackendHooks {
  /** A bridge session was opened for `server` (the Worker may then send tool calls to it directly). */
  opened(server: ServerId, bridgeSessionId: string, protocolVersion: string): Promise<void>;
  toolsChanged(server: ServerId): void;
  resourcesChanged(server: ServerId): void;
  promptsChanged(server: ServerId): void;
  resourceUpdated(server: ServerId, uri: string): void;
  log(server: ServerId, params: LoggingMessageNotification["params"]): void;
  sampling(server: ServerId, params: CreateMessageRequest["params"], signal: AbortSignal): Promise<CreateMessageResult>;
  elicitation(server: ServerId, params: ElicitRequest["params"], signal: AbortSignal): Promise<ElicitResult>;
  roots(server: ServerId, signal: AbortSignal): Promise<ListRootsResult>;
}

/** A cold container can take a while to start; past this the caller gets a clear 503 instead of a hang. */
export const BRIDGE_CONNECT_TIMEOUT_MS = 20_000;
/** A tool call with no progress for this long is cancelled toward the server (progress resets it). */
export const TOOL_CALL_IDLE_TIMEOUT_MS = 120_000;
/** Hard cap for one tool call, progress or not (Workers keep a request alive while the client waits). */
export const TOOL_CALL_MAX_MS = 15 * 60_000;
/** Lists are fetched whole (the gateway merges servers); this bounds a server that pages forever. */
const MAX_LIST_PAGES = 50;

const GATEWAY_INFO = { name: "hatago-gateway", version: "0.1.0" } as const;

interface Connection {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  tools: Tool[] | null;
}

/**
 * The session's connections to the bridge, one MCP client per server, opened on first use. The bridge
 * sees one MCP session per (gateway session, server), so its own id remapping keeps users apart.
 */
export class Backends {
  readonly #connections = new Map<ServerId, Promise<Connection>>();
  readonly #fetch: BridgeFetch;
  readonly #capabilities: ClientCapabilities;
  readonly #hooks: BackendHooks;
  #loggingLevel: LoggingMessageNotification["params"]["level"] | null = null;

  constructor(fetchBridge: BridgeFetch, downstreamCapabilities: ClientCapabilities | undefined, hooks: BackendHooks) {
    this.#fetch = fetchBridge;
    this.#hooks = hooks;
    // Ask backends only for what the downstream client can actually answer.
    const caps: ClientCapabilities = {};
    if (downstreamCapabilities?.sampling) caps.sampling = downstreamCapabilities.sampling;
    if (downstreamCapabilities?.elicitation) caps.elicitation = downstreamCapabilities.elicitation;
    if (downstreamCapabilities?.roots) caps.roots = { listChanged: true };
    this.#capabilities = caps;
  }

  async connection(server: ServerId): Promise<Connection> {
    let pending = this.#connections.get(server);
    if (!pending) {
      pending = this.#connect(server);
      this.#connections.set(server, pending);
      // A failed connect is forgotten, so the next request tries again.
      pending.catch(() => this.#connections.delete(server));
    }
    return pending;
  }

  async #connect(server: ServerId): Promise<Connection> {
    const transport = new StreamableHTTPClientTransport(new URL(`http://bridge/servers/${server}/mcp`), {
      fetch: (url, init) => this.#fetch(server, pathOf(url), init ?? {}),
    });
    const client = new Client(GATEWAY_INFO, {
      capabilities: this.#capabilities,
      jsonSchemaValidator: passThroughValidator,
    });
    const connection: Connection = { client, transport, tools: null };
    const hooks = this.#hooks;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      connection.tools = null;
      hooks.toolsChanged(server);
    });
    client.setNotificationHandler(ResourceListChangedNotificationSchema, async () => hooks.resourcesChanged(server));
    client.setNotificationHandler(PromptListChangedNotificationSchema, async () => hooks.promptsChanged(server));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) =>
      hooks.resourceUpdated(server, n.params.uri),
    );
    client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => hooks.log(server, n.params));
    if (this.#capabilities.sampling) {
      client.setRequestHandler(CreateMessageRequestSchema, (req, extra) =>
        hooks.sampling(server, req.params, extra.signal),
      );
    }
    if (this.#capabilities.elicitation) {
      client.setRequestHandler(ElicitRequestSchema, (req, extra) =>
        hooks.elicitation(server, req.params, extra.signal),
      );
    }
    if (this.#capabilities.roots) {
      client.setRequestHandler(ListRootsRequestSchema, (_req, extra) => hooks.roots(server, extra.signal));
    }
    try {
      await client.connect(transport, { timeout: BRIDGE_CONNECT_TIMEOUT_MS });
    } catch (cause) {
      await client.close().catch(() => {});
      // A refusal that already says why (the container limit) keeps its own message and Retry-After.
      if (cause instanceof HttpError) throw cause;
      throw new HttpError(503, `The "${server}" server is not available right now; try again shortly.`, {
        rpcCode: ErrorCode.InternalError,
        cause,
        retryAfterSeconds: 10,
      });
    }
    if (this.#loggingLevel) await client.setLoggingLevel(this.#loggingLevel).catch(() => {});
    const bridgeSessionId = transport.sessionId;
    if (bridgeSessionId !== undefined) {
      await hooks.opened(server, bridgeSessionId, transport.protocolVersion ?? LATEST_PROTOCOL_VERSION);
    }
    return connection;
  }

  /** Capabilities the backend declared at initialize. */
  async capabilities(server: ServerId): Promise<ServerCapabilities> {
    return (await this.connection(server)).client.getServerCapabilities() ?? {};
  }

  async tools(server: ServerId): Promise<Tool[]> {
    const conn = await this.connection(server);
    if (conn.tools) return conn.tools;
    const tools: Tool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const result = await conn.client.listTools(cursor ? { cursor } : {});
      tools.push(...result.tools);
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    conn.tools = tools;
    return tools;
  }

  async callTool(
    server: ServerId,
    params: CallToolRequest["params"],
    options: { signal: AbortSignal; onprogress: ((p: Progress) => void) | undefined },
  ) {
    const call = async () => {
      const { client } = await this.connection(server);
      return client.callTool(params, undefined, {
        signal: options.signal,
        ...(options.onprogress ? { onprogress: options.onprogress } : {}),
        timeout: TOOL_CALL_IDLE_TIMEOUT_MS,
        resetTimeoutOnProgress: true,
        maxTotalTimeout: TOOL_CALL_MAX_MS,
      });
    };
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof StreamableHTTPError && error.code === 404)) throw error;
      // The bridge no longer knows this session (it idled out, or a new container started): open a new
      // one and send the call once more. A 404 means the bridge never took the call, so it cannot run twice.
      await this.#forget(server);
      return call();
    }
  }

  async #forget(server: ServerId): Promise<void> {
    const pending = this.#connections.get(server);
    this.#connections.delete(server);
    await pending?.then((c) => c.client.close()).catch(() => {});
  }

  /** The raw client, for the pass-through methods (resources, prompts, completion). */
  async client(server: ServerId): Promise<Client> {
    return (await this.connection(server)).client;
  }

  /** Applies the downstream client's logging level to every backend, now and on later connects. */
  async setLoggingLevel(level: LoggingMessageNotification["params"]["level"]): Promise<void> {
    this.#loggingLevel = level;
    await Promise.all(
      [...this.#connections.values()].map((p) =>
        p
          .then((c) => (c.client.getServerCapabilities()?.logging ? c.client.setLoggingLevel(level) : undefined))
          .catch(() => {}),
      ),
    );
  }

  async rootsChanged(): Promise<void> {
    await Promise.all(
      [...this.#connections.values()].map((p) => p.then((c) => c.client.sendRootsListChanged()).catch(() => {})),
    );
  }

  /** Ends every backend session (DELETE on the bridge) and closes the clients. */
  async closeAll(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(
      all.map((p) =>
        p
          .then(async (c) => {
            await c.transport.terminateSession().catch(() => {});
            await c.client.close();
          })
          .catch(() => {}),
      ),
    );
  }
}

function pathOf(url: string | URL): string {
  const u = typeof url === "string" ? new URL(url) : url;
  return `${u.pathname}${u.search}`;
}
