import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type LocalStack, startLocalStack } from "../../scripts/lib/local-stack.ts";
import { DemoOAuthProvider } from "../../test/e2e/helpers/oauth-flow.ts";
import {
  httpSession,
  killGroup,
  newClient,
  perRequestSignalFetch,
  type ServerName,
  type Session,
  type Target,
} from "./target.ts";

export interface GatewayPorts {
  readonly worker: number;
  readonly bridge: number;
  readonly inspector: number;
}

/** The wrangler entry that wraps the product Worker with binding counters (for the cost count only). */
export const METERED_WORKER_ENTRY = "test/workers/metering/metered-worker.ts";

export interface GatewayTarget extends Target {
  readonly stack: LocalStack;
}

export interface GatewayOptions {
  readonly workerEntry?: string;
  readonly log?: (source: string, line: string) => void;
}

/** The whole local product as `npm start` runs it (shared by the `gateway` and `gateway-modern` targets). */
export function startGatewayStack(
  ports: GatewayPorts,
  stateDir: string,
  options: GatewayOptions = {},
): Promise<LocalStack> {
  return startLocalStack({
    host: "127.0.0.1",
    port: ports.worker,
    bridgePort: ports.bridge,
    inspectorPort: ports.inspector,
    stateDir,
    log: options.log ?? (() => {}),
    ...(options.workerEntry ? { workerEntry: options.workerEntry } : {}),
  });
}

/**
 * The whole local product as `npm start` runs it: D1 migrated and seeded with the dev policy, the bridge,
 * and the Worker in workerd (wrangler dev). Sessions carry a real OAuth access token (mock login as
 * alice, the dev policy's admin), so every call pays the token check, the D1 authorization read, the
 * audit write and the bridge hop.
 */
export async function gatewayTarget(
  ports: GatewayPorts,
  stateDir: string,
  options: GatewayOptions = {},
): Promise<GatewayTarget> {
  const stack = await startGatewayStack(ports, stateDir, options);
  const provider = new DemoOAuthProvider("alice", "hatago bench");
  const transport = () =>
    new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
      authProvider: provider,
      fetch: perRequestSignalFetch(),
    });
  try {
    // The first connect walks the OAuth flow (registration, consent, mock login) and ends unauthorized;
    // the code is then exchanged for a token that every later session reuses.
    const first = transport();
    try {
      await newClient().connect(first);
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !provider.code) throw error;
      await first.finishAuth(provider.code);
    }
    if (!provider.tokens()?.access_token) throw new Error("no access token after the OAuth flow");
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return {
    name: "gateway",
    stack,
    servingRoots: () => stack.processes.flatMap((p) => (p.child.pid === undefined ? [] : [p.child.pid])),
    connect: (_server: ServerName): Promise<Session> => httpSession(transport()),
    tool: (server, tool) => `${server}__${tool}`,
    stop: () => stack.stop(),
    killNow() {
      for (const p of stack.processes) killGroup(p.child.pid);
    },
  };
}
