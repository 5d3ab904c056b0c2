import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const TARGET_NAMES = ["direct", "bridge", "gateway", "supergateway", "mcp-proxy"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
/** The peers our bridge is compared with ("best peer" is the better of these, per metric). */
export const PEERS: readonly TargetName[] = ["supergateway", "mcp-proxy"];

/** The two stdio servers every target fronts. */
export type ServerName = "everything" | "memory";
export const SERVERS: readonly ServerName[] = ["everything", "memory"];

/** One MCP session, open until `close()` (which also ends the session on the server where there is one). */
export interface Session {
  readonly client: Client;
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
}

/** argv of a stdio server, run by this Node (22), never the system one. */
export function serverArgv(server: ServerName): string[] {
  const dist = (pkg: string) => path.join(REPO_ROOT, "node_modules/@modelcontextprotocol", pkg, "dist/index.js");
  return server === "everything" ? [dist("server-everything"), "stdio"] : [dist("server-memory")];
}

export function newClient(): Client {
  return new Client({ name: "hatago-bench", version: "1.0.0" });
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
