// Usage: npm start   (settings: HATAGO_HOST, HATAGO_PORT, HATAGO_BRIDGE_PORT, HATAGO_INSPECTOR_PORT, HATAGO_STATE_DIR)
// Runs the whole gateway on this machine with mock login. Ctrl-C stops everything it started.
import path from "node:path";
import { type LocalStack, localStackOptionsFromEnv, startLocalStack } from "./lib/local-stack.ts";

const quiet = new Set(["migrations", "seed"]);
/**
 * workerd's own notes that say nothing to the person running the stack: its V8 bootstrap cache is rebuilt
 * when the Node it runs beside differs from the one it was built with (a "WARNING" three times per start).
 */
const runtimeNoise = /NOSENTRY per-isolate bootstrap compile cache/;
const log = (source: string, line: string) => {
  if (quiet.has(source) && !/error|✘/i.test(line)) return;
  if (runtimeNoise.test(line)) return;
  if (line.trim()) process.stdout.write(`[${source}] ${line}\n`);
};

let stack: LocalStack | null = null;
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    process.stdout.write("\nStopping…\n");
    await stack?.stop();
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

const options = localStackOptionsFromEnv(process.env, log);
try {
  stack = await startLocalStack(options);
} catch (error) {
  process.stderr.write(`\nnpm start: ${error instanceof Error ? error.message : String(error)}\n`);
  await shutdown(1);
}
const { url, mcpUrl, failed } = stack as LocalStack;
// A dying bridge is restarted by the stack itself; a dying Worker ends the run, with nothing left behind.
void failed.then(async (reason) => {
  process.stderr.write(`\nnpm start: ${reason}; stopping everything.\n`);
  await shutdown(1);
});
const stateDir = path.relative(process.cwd(), options.stateDir) || ".";
const shownStateDir = stateDir.startsWith("..") ? options.stateDir : `${stateDir}/`;
process.stdout.write(`
Hatago Auth is running (local mode: mock login, dev policy).

  MCP endpoint:   ${mcpUrl}
  Legacy SSE:     ${url}/sse
  Metadata:       ${url}/.well-known/oauth-authorization-server
  Connections:    ${url}/connect   (a mock upstream "demo" account; whoami-upstream__whoami acts with it)

Connect a client:
  MCP Inspector:  npx @modelcontextprotocol/inspector   → Transport "Streamable HTTP", URL ${mcpUrl}
  mcp-remote:     npx mcp-remote ${mcpUrl}
  mcpServers:     { "mcpServers": { "hatago": { "url": "${mcpUrl}" } } }

Sign in as alice (admin), bob (writer), carol (reader), dave (no role), erin (staff group) or frank (on call).
Local data is kept in ${shownStateDir} between runs. Press Ctrl-C to stop.
`);
