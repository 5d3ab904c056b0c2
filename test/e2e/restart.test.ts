// The local stack across a stop and a start (issue 5): `npm start` keeps local data between runs, and
// stopping leaves no process behind. Ports 18530–18539: the stack on 18530–18532, the `npm start` run on
// 18533–18535, the port-in-use run on 18536–18538.
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import { type NpmStartRun, spawnNpmStart } from "./helpers/npm-start.ts";
import type { DemoOAuthProvider } from "./helpers/oauth-flow.ts";
import { getWithToken } from "./helpers/oauth-http.ts";
import { type ProcessIdentity, processFamily, stillRunning } from "./helpers/process-tree.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const STACK_PORT = 18_530;
const NPM_START_PORT = 18_533;
const TAKEN_PORT = 18_536;
/** A stack start (migrations, seed, bridge, wrangler dev) takes 6–10 s here; the first after install far more. */
const STACK_TEST_TIMEOUT_MS = 150_000;

const AuditRow = z.object({
  id: z.number(),
  principal: z.string(),
  action: z.string(),
  server: z.string().nullable(),
  tool: z.string().nullable(),
  decision: z.string(),
  outcome: z.string().nullable(),
});
const AuditPage = z.object({ rows: z.array(AuditRow) });
const TextResult = z.object({ content: z.array(z.object({ type: z.string(), text: z.string().optional() })) });

/** The stdio server processes the bridge reports spawning (its JSON log line `child.spawned`). */
function spawnedChildPids(logs: readonly string[]): number[] {
  const pids: number[] = [];
  for (const line of logs) {
    if (!line.startsWith("[bridge] ") || !line.includes('"child.spawned"')) continue;
    let event: unknown;
    try {
      event = JSON.parse(line.slice("[bridge] ".length));
    } catch {
      continue; // not one of the bridge's JSON log lines
    }
    const parsed = z.object({ pid: z.number() }).safeParse(event);
    if (parsed.success) pids.push(parsed.data.pid);
  }
  return pids;
}

function textOf(result: unknown): string {
  return TextResult.parse(result)
    .content.map((c) => c.text ?? "")
    .join("\n");
}

/**
 * alice's audit rows through the admin API. Rows reach D1 from her ledger just after the answers
 * (worker/audit/ledger.ts): this asks again, for up to 5 s, until `ready` holds for them.
 */
