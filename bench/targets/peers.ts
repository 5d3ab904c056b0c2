import path from "node:path";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { listening, type Started, startAndWait } from "./managed.ts";
import {
  httpSession,
  killGroup,
  perRequestSignalFetch,
  REPO_ROOT,
  SERVERS,
  type ServerName,
  serverArgv,
  type Target,
} from "./target.ts";

/**
 * The peer bridges, each fronting the same two stdio servers (one peer process per server), in the modes
 * the research note measured: supergateway stateful Streamable HTTP, mcp-proxy `--server stream`.
 */

/** supergateway has no host option; this preload makes its `listen(port)` bind 127.0.0.1 only. */
const LOOPBACK_ONLY = path.join(REPO_ROOT, "bench/targets/loopback-only.ts");

async function peerTarget(
  name: "supergateway" | "mcp-proxy",
  ports: Record<ServerName, number>,
  memoryFile: string,
  argsFor: (server: ServerName, port: number) => string[],
): Promise<Target> {
  const started: Partial<Record<ServerName, Started>> = {};
  try {
    for (const server of SERVERS) {
      started[server] = await startAndWait(
        `${name}-${server}`,
        ports[server],
        argsFor(server, ports[server]),
        { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", MEMORY_FILE_PATH: memoryFile },
        listening(`http://127.0.0.1:${ports[server]}/mcp`),
      );
    }
  } catch (error) {
    await Promise.all(Object.values(started).map((s) => s.stop()));
    throw error;
  }
  return {
    name,
    servingRoots: () => Object.values(started).map((s) => s.pid),
    connect: (server) =>
      httpSession(
        new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${ports[server]}/mcp`), {
          fetch: perRequestSignalFetch(),
        }),
      ),
    tool: (_server, tool) => tool,
    async stop() {
      await Promise.all(Object.values(started).map((s) => s.stop()));
    },
    killNow() {
      for (const s of Object.values(started)) killGroup(s.pid);
    },
  };
}

export function supergatewayTarget(ports: Record<ServerName, number>, memoryFile: string): Promise<Target> {
  const bin = path.join(REPO_ROOT, "node_modules/supergateway/dist/index.js");
  return peerTarget("supergateway", ports, memoryFile, (server, port) => [
    "--import",
    LOOPBACK_ONLY,
    bin,
    "--stdio",
    [process.execPath, ...serverArgv(server)].join(" "),
    "--outputTransport",
    "streamableHttp",
    "--stateful",
    "--port",
    String(port),
    "--logLevel",
    "none",
  ]);
}

export function mcpProxyTarget(ports: Record<ServerName, number>, memoryFile: string): Promise<Target> {
  const bin = path.join(REPO_ROOT, "node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs");
  return peerTarget("mcp-proxy", ports, memoryFile, (server, port) => [
    bin,
    "--server",
    "stream",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--",
    process.execPath,
    ...serverArgv(server),
  ]);
}
