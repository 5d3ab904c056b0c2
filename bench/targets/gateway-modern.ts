import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
  UnauthorizedError as ModernUnauthorized,
  ProtocolError,
  SdkHttpError,
} from "@modelcontextprotocol/client";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { DemoOAuthProvider } from "../../test/e2e/helpers/oauth-flow.ts";
import { type GatewayOptions, type GatewayPorts, type GatewayTarget, startGatewayStack } from "./gateway.ts";
import { type BenchClient, killGroup, perRequestSignalFetch, type ServerName, type Session } from "./target.ts";

/**
 * The same local product as the `gateway` target, reached by the MCP 2026-07-28 client
 * (@modelcontextprotocol/client 2.4) on the same `/mcp`: stateless requests, no session on the server, each
 * tools/call one POST that the Worker authorizes on its own and sends to the server's container on the
 * bridge's `/execute` (worker/mcp/modern/). Same person (alice), same tools, same checks of every answer.
 *
 * A "session" here is one client: connecting it is the client's `server/discover` probe
 * (`versionNegotiation: auto`, what a dual-era client does), and it must come out modern: a client that
 * fell back to `initialize` would measure the legacy path under this target's name.
 */
export async function gatewayModernTarget(
  ports: GatewayPorts,
  stateDir: string,
  options: GatewayOptions = {},
): Promise<GatewayTarget> {
  const stack = await startGatewayStack(ports, stateDir, options);
  try {
    return await modernClientsOn(stack, { ownsStack: true });
  } catch (error) {
    await stack.stop();
    throw error;
  }
}

/**
 * Modern clients of a running local stack (signed in through the full OAuth flow, by the modern client
 * itself). `ownsStack: false` (the cost count's metered stack, which another target owns): stopping this
 * target leaves the stack running.
 */
export async function modernClientsOn(
  stack: LocalStack,
  { ownsStack }: { ownsStack: boolean },
): Promise<GatewayTarget> {
  const provider = new DemoOAuthProvider("alice", "hatago bench (modern)");
  const url = new URL(stack.mcpUrl);
  const open = (): { client: ModernClient; transport: ModernTransport } => ({
    client: new ModernClient(
      { name: "hatago-bench-modern", version: "1.0.0" },
      { capabilities: {}, versionNegotiation: { mode: "auto" } },
    ),
    transport: new ModernTransport(url, { authProvider: provider, fetch: perRequestSignalFetch() }),
  });
  // The first connect walks the OAuth flow (registration, consent, mock login) and ends unauthorized; the
  // code is then exchanged for a token that every later client reuses.
  const first = open();
  try {
    await first.client.connect(first.transport);
  } catch (error) {
    if (!(error instanceof ModernUnauthorized) || !provider.code) throw error;
    // SDK 2.4 checks RFC 9207 `iss`: the helper keeps only the code, and our callback's `iss` is the issuer.
    await first.transport.finishAuth(provider.code, stack.url);
  }
  await first.client.close().catch(() => {});
  if (!provider.tokens()?.access_token) throw new Error("no access token after the OAuth flow");

  const connect = async (_server: ServerName): Promise<Session> => {
    const { client, transport } = open();
    await client.connect(transport);
    if (client.getProtocolEra() !== "modern") {
      await client.close().catch(() => {});
      throw new Error(`the modern client fell back to ${client.getProtocolEra()} (initialize): not the modern path`);
    }
    return { client: benchClient(client), close: () => client.close() };
  };
  return {
    name: "gateway-modern",
    stack,
    servingRoots: () => stack.processes.flatMap((p) => (p.child.pid === undefined ? [] : [p.child.pid])),
    connect,
    tool: (server, tool) => `${server}__${tool}`,
    stop: () => (ownsStack ? stack.stop() : Promise.resolve()),
    killNow() {
      if (!ownsStack) return;
      for (const p of stack.processes) killGroup(p.child.pid);
    },
  };
}

/**
 * The modern client behind the scenarios' interface. Its errors are given the legacy SDK's classes (an HTTP
 * status, a JSON-RPC code), so failed calls are counted by the same kinds on both gateway targets
 * (bench/measure/calls.ts).
 */
function benchClient(client: ModernClient): BenchClient {
  return {
    callTool: (params, _resultSchema, options) =>
      legacyErrors(() =>
        client.callTool(
          params.arguments === undefined ? { name: params.name } : { name: params.name, arguments: params.arguments },
          options?.timeout === undefined ? undefined : { timeout: options.timeout },
        ),
      ),
    listTools: () => legacyErrors(() => client.listTools()),
  };
}

async function legacyErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof SdkHttpError) throw new StreamableHTTPError(error.status, error.message);
    if (error instanceof ProtocolError) throw new McpError(error.code, error.message, error.data);
    throw error;
  }
}
