import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_ROUTES,
  type CredentialUse,
  EXECUTE_EVENTS,
  type ExecuteRequestBody,
  importBridgeKey,
  MCP_SESSION_HEADER,
  ReplayCache,
  verifyBridgeCredential,
} from "../../../container/src/contract.ts";

/**
 * FAKE: the bridge containers (`env.BRIDGE`, class BridgeContainer), for cost counts in workerd, where no
 * container can run (no Docker here; wrangler.jsonc disables containers). It stands where the Container
 * Durable Object namespace stands, so each request the Worker sends to a container is one `stub.fetch`,
 * counted by meter.ts exactly as the deployed hop would be (`do.bridge.fetch`).
 *
 * It speaks the bridge's contract (container/src/contract.ts) for the two routes a tool call uses, and
 * nothing else: `/execute` (the modern path; a modern call is answered as its event stream, as
 * container/src/execute.ts does, in two chunks cut inside the blank line that ends the event) and `/servers/<server>/mcp` on a bridge session it was told about (the
 * direct path, one JSON POST). Each request's credential is checked with the bridge's own verifier (right
 * server, use and session, single use), so a request the real bridge would refuse is refused here too. Its
 * one tool is `echo`, answered like the `everything` server's (`Echo: <message>`). The real bridge and
 * server are run by the e2e and bench stacks (test/e2e/direct-calls.test.ts, bench/targets/).
 */
export interface FakeBridge {
  readonly containers: DurableObjectNamespace;
  /** Every request it got, in order (a refused one too, with `refused` set). */
  readonly received: FakeBridgeRequest[];
  /** Makes a bridge session known, as the session object's `initialize` toward the bridge would. */
  openSession(bridgeSessionId: string): void;
}

export interface FakeBridgeRequest {
  /** The container the Worker addressed (worker/bridge/router.ts, containerName). */
  readonly container: string;
  readonly path: string;
  readonly use: CredentialUse;
  readonly principal: string | null;
  readonly bridgeSessionId: string | null;
  /** The JSON-RPC method sent to the server. */
  readonly method: string | null;
  readonly refused: string | null;
}

export async function fakeBridge(secret: string): Promise<FakeBridge> {
  const key = await importBridgeKey(secret);
  const replay = new ReplayCache(10_000);
  const sessions = new Set<string>();
  const received: FakeBridgeRequest[] = [];

  async function serve(container: string, request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const execute = path === BRIDGE_ROUTES.execute;
    const mcpServer = mcpServerOf(path);
    const body = (await request.json()) as Partial<ExecuteRequestBody> & Record<string, unknown>;
    const message = (execute ? body.message : body) as { id?: unknown; method?: unknown; params?: unknown } | undefined;
    const server = execute ? String(body.server) : (mcpServer ?? "");
    const use: CredentialUse = execute ? "execute" : "mcp";
    const sessionId = request.headers.get(MCP_SESSION_HEADER) ?? undefined;
    const verified = await verifyBridgeCredential(request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
      key,
      replay,
      server,
      use,
      sessionId,
    });
    const refusedFor = (reason: string | null) =>
      received.push({
        container,
        path,
        use,
        principal: verified.ok ? verified.claims.sub : null,
        bridgeSessionId: sessionId ?? null,
        method: typeof message?.method === "string" ? message.method : null,
        refused: reason,
      });
    if (!verified.ok) {
      refusedFor(verified.reason);
      return Response.json({ error: { code: verified.reason } }, { status: verified.status });
    }
    if (!execute && (mcpServer === null || sessionId === undefined || !sessions.has(sessionId))) {
      refusedFor("unknown_session");
      return Response.json({ error: { code: "session_not_found" } }, { status: 404 });
    }
    refusedFor(null);
    const reply = answer(message);
    const json = JSON.stringify(reply);
    if (execute && body.modern !== undefined) {
      // Two chunks, cut inside the event's closing blank line, as a network may cut it.
      const event = `event: ${EXECUTE_EVENTS.response}\ndata: ${json}\n\n`;
      const bytes = new TextEncoder().encode(event);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.slice(0, bytes.length - 1));
          controller.enqueue(bytes.slice(bytes.length - 1));
          controller.close();
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
    }
    return new Response(json, { headers: { "content-type": "application/json" } });
  }

  const containers = {
    idFromName: (name: string) => ({ name, toString: () => name, equals: () => false }),
    get: (id: { name: string }) => ({ fetch: (request: Request) => serve(id.name, request) }),
    getByName: (name: string) => ({ fetch: (request: Request) => serve(name, request) }),
  } as unknown as DurableObjectNamespace;

  return { containers, received, openSession: (id) => sessions.add(id) };
}

function mcpServerOf(path: string): string | null {
  const { mcpPrefix, mcpSuffix } = BRIDGE_ROUTES;
  if (!path.startsWith(mcpPrefix) || !path.endsWith(mcpSuffix)) return null;
  return path.slice(mcpPrefix.length, path.length - mcpSuffix.length) || null;
}

/** The answer of a server whose one tool is `echo` (as `everything` answers it). */
function answer(message: { id?: unknown; method?: unknown; params?: unknown } | undefined) {
  const id = message?.id ?? null;
  const params = (message?.params ?? {}) as { name?: unknown; arguments?: { message?: unknown } };
  if (message?.method !== "tools/call" || params.name !== "echo") {
    return { jsonrpc: "2.0", id, error: { code: -32601, message: "the fake bridge answers only tools/call echo" } };
  }
  return {
    jsonrpc: "2.0",
    id,
    result: { content: [{ type: "text", text: `Echo: ${String(params.arguments?.message)}` }] },
  };
}
