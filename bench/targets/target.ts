import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const TARGET_NAMES = ["direct", "bridge", "gateway", "gateway-modern", "supergateway", "mcp-proxy"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
/** The peers our bridge is compared with ("best peer" is the better of these, per metric). */
export const PEERS: readonly TargetName[] = ["supergateway", "mcp-proxy"];

/** The two stdio servers every target fronts. */
export type ServerName = "everything" | "memory";
export const SERVERS: readonly ServerName[] = ["everything", "memory"];

/**
 * What the scenarios ask of a session's client. The SDK 1.32 `Client` is one as it is; the 2026-07-28 client
 * (@modelcontextprotocol/client 2.4) is adapted to it (gateway-modern.ts), errors included.
 */
export interface BenchClient {
  callTool(
    params: { readonly name: string; readonly arguments?: Record<string, unknown> },
    resultSchema?: undefined,
    options?: { readonly timeout?: number },
  ): Promise<unknown>;
  listTools(): Promise<unknown>;
}

/**
 * One MCP session, open until `close()` (which also ends the session on the server where there is one). On
 * the stateless modern path a "session" is one client: the server keeps nothing of it.
 */
export interface Session {
  readonly client: BenchClient;
  close(): Promise<void>;
}

/** One way of reaching the stdio servers, with the processes that serve it. */
export interface Target {
  readonly name: TargetName;
  /** Roots of the serving process trees: memory and CPU are summed over these and their descendants. */
  servingRoots(): number[];
  /** A new session; `principal` names the user where the target has users (bridge: per-user processes). */
  connect(server: ServerName, principal: string): Promise<Session>;
  /** The tool's name as this target exposes it (the gateway prefixes the server). */
  tool(server: ServerName, tool: string): string;
  stop(): Promise<void>;
  /** Synchronous last resort when the bench process is exiting anyway: SIGKILL what this target started. */
  killNow(): void;
}

/** argv of a stdio server, run by this Node (22), never the system one. */
export function serverArgv(server: ServerName): string[] {
  const dist = (pkg: string) => path.join(REPO_ROOT, "node_modules/@modelcontextprotocol", pkg, "dist/index.js");
  return server === "everything" ? [dist("server-everything"), "stdio"] : [dist("server-memory")];
}

export function newClient(): Client {
  return new Client({ name: "hatago-bench", version: "1.0.0" });
}

/**
 * `fetch` for the SDK's HTTP transport, with a per-request signal tied to the transport's own. The
 * transport passes one long-lived signal to every request, and Node's fetch keeps an abort listener on
 * it per request until garbage collection: past 1,500 of them every call prints a warning, which would
 * bill the client's stderr writes to whichever target runs then. `AbortSignal.any` links without a listener.
 */
export function perRequestSignalFetch(base: typeof fetch = fetch): typeof fetch {
  return (input, init) => base(input, init?.signal ? { ...init, signal: AbortSignal.any([init.signal]) } : init);
}

/** Connects a client over Streamable HTTP; closing ends the server-side session (DELETE) first. */
export async function httpSession(transport: StreamableHTTPClientTransport, client = newClient()): Promise<Session> {
  await client.connect(transport);
  return {
    client,
    async close() {
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

/** SIGKILL a process group (what startManaged starts), or a single pid; gone already is fine. */
export function killGroup(pid: number | undefined, group = true): void {
  if (pid === undefined || pid <= 0) return;
  try {
    process.kill(group ? -pid : pid, "SIGKILL");
  } catch {
    // already gone
  }
}
