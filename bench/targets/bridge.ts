import { randomBytes } from "node:crypto";
import path from "node:path";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  BRIDGE_CREDENTIAL_HEADER,
  bridgeMcpPath,
  importBridgeKey,
  MCP_SESSION_HEADER,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { BRIDGE_ENTRY } from "../../container/src/entry.ts";
import { healthy, startAndWait } from "./managed.ts";
import { httpSession, killGroup, perRequestSignalFetch, REPO_ROOT, type ServerName, type Target } from "./target.ts";

/**
 * Our bridge alone, over Streamable HTTP, started as the image starts it (BRIDGE_ENTRY). The client does
 * what the Worker does: a fresh single-use credential per request, naming principal, server and session.
 */
export async function bridgeTarget(port: number, dataDir: string, nodeArgs: readonly string[] = []): Promise<Target> {
  const secret = randomBytes(32).toString("base64url");
  const base = `http://127.0.0.1:${port}`;
  const started = await startAndWait(
    "bridge",
    port,
    [...nodeArgs, path.join(REPO_ROOT, BRIDGE_ENTRY)],
    {
      PATH: process.env.PATH ?? "",
      HATAGO_BRIDGE_SECRET: secret,
      HOST: "127.0.0.1",
      PORT: String(port),
      HATAGO_BRIDGE_DATA_DIR: dataDir,
      HATAGO_BRIDGE_STOP_GRACE_MS: "1000",
    },
    healthy(`${base}/health`),
  );
  const key = await importBridgeKey(secret);
  const quietFetch = perRequestSignalFetch();
  return {
    name: "bridge",
    servingRoots: () => [started.pid],
    connect(server: ServerName, principal: string) {
      const credentialFetch: typeof fetch = async (input, init) => {
        const headers = new Headers(init?.headers);
        const sessionId = headers.get(MCP_SESSION_HEADER) ?? undefined;
        headers.set(
          BRIDGE_CREDENTIAL_HEADER,
          await mintBridgeCredential(key, { principal, server, use: "mcp", ...(sessionId ? { sessionId } : {}) }),
        );
        return quietFetch(input, { ...init, headers });
      };
      return httpSession(
        new StreamableHTTPClientTransport(new URL(`${base}${bridgeMcpPath(server)}`), { fetch: credentialFetch }),
      );
    },
    tool: (_server, tool) => tool,
    stop: () => started.stop(),
    killNow: () => killGroup(started.pid),
  };
}
