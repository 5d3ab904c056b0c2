// The local stack notices when a part of it dies (issue 19). Ports 18580–18589: the stack on 18580–18582,
// the `npm start` run on 18583–18585.
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CONSECUTIVE_RESTARTS } from "../../scripts/lib/supervise.ts";
import { CRASH_MARKER } from "./fixtures/crash-marker.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { spawnNpmStart } from "./helpers/npm-start.ts";
import { type ProcessIdentity, processFamily, stillRunning } from "./helpers/process-tree.ts";
import { startTestStack, type TestStack, tempStateDir } from "./helpers/test-stack.ts";

const STACK_PORT = 18_580;
const NPM_START_PORT = 18_583;
const STACK_TEST_TIMEOUT_MS = 150_000;

async function healthStatus(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/health`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls until `accept` holds for /health's answer, or fails with the last answer. */
async function healthUntil(
  url: string,
  accept: (status: number) => boolean,
  timeoutMs: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  let last = await healthStatus(url);
  while (!accept(last.status)) {
    if (Date.now() > deadline) throw new Error(`/health stayed ${last.status}: ${JSON.stringify(last.body)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await healthStatus(url);
  }
  return last;
}

async function outputUntil(stack: TestStack, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = stack.output.find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${stack.output.slice(-30).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function textOf(result: unknown): string {
  const content = (result as { content?: { text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? "").join("\n");
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

function bridgePid(stack: TestStack): number {
  const pid = stack.processes.find((p) => p.name === "bridge")?.child.pid;
  if (pid === undefined) throw new Error("no bridge process is running");
  return pid;
}

describe("npm start supervises the bridge, as the platform restarts a container", () => {
  let stack: TestStack;
  let alice: Connected;
  beforeAll(async () => {
    stack = await startTestStack(STACK_PORT, { bridgeEntry: path.resolve("test/e2e/fixtures/crashing-bridge.ts") });
    alice = await connectAs(stack.url, "alice");
  }, STACK_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await alice?.client.close().catch(() => {});
    await stack?.dispose();
  });

  it("/health is 200 only when the bridge answers, and reports its servers", async () => {
    const { status, body } = await healthStatus(stack.url);
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, parts: { bridge: { ok: true }, database: { ok: true } } });
    expect(JSON.stringify(body)).not.toContain("pid");
  });

  it("SIGKILL of the bridge: one line says what died and why, /health is 503 while it is down, then a new bridge answers and alice's data is still there", async () => {
    const entity = `supervised-${Date.now()}`;
    await alice.client.callTool({
      name: "memory__create_entities",
      arguments: { entities: [{ name: entity, entityType: "test", observations: ["written before the crash"] }] },
    });
    const before = bridgePid(stack);
    process.kill(before, "SIGKILL"); // the bridge alone, as the OOM killer would
    const down = await healthUntil(stack.url, (s) => s === 503, 5_000);
    expect(down.body).toMatchObject({ ok: false, down: ["bridge"] });
    expect(await outputUntil(stack, /bridge died \(killed by SIGKILL\).*restarting in/, 5_000)).toContain(
      "attempt 1 of",
    );
    await outputUntil(stack, /bridge restarted \(pid \d+\) and is ready/, 20_000);
    await healthUntil(stack.url, (s) => s === 200, 20_000);
    expect(bridgePid(stack)).not.toBe(before);

    const graph = textOf(await alice.client.callTool({ name: "memory__read_graph", arguments: {} }));
    expect(graph).toContain(entity);
    const echo = textOf(await alice.client.callTool({ name: "everything__echo", arguments: { message: "back" } }));
    expect(echo).toContain("back");
  }, 60_000);

  it(`a bridge that dies at every start is given up on after ${MAX_CONSECUTIVE_RESTARTS} attempts with a clear line; the Worker stays up and answers 503`, async () => {
    await writeFile(path.join(stack.stateDir, CRASH_MARKER), "");
    process.kill(bridgePid(stack), "SIGKILL");
    const line = await outputUntil(stack, /giving up/, 45_000);
    expect(line).toContain(`failed to start ${MAX_CONSECUTIVE_RESTARTS} times in a row`);
    expect(line).toContain("exit code 3");
    expect(stack.output.filter((l) => /bridge died .*restarting in/.test(l))).toHaveLength(
      MAX_CONSECUTIVE_RESTARTS + 1,
    );
    const health = await healthStatus(stack.url);
    expect(health.status).toBe(503);
    const error = await callError(alice.client, "everything__echo", { message: "x" });
    expect(error?.message).toContain('The "everything" server is not available right now');
  }, 60_000);
});

describe("npm start ends when wrangler dies, with nothing left behind", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  beforeAll(async () => {
    state = await tempStateDir("supervision");
  });
  afterAll(async () => {
    await state?.remove();
  });

  it(
    "the banner names the real state directory; SIGKILL of wrangler: a line saying so, a non-zero exit, no process left",
    async () => {
      const run = spawnNpmStart({
        HATAGO_HOST: "127.0.0.1",
        HATAGO_PORT: String(NPM_START_PORT),
        HATAGO_BRIDGE_PORT: String(NPM_START_PORT + 1),
        HATAGO_INSPECTOR_PORT: String(NPM_START_PORT + 2),
        HATAGO_STATE_DIR: state.dir,
      });
      let family: ProcessIdentity[] = [];
      try {
        await run.waitForOutput(/MCP endpoint:/, STACK_TEST_TIMEOUT_MS - 30_000);
        expect(run.output()).toContain(`Local data is kept in ${state.dir}`);
        expect(run.output()).not.toContain("Local data is kept in .hatago/");
        family = processFamily(run.child.pid === undefined ? [] : [run.child.pid]);
        const wrangler = family.find((p) => {
          const argv = cmdline(p.pid);
          return argv.some((a) => a.endsWith("wrangler.js")) && argv.includes("dev");
        });
        if (!wrangler) throw new Error(`no wrangler in ${JSON.stringify(family)}`);
        process.kill(wrangler.pid, "SIGKILL");
        const exit = await run.exited;
        expect(exit.code).not.toBe(0);
        expect(exit.code).not.toBeNull();
        expect(run.stderr()).toMatch(/the Worker \(wrangler dev\) exited unexpectedly \(killed by SIGKILL\)/);
        expect(stillRunning(family)).toEqual([]);
      } finally {
        await run.forceStop(family);
      }
    },
    STACK_TEST_TIMEOUT_MS,
  );
});
