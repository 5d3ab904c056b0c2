import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { killGroup, newClient, REPO_ROOT, type ServerName, type Session, serverArgv, type Target } from "./target.ts";

/** The floor: the SDK client talking stdio to a server process of its own (one process per session). */
export function directTarget(memoryFile: string): Target {
  const open = new Set<StdioClientTransport>();
  return {
    name: "direct",
    servingRoots: () => [...open].flatMap((t) => (t.pid === null ? [] : [t.pid])),
    async connect(server: ServerName): Promise<Session> {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: serverArgv(server),
        env: { ...getDefaultEnvironment(), MEMORY_FILE_PATH: memoryFile },
        cwd: REPO_ROOT,
        stderr: "ignore",
      });
      const client = newClient();
      await client.connect(transport);
      open.add(transport);
      return {
        client,
        async close() {
          open.delete(transport);
          await client.close();
        },
      };
    },
    tool: (_server, tool) => tool,
    async stop() {
      await Promise.all([...open].map((t) => t.close()));
      open.clear();
    },
    killNow() {
      // The SDK spawns these as plain children (no group of their own).
      for (const t of open) killGroup(t.pid ?? undefined, false);
    },
  };
}
