import { readFile } from "node:fs/promises";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BRIDGE_LIMITS } from "../../container/src/contract.ts";
import { type BridgeProcess, connect, rawPost, rawSession, startBridge } from "./harness.ts";

/** The real bridge with real servers under faults (REL-BR-*): crash, wedge, oversize, shutdown. */

const CALL_TIMEOUT_MS = 800;
let bridge: BridgeProcess;
let client: Client;

beforeAll(async () => {
  bridge = await startBridge({ HATAGO_BRIDGE_CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS) });
  ({ client } = await connect(bridge, "github:alice", "everything"));
});
afterAll(async () => {
  await client?.close();
  await bridge?.stop();
});

async function everythingChild() {
  const child = (await bridge.health()).servers.everything?.children[0];
  if (!child?.pid) throw new Error("no everything child running");
  return child;
}

describe("a child killed mid-call (FastMCP #499: calls must not hang)", () => {
  it("the caller gets an error promptly, and the next call works after the restart", async () => {
    const before = await everythingChild();
    const call = client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 5, steps: 1 } });
    await expect.poll(async () => (await everythingChild()).inFlight).toBe(1);
    const killedAt = Date.now();
    process.kill(before.pid as number, "SIGKILL");
    await expect(call).rejects.toThrow(/server process exited/);
    expect(Date.now() - killedAt).toBeLessThan(1_000);
    const after = await client.callTool({ name: "echo", arguments: { message: "back again" } });
    expect(after.content).toEqual([{ type: "text", text: "Echo: back again" }]);
    const child = await everythingChild();
    expect(child.pid).not.toBe(before.pid);
    expect(child.restarts).toBe(before.restarts + 1);
    expect(child.lastError).toBe("exited on SIGKILL");
  });
});

describe("a wedged call (REL-BR: no answer in the configured time)", () => {
  it("gets a timeout error, and the child is told to cancel (its late answer never comes)", async () => {
    const startedAt = Date.now();
    await expect(
      client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1.5, steps: 1 } }),
    ).rejects.toThrow(/timed out/);
    expect(Date.now() - startedAt).toBeLessThan(CALL_TIMEOUT_MS + 500);
    await bridge.waitForLog((l) => l.event === "call.timed_out");
    // server-everything would answer at 1.5 s unless it received notifications/cancelled.
    await new Promise((r) => setTimeout(r, 1_500 - (Date.now() - startedAt) + 400));
    expect(bridge.logs.filter((l) => l.event === "child.response_unmatched")).toEqual([]);
  });
});

describe("size limits (GHSA-f897-62hf-6gxq)", () => {
  it("a request body over the cap gets 413 and the bridge keeps serving", async () => {
    const session = await rawSession(bridge, "github:alice", "everything");
    const huge = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "echo", arguments: { message: "x".repeat(BRIDGE_LIMITS.maxRequestBytes) } },
    });
    const res = await rawPost(bridge, "github:alice", "everything", session, huge);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "payload_too_large" } });
    const ok = await client.callTool({ name: "echo", arguments: { message: "fine" } });
    expect(ok.content).toEqual([{ type: "text", text: "Echo: fine" }]);
  });
});

/** Direct children of `pid` from /proc (the process table), as [pid, cmdline]. */
async function childrenOf(pid: number): Promise<{ pid: number; cmd: string }[]> {
  const { readdir } = await import("node:fs/promises");
  const out: { pid: number; cmd: string }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      const cmd = (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ").trim();
      out.push({ pid: Number(entry), cmd });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("shutdown leaves no child process behind", () => {
  it("SIGTERM stops every child (stdin, SIGTERM, SIGKILL) and the bridge exits 0", async () => {
    const own = await startBridge();
    const { client: a } = await connect(own, "github:alice", "memory");
    const { client: b } = await connect(own, "github:bob", "memory");
    const { client: c } = await connect(own, "github:carol", "everything");
    await a.callTool({ name: "read_graph", arguments: {} });
    await b.callTool({ name: "read_graph", arguments: {} });
    const children = await childrenOf(own.pid);
    expect(children).toHaveLength(3);
    expect(children.every((ch) => ch.cmd.includes("@modelcontextprotocol/server-"))).toBe(true);
    const exit = new Promise<number | null>((resolve) => own.proc.once("exit", (code) => resolve(code)));
    own.proc.kill("SIGTERM");
    expect(await exit).toBe(0);
    for (const ch of children) expect(alive(ch.pid), `child ${ch.pid} (${ch.cmd}) still running`).toBe(false);
    await Promise.all([a.close(), b.close(), c.close()]);
    await own.stop();
  });
});
