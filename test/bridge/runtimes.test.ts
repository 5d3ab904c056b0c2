import { readFileSync } from "node:fs";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { secretVariable } from "../../container/src/secrets.ts";
import { type BridgeProcess, connect, startBridge } from "./harness.ts";

const textOf = (result: unknown) =>
  ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? "").join("\n");

/** The environment a process runs with, as the kernel holds it (the real thing, not what we meant to pass). */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

const DEMO_SECRET = "s3cret-value-for-everything-only-7f3a";

describe("any runtime: a Python server (standard library only) through the bridge", () => {
  let bridge: BridgeProcess;
  const clients: Client[] = [];
  const client = async (principal: string) => {
    const { client: c } = await connect(bridge, principal, "notes");
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    bridge = await startBridge({ [secretVariable("everything", "HATAGO_DEMO_SECRET")]: DEMO_SECRET });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await bridge?.stop();
  });

  it("lists and calls its tools", async () => {
    const bob = await client("github:bob");
    const tools = (await bob.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(["add_note", "crash", "list_notes"]);
    expect(textOf(await bob.callTool({ name: "add_note", arguments: { text: "from python" } }))).toBe("stored note 1");
    expect(textOf(await bob.callTool({ name: "list_notes", arguments: {} }))).toBe("1. from python");
  });

  it("per-user isolation: another principal has its own process and its own notes", async () => {
    const carol = await client("github:carol");
    expect(textOf(await carol.callTool({ name: "list_notes", arguments: {} }))).toBe("no notes yet");
    const pids = ((await bridge.health()).servers.notes?.children ?? []).map((c) => c.pid);
    expect(new Set(pids).size).toBe(2);
  });

  it("a crash is answered with an error, the process restarts, and the notes on disk are still there", async () => {
    const bob = await client("github:bob");
    await expect(bob.callTool({ name: "crash", arguments: {} })).rejects.toThrow();
    await bridge.waitForLog(
      (l) => l.event === "child.exited" && String(l.child ?? "").startsWith("notes#") && l.code === 3,
    );
    let listed = "";
    for (let attempt = 0; attempt < 50 && !listed.includes("from python"); attempt++) {
      try {
        listed = textOf(await bob.callTool({ name: "list_notes", arguments: {} }));
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(listed).toBe("1. from python");
  });

  it("a server's secret reaches its own process only (everything has it; memory and notes do not), and no log line", async () => {
    const { client: everything } = await connect(bridge, "github:alice", "everything");
    clients.push(everything);
    expect(textOf(await everything.callTool({ name: "get-env", arguments: {} }))).toContain(DEMO_SECRET);
    const { client: memory } = await connect(bridge, "github:alice", "memory");
    clients.push(memory);
    await memory.callTool({ name: "read_graph", arguments: {} });
    const health = await bridge.health();
    const pidsOf = (server: string) =>
      (health.servers[server]?.children ?? []).flatMap((c) => (c.pid === null ? [] : [c.pid]));
    for (const pid of pidsOf("everything")) expect(environOf(pid).HATAGO_DEMO_SECRET).toBe(DEMO_SECRET);
    for (const server of ["memory", "notes"]) {
      expect(pidsOf(server).length, `${server} runs`).toBeGreaterThan(0);
      for (const pid of pidsOf(server)) {
        const env = environOf(pid);
        expect(Object.values(env)).not.toContain(DEMO_SECRET);
        expect(Object.keys(env).filter((k) => k.startsWith("HATAGO_"))).toEqual([]);
      }
    }
    expect(JSON.stringify(bridge.logs)).not.toContain(DEMO_SECRET);
    expect(JSON.stringify(health)).not.toContain(DEMO_SECRET);
  });
});

describe("a server whose runtime is missing here is skipped with one line, never a crash", () => {
  let bridge: BridgeProcess;
  afterAll(async () => {
    await bridge?.stop();
  });

  it("without Python on PATH (skip mode): notes is skipped and named with what to install; memory still answers", async () => {
    bridge = await startBridge({ PATH: "/nonexistent", HATAGO_BRIDGE_MISSING_SERVERS: "skip" });
    const skipped = await bridge.waitForLog((l) => l.event === "server.skipped");
    expect(skipped).toMatchObject({ server: "notes", missing: "Python 3 is not installed (apt-get install python3)" });
    const health = await bridge.health();
    expect(health.status).toBe("ok");
    expect(health.servers.notes).toMatchObject({ available: false, skipped: expect.stringContaining("Python 3") });
    const { client } = await connect(bridge, "github:bob", "memory");
    expect(textOf(await client.callTool({ name: "read_graph", arguments: {} }))).toContain("entities");
    await client.close();
  });

  it("in the image's mode (fail, the default) the same bridge refuses to start, naming the server and what is missing", async () => {
    await expect(startBridge({ PATH: "/nonexistent" })).rejects.toThrow(/notes: Python 3 is not installed/);
  });
});