async function auditRows(
  stack: LocalStack,
  token: string,
  ready: (rows: z.infer<typeof AuditRow>[]) => boolean = () => true,
) {
  const until = Date.now() + 5_000;
  for (;;) {
    const res = await getWithToken(`${stack.url}/admin/audit?principal=mock:alice&limit=500`, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const rows = AuditPage.parse(res.body).rows;
    if (ready(rows) || Date.now() > until) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("local data survives a restart; stop leaves no process behind (issue 5)", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | null = null;
  let logs: string[] = [];
  let alice: Connected | null = null;
  const entity = `restart-probe-${Date.now()}`;
  let echoRowId = 0;
  let firstRunToken = "";
  let firstRunProvider: DemoOAuthProvider | undefined;
  let family: ProcessIdentity[] = [];

  beforeAll(async () => {
    state = await tempStateDir("restart");
  });
  afterAll(async () => {
    await alice?.client.close().catch(() => {});
    await stack?.stop();
    // Whatever a failed stop left behind goes too; the assertion above has already reported it.
    for (const orphan of stillRunning(family)) process.kill(orphan.pid, "SIGKILL");
    await state?.remove();
  });

  it(
    "first run: alice's tool call and memory write are recorded in the audit log",
    async () => {
      ({ stack, logs } = await startStackIn(STACK_PORT, state.dir));
      alice = await connectAs(stack.url, "alice");

      const echo = await alice.client.callTool({ name: "everything__echo", arguments: { message: "before restart" } });
      expect(textOf(echo)).toContain("before restart");
      const created = await alice.client.callTool({
        name: "memory__create_entities",
        arguments: { entities: [{ name: entity, entityType: "probe", observations: ["written before the restart"] }] },
      });
      expect(created.isError ?? false).toBe(false);

      const rows = await auditRows(
        stack,
        alice.token(),
        (r) => r.some((x) => x.tool === "echo") && r.some((x) => x.tool === "create_entities"),
      );
      const echoRow = rows.find((r) => r.action === "tools/call" && r.server === "everything" && r.tool === "echo");
      expect(echoRow).toMatchObject({ principal: "mock:alice", decision: "allow", outcome: "ok" });
      expect(rows.some((r) => r.server === "memory" && r.tool === "create_entities" && r.outcome === "ok")).toBe(true);
      echoRowId = echoRow?.id ?? 0;
      firstRunToken = alice.token();
      firstRunProvider = alice.provider;
    },
    STACK_TEST_TIMEOUT_MS,
  );

  it("stop() ends every process the stack started: wrangler, workerd, the bridge and its stdio servers", async () => {
    if (!stack || !alice) throw new Error("the first run did not come up");
    await alice.client.close();
    alice = null;
    // Snapshot the whole family while it is still a family: after stop, orphans would belong to init.
    const leaders = stack.processes.map((p) => p.child.pid).filter((pid) => pid !== undefined);
    family = processFamily(leaders);
    const pids = new Set(family.map((p) => p.pid));
    // The snapshot is worth something only if it holds the deep descendants too.
    expect(family.some((p) => p.command === "workerd")).toBe(true);
    const stdioServers = spawnedChildPids(logs);
    expect(stdioServers.length).toBeGreaterThanOrEqual(2); // everything (shared) and alice's memory
    for (const pid of stdioServers) expect(pids.has(pid)).toBe(true);

    await stack.stop();
    stack = null;
    expect(stillRunning(family)).toEqual([]);
  });

  it(
    "second start on the same state dir: the audit row, alice's sign-in and her memory entity are still there",
    async () => {
      if (echoRowId === 0) throw new Error("the first run did not record its audit row");
      const oldToken = firstRunToken;
      ({ stack, logs } = await startStackIn(STACK_PORT, state.dir));

      // OAuth grants live in the persisted KV, so the token issued before the restart still works.
      const whoami = await getWithToken(`${stack.url}/api/whoami`, oldToken);
      expect(whoami.status).toBe(200);
      expect(whoami.body).toMatchObject({ principal: "mock:alice" });

      const rows = await auditRows(stack, oldToken);
      expect(rows.find((r) => r.id === echoRowId)).toMatchObject({ server: "everything", tool: "echo" });

      // Alice's MCP client reconnects with the same provider and is not asked to sign in again (a new sign-in
      // would have given it a new token); the bridge reads her memory graph from its data directory.
      alice = await connectAs(stack.url, "alice", { provider: firstRunProvider });
      expect(alice.token()).toBe(oldToken);
      const graph = textOf(await alice.client.callTool({ name: "memory__read_graph", arguments: {} }));
      expect(graph).toContain(entity);
      expect(graph).toContain("written before the restart");
    },
    STACK_TEST_TIMEOUT_MS,
  );
});

/** The settings a person would pass to `npm start`, on ports `base`, `base + 1`, `base + 2`. */
function startSettings(base: number, stateDir: string): Record<string, string> {
  return {
    HATAGO_HOST: "127.0.0.1",
    HATAGO_PORT: String(base),
    HATAGO_BRIDGE_PORT: String(base + 1),
    HATAGO_INSPECTOR_PORT: String(base + 2),
    HATAGO_STATE_DIR: stateDir,
  };
}

/** A line of a JavaScript stack trace, as Node prints it. */
const STACK_FRAME = /^\s+at .+[:(]/m;

describe("npm start as a person runs it (scripts/start.ts)", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  beforeAll(async () => {
    state = await tempStateDir("npm-start");
  });
  afterAll(async () => {
    await state?.remove();
  });

  /** Starts `npm start`, waits for the printed MCP URL, checks it answers, then sends `stop` and checks the aftermath. */
  async function runUntil(stop: (run: NpmStartRun) => void): Promise<void> {
    const run = spawnNpmStart(startSettings(NPM_START_PORT, state.dir));
    let family: ProcessIdentity[] = [];
    try {
      const [, mcpUrl] = await run.waitForOutput(/MCP endpoint:\s+(\S+)/, STACK_TEST_TIMEOUT_MS - 30_000);
      expect(mcpUrl).toBe(`http://127.0.0.1:${NPM_START_PORT}/mcp`);
      expect(run.output()).toContain("Press Ctrl-C to stop");
      // The printed URL is live: an MCP request without a token is asked to sign in (RFC 9728 §5.1).
      const res = await fetch(mcpUrl ?? "", { method: "POST", headers: { "content-type": "application/json" } });
      await res.body?.cancel();
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("resource_metadata=");

      family = processFamily(run.child.pid === undefined ? [] : [run.child.pid]);
      expect(family.some((p) => p.command === "workerd")).toBe(true);
      stop(run);
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(stillRunning(family)).toEqual([]);
      expect(run.output()).not.toMatch(STACK_FRAME);
    } finally {
      await run.forceStop(family);
    }
  }

  it(
    "prints the MCP URL, serves it, and Ctrl-C (SIGINT to its process group) stops everything with exit code 0",
    () => runUntil((run) => run.interrupt()),
    STACK_TEST_TIMEOUT_MS,
  );

  it(
    "a second start on the same local data works, and SIGTERM stops it as cleanly",
    () => runUntil((run) => run.child.kill("SIGTERM")),
    STACK_TEST_TIMEOUT_MS,
  );

  it("a port already in use: a clear message naming the port and the setting, exit code 1, no stack trace", async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(TAKEN_PORT, "127.0.0.1", resolve));
    const run = spawnNpmStart(startSettings(TAKEN_PORT, state.dir));
    try {
      expect(await run.exited).toEqual({ code: 1, signal: null });
      expect(run.stderr()).toContain(`port ${TAKEN_PORT} on 127.0.0.1 is already in use`);
      expect(run.stderr()).toContain("HATAGO_PORT=<port>");
      expect(run.output()).not.toMatch(STACK_FRAME);
    } finally {
      await run.forceStop();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
