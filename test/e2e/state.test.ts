// State that survives (issue 13): a per-user server's data directory outlives the bridge's death and the
// loss of its disk, because it is kept in the Worker's R2 (workerd's simulation, on disk under the state
// dir) and restored before the process starts. Ports 18600–18609: the stack on 18600–18602.
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const STACK_PORT = 18_600;
const STACK_TEST_TIMEOUT_MS = 150_000;

function textOf(result: unknown): string {
  const content = (result as { content?: { text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? "").join("\n");
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function healthy(url: string): Promise<boolean | undefined> {
  const response = await fetch(`${url}/health`).catch(() => null);
  await response?.body?.cancel();
  return response?.status === 200 ? true : undefined;
}

describe("a per-user server's state survives SIGKILL of the bridge, the loss of its disk, and a full restart", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | null = null;
  let logs: string[] = [];
  let bob: Connected | null = null;
  let carol: Connected | null = null;
  const entity = `bob-state-probe-${Date.now()}`;

  /** Bob's and carol's memory graphs, as each of them reads it through the whole gateway. */
  async function graphs() {
    if (!bob || !carol) throw new Error("not connected");
    return {
      bob: textOf(await bob.client.callTool({ name: "memory__read_graph", arguments: {} })),
      carol: textOf(await carol.client.callTool({ name: "memory__read_graph", arguments: {} })),
    };
  }

  beforeAll(async () => {
    state = await tempStateDir("state");
    ({ stack, logs } = await startStackIn(STACK_PORT, state.dir));
    bob = await connectAs(stack.url, "bob");
    carol = await connectAs(stack.url, "carol");
  }, STACK_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await bob?.client.close().catch(() => {});
    await carol?.client.close().catch(() => {});
    await stack?.stop();
    await state?.remove();
  });

  it("as bob, create an entity in memory; it is saved outside the bridge within seconds; carol cannot see it", async () => {
    if (!bob || !stack) throw new Error("the stack did not come up");
    const savedBefore = logs.filter((l) => l.includes('"state.saved"')).length;
    const created = await bob.client.callTool({
      name: "memory__create_entities",
      arguments: { entities: [{ name: entity, entityType: "probe", observations: ["bob's, saved outside"] }] },
    });
    expect(created.isError ?? false).toBe(false);
    // The quiet save: ~1 s after the last call in flight was answered.
    await until(
      "bob's directory to be saved",
      () =>
        logs.filter((l) => l.includes('"state.saved"') && l.includes('"memory#')).length > savedBefore
          ? true
          : undefined,
      15_000,
    );
    const seen = await graphs();
    expect(seen.bob).toContain(entity);
    expect(seen.carol).not.toContain(entity);
  }, 60_000);

  it("SIGKILL the bridge and delete its local data directory: the new bridge restores bob's entity, and carol still cannot see it", async () => {
    if (!stack) throw new Error("the stack did not come up");
    const bridge = stack.processes.find((p) => p.name === "bridge")?.child.pid;
    if (bridge === undefined) throw new Error("no bridge is running");
    process.kill(bridge, "SIGKILL");
    // The disk of a replaced container is empty: so is this one.
    const dataDir = path.join(state.dir, "bridge-data");
    await until(
      "the bridge to be gone",
      () => (stack?.processes.some((p) => p.name === "bridge" && p.child.pid === bridge) ? undefined : true),
      10_000,
    );
    await rm(dataDir, { recursive: true, force: true });
    await until(
      "a new bridge",
      () => stack?.processes.find((p) => p.name === "bridge" && p.child.pid !== bridge),
      30_000,
    );
    await until("/health 200", () => healthy(stack?.url ?? ""), 30_000);

    const seen = await graphs();
    expect(seen.bob).toContain(entity);
    expect(seen.bob).toContain("bob's, saved outside");
    expect(seen.carol).not.toContain(entity);
    expect(logs.some((l) => l.includes('"state.restored"') && !l.includes('"fresh":true'))).toBe(true);
  }, 90_000);

  it(
    "the same after a full stop and start of the stack (as `npm start` runs it), with the bridge's disk deleted again",
    async () => {
      await bob?.client.close().catch(() => {});
      await carol?.client.close().catch(() => {});
      const bobProvider = bob?.provider;
      const carolProvider = carol?.provider;
      bob = null;
      carol = null;
      await stack?.stop();
      stack = null;
      await rm(path.join(state.dir, "bridge-data"), { recursive: true, force: true });

      ({ stack, logs } = await startStackIn(STACK_PORT, state.dir));
      bob = await connectAs(stack.url, "bob", bobProvider ? { provider: bobProvider } : {});
      carol = await connectAs(stack.url, "carol", carolProvider ? { provider: carolProvider } : {});
      const seen = await graphs();
      expect(seen.bob).toContain(entity);
      expect(seen.carol).not.toContain(entity);
    },
    STACK_TEST_TIMEOUT_MS,
  );
});
