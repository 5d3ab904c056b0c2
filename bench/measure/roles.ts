/** What each process of the local stack is, from its command line (`workerPort`: the stack's public port). */
export function roleOf(command: string, workerPort: string): string {
  if (command.includes("/workerd")) {
    return command.includes(`entry=127.0.0.1:${workerPort}`) ? ROLES.proxy : ROLES.runtime;
  }
  if (command.includes("wrangler")) return "wrangler (Node)";
  if (command.includes("esbuild")) return "esbuild (wrangler's bundler)";
  if (command.includes("container/src/main.ts")) return ROLES.bridge;
  if (command.includes("server-everything")) return "everything (stdio server)";
  if (command.includes("server-memory")) return "memory (stdio server)";
  return command.slice(0, 60);
}

/** The processes that serve a gateway call (the rest are dev tooling and the stdio servers themselves). */
export const ROLES = {
  runtime: "workerd: the Worker, its Durable Objects, local D1 and KV",
  proxy: "workerd: wrangler's proxy in front of the Worker (local dev only)",
  bridge: "bridge (Node)",
} as const;
