import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { BackoffPolicy } from "../../container/src/child.ts";
import { ParkedError } from "../../container/src/handshake.ts";
import { createLogger } from "../../container/src/log.ts";
import { Multiplexer } from "../../container/src/multiplexer.ts";
import { type ClientCaps, NO_CLIENT_CAPS, type PendingCall, type Port } from "../../container/src/port.ts";

/**
 * The supervisor and multiplexer driven directly, with a spawn spec pointing at a misbehaving
 * fixture server (test/bridge/fixtures): nothing in the catalog changes, and production cannot run it.
 */

const FIXTURE = fileURLToPath(new URL("./fixtures/misbehaving-server.ts", import.meta.url));
type Json = Record<string, unknown>;

interface Setup {
  env?: Record<string, string>;
  isolation?: "per-user" | "shared";
  callTimeoutMs?: number;
  idleTimeoutMs?: number;
  stopGraceMs?: number;
  backoff?: Partial<BackoffPolicy>;
  maxLineBytes?: number;
}

const started: Multiplexer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop("test done")));
});

function fixture(setup: Setup = {}) {
  const logs: Json[] = [];
  const log = createLogger("debug", (line) => logs.push(JSON.parse(line) as Json));
  let idleStops = 0;
  const mux = new Multiplexer({
    label: "fixture#1",
    isolation: setup.isolation ?? "per-user",
    log,
    callTimeoutMs: setup.callTimeoutMs ?? 5_000,
    idleTimeoutMs: setup.idleTimeoutMs ?? 60_000,
    counters: { inFlight: 0 },
    onIdleStop: () => {
      idleStops += 1;
    },
    supervisor: {
      maxLineBytes: setup.maxLineBytes ?? 1024 * 1024,
      stopGraceMs: setup.stopGraceMs ?? 200,
      ...(setup.backoff ? { backoff: setup.backoff } : {}),
      spec: async () => ({ command: process.execPath, args: [FIXTURE], env: { ...setup.env }, cwd: tmpdir() }),
    },
  });
  started.push(mux);
  const waitForLog = async (predicate: (l: Json) => boolean, timeoutMs = 5_000) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const found = logs.find(predicate);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`log not seen: ${JSON.stringify(logs.slice(-5))}`);
  };
  return { mux, logs, waitForLog, idleStops: () => idleStops };
}

class TestPort implements Port {
  readonly principal: string;
  readonly label: string;
  readonly caps: ClientCaps;
  readonly calls = new Map<string | number, PendingCall>();
  readonly subscriptions = new Set<string>();
  readonly delivered: Json[] = [];

  constructor(principal: string, caps: ClientCaps = NO_CLIENT_CAPS) {
    this.principal = principal;
    this.label = `port-${principal}`;
    this.caps = caps;
  }

  deliver(json: string): void {
    this.delivered.push(JSON.parse(json) as Json);
  }

  acceptsLog(): boolean {
    return true;
  }
}

/** Sends tools/call `name` from `port` with the client's own `id`; collects the call's messages. */
function call(mux: Multiplexer, port: Port, id: string | number, name: string, args: Json = {}) {
  const messages: Json[] = [];
  const msg: Json = { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } };
  const result = new Promise<Json | "abandoned">((resolve) => {
    mux.call(port, id, "tools/call", msg, JSON.stringify(msg), {
      message: (json) => messages.push(JSON.parse(json) as Json),
      done: (json) => resolve(JSON.parse(json) as Json),
      abandon: () => resolve("abandoned"),
    });
  });
  return { messages, result };
}

const textOf = (response: Json | "abandoned") =>
  JSON.stringify((response as { result?: { content?: unknown } }).result?.content ?? response);

describe("child stdout hygiene (BR framing)", () => {
  it("garbage, invalid JSON-RPC, an oversize line and an unknown id are logged and dropped; the child keeps serving", async () => {
    const { mux, logs, waitForLog } = fixture({ env: { FIXTURE_GARBAGE: "1" }, maxLineBytes: 64 * 1024 });
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    expect(await call(mux, port, 1, "echo", { text: "still here" }).result).toMatchObject({
      id: 1,
      result: { content: [{ type: "text", text: "still here" }] },
    });
    await waitForLog((l) => l.event === "child.line_dropped" && l.reason === "oversize");
    expect(logs.filter((l) => l.event === "child.line_dropped" && l.reason === "not JSON")).toHaveLength(2);
    expect(logs.some((l) => l.event === "child.line_dropped" && l.reason === "not a JSON-RPC 2.0 object")).toBe(false);
    expect(logs.some((l) => l.event === "child.response_unmatched" && l.id === 424242)).toBe(true);
    expect(mux.snapshot().restarts).toBe(0);
  });
});

describe("id remapping (GHSA-345p-7cg4-v4c7: responses never cross ports)", () => {
  it("two ports both using id 0 at the same time each get only their own answer", async () => {
    const { mux } = fixture({ isolation: "shared" });
    await mux.ready();
    const alice = new TestPort("alice");
    const bob = new TestPort("bob");
    mux.attach(alice);
    mux.attach(bob);
    for (let round = 0; round < 20; round++) {
      const [a, b] = await Promise.all([
        call(mux, alice, 0, "echo", { text: `alice-${round}` }).result,
        call(mux, bob, 0, "echo", { text: `bob-${round}` }).result,
      ]);
      expect(a).toMatchObject({ id: 0, result: { content: [{ text: `alice-${round}` }] } });
      expect(b).toMatchObject({ id: 0, result: { content: [{ text: `bob-${round}` }] } });
    }
  });

  it("a second request with an id already in flight on the same port is refused, not confused", async () => {
    const { mux } = fixture();
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    const first = call(mux, port, 7, "hang");
    expect(await call(mux, port, 7, "echo", { text: "dup" }).result).toMatchObject({ id: 7, error: { code: -32600 } });
    mux.cancel(port, 7, "done");
    expect(await first.result).toBe("abandoned");
  });
});

describe("wedged calls (REL-BR: timeout and cancellation)", () => {
  it("a call with no answer in the configured time gets -32001, and the child receives notifications/cancelled", async () => {
    const { mux, waitForLog } = fixture({ callTimeoutMs: 300 });
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    const startedAt = Date.now();
    const response = (await call(mux, port, "c-1", "hang").result) as Json;
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(response).toMatchObject({ id: "c-1", error: { code: -32001 } });
    // The child saw its own id for the call (not the client's "c-1") in the cancellation.
    const seen = await waitForLog((l) => l.event === "child.stderr" && String(l.line).startsWith("fixture: cancelled"));
    expect(String(seen.line)).toMatch(/^fixture: cancelled \d+$/);
    expect(port.calls.size).toBe(0);
  });

  it("a client cancellation reaches the child and ends the call without a response", async () => {
    const { mux, waitForLog } = fixture();
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    const pending = call(mux, port, 5, "hang");
    await new Promise((r) => setTimeout(r, 50));
    mux.cancel(port, 5, "user pressed stop");
    expect(await pending.result).toBe("abandoned");
    await waitForLog((l) => l.event === "child.stderr" && String(l.line).startsWith("fixture: cancelled"));
  });
});

describe("server→client requests and notifications without a causal link", () => {
  const ROOTS: ClientCaps = { ...NO_CLIENT_CAPS, roots: true };

  it("roots/list goes to the only busy port of a per-user child, and its answer goes back", async () => {
    const { mux } = fixture();
    await mux.ready();
    const port = new TestPort("alice", ROOTS);
    mux.attach(port);
    const pending = call(mux, port, 1, "ask-roots");
    await expect.poll(() => pending.messages.length).toBe(1);
    const request = pending.messages[0] as { id: number; method: string };
    expect(request.method).toBe("roots/list");
    const answer = { jsonrpc: "2.0", id: request.id, result: { roots: [{ uri: "file:///home/alice" }] } };
    mux.answer(port, request.id, answer, JSON.stringify(answer));
    expect(textOf(await pending.result)).toContain("file:///home/alice");
  });

  it("an answer from another port than the one asked is ignored (no response injection)", async () => {
    const { mux, logs } = fixture();
    await mux.ready();
    const alice = new TestPort("alice", ROOTS);
    const mallory = new TestPort("alice-other-session", ROOTS);
    mux.attach(alice);
    mux.attach(mallory);
    const pending = call(mux, alice, 1, "ask-roots");
    await expect.poll(() => pending.messages.length).toBe(1);
    const request = pending.messages[0] as { id: number };
    const forged = { jsonrpc: "2.0", id: request.id, result: { roots: [{ uri: "file:///evil" }] } };
    mux.answer(mallory, request.id, forged, JSON.stringify(forged));
    expect(logs.some((l) => l.event === "client.response_unmatched")).toBe(true);
    const real = { jsonrpc: "2.0", id: request.id, result: { roots: [] } };
    mux.answer(alice, request.id, real, JSON.stringify(real));
    expect(textOf(await pending.result)).not.toContain("evil");
  });

  it("refused with a JSON-RPC error to the child when two ports have calls in flight", async () => {
    const { mux } = fixture();
    await mux.ready();
    const a = new TestPort("alice", ROOTS);
    const b = new TestPort("alice", ROOTS);
    mux.attach(a);
    mux.attach(b);
    const busy = call(mux, a, 1, "hang");
    const asking = call(mux, b, 1, "ask-roots");
    expect(textOf(await asking.result)).toContain("cannot be attributed");
    expect(a.delivered).toEqual([]);
    expect(busy.messages).toEqual([]);
  });

  it("refused when the busy port's client did not declare the capability", async () => {
    const { mux } = fixture();
    await mux.ready();
    const port = new TestPort("alice", NO_CLIENT_CAPS);
    mux.attach(port);
    expect(textOf(await call(mux, port, 1, "ask-roots").result)).toContain("did not declare this capability");
  });

  it("roots/list from a SHARED child is refused even with one busy port (a shared process may cache roots)", async () => {
    const { mux } = fixture({ isolation: "shared" });
    await mux.ready();
    const port = new TestPort("alice", ROOTS);
    mux.attach(port);
    const pending = call(mux, port, 1, "ask-roots");
    expect(textOf(await pending.result)).toContain("roots are not given to a shared server");
    expect(pending.messages).toEqual([]);
  });

  it("a log line during one port's call goes to that call's stream only", async () => {
    const { mux } = fixture({ isolation: "shared" });
    await mux.ready();
    const alice = new TestPort("alice");
    const bob = new TestPort("bob");
    mux.attach(alice);
    mux.attach(bob);
    const pending = call(mux, alice, 1, "log", { text: "alice's secret" });
    await pending.result;
    expect(pending.messages).toMatchObject([{ method: "notifications/message", params: { data: "alice's secret" } }]);
    expect(bob.delivered).toEqual([]);
  });

  it("an unattributable log line from a shared child is dropped, never broadcast across principals", async () => {
    const { mux } = fixture({ isolation: "shared" });
    await mux.ready();
    const alice = new TestPort("alice");
    const bob = new TestPort("bob");
    mux.attach(alice);
    mux.attach(bob);
    await call(mux, alice, 1, "log-later").result;
    await expect.poll(() => mux.droppedMessages).toBe(1);
    expect(alice.delivered).toEqual([]);
    expect(bob.delivered).toEqual([]);
  });

  it("an unattributable log line reaches every session when they all belong to one principal", async () => {
    const { mux } = fixture();
    await mux.ready();
    const one = new TestPort("alice");
    const two = new TestPort("alice");
    mux.attach(one);
    mux.attach(two);
    await call(mux, one, 1, "log-later").result;
    await expect.poll(() => two.delivered.length).toBe(1);
    expect(one.delivered).toMatchObject([{ method: "notifications/message", params: { data: "later" } }]);
  });

  it("list_changed reaches every attached session (it describes the server, not a user)", async () => {
    const { mux } = fixture({ isolation: "shared" });
    await mux.ready();
    const alice = new TestPort("alice");
    const bob = new TestPort("bob");
    mux.attach(alice);
    mux.attach(bob);
    const pending = call(mux, alice, 1, "list-changed");
    await pending.result;
    await expect.poll(() => bob.delivered.length).toBe(1);
    expect(bob.delivered[0]).toMatchObject({ method: "notifications/tools/list_changed" });
    expect(alice.delivered).toMatchObject([{ method: "notifications/tools/list_changed" }]);
  });
});

describe("supervision (REL-BR: crash, crash loop, idle, stop)", () => {
  it("a crash mid-call answers the call with an error at once, then the restarted child serves", async () => {
    const { mux } = fixture({ backoff: { baseMs: 20 } });
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    const hanging = call(mux, port, 1, "hang");
    const crashing = call(mux, port, 2, "crash");
    expect(await crashing.result).toMatchObject({ id: 2, error: { code: -32000 } });
    expect(await hanging.result).toMatchObject({ id: 1, error: { code: -32000 } });
    expect(await call(mux, port, 3, "echo", { text: "back" }).result).toMatchObject({ id: 3, result: {} });
    expect(mux.snapshot()).toMatchObject({ restarts: 1, lastError: "exited with code 3" });
  });

  it("a crash loop is parked (not spun) and callers are told to retry later", async () => {
    const { mux } = fixture({
      env: { FIXTURE_CRASH_AT_START: "1" },
      backoff: { baseMs: 10, crashLoopExits: 3, parkMs: 60_000 },
    });
    await expect(mux.ready()).rejects.toBeInstanceOf(ParkedError);
    expect(mux.snapshot()).toMatchObject({ state: "parked", lastError: "exited with code 7", restarts: 2 });
    expect(mux.unavailableForSeconds()).toBeGreaterThan(0);
    await expect(mux.ready()).rejects.toBeInstanceOf(ParkedError);
  });

  it("an idle child (no session, no call) is stopped after the idle timeout", async () => {
    const { mux, idleStops } = fixture({ idleTimeoutMs: 150 });
    await mux.ready();
    const port = new TestPort("alice");
    mux.attach(port);
    await call(mux, port, 1, "echo", { text: "x" }).result;
    mux.detach(port);
    await expect.poll(() => idleStops(), { timeout: 3_000 }).toBe(1);
    expect(mux.snapshot()).toMatchObject({ state: "stopped", pid: null });
  });

  it("stop escalates stdin EOF → SIGTERM → SIGKILL for a child that ignores both", async () => {
    const { mux, waitForLog } = fixture({ env: { FIXTURE_STUBBORN: "1" }, stopGraceMs: 150 });
    await mux.ready();
    const pid = mux.snapshot().pid;
    expect(pid).toBeTypeOf("number");
    const t0 = Date.now();
    await mux.stop("test");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await waitForLog((l) => l.event === "child.stderr" && l.line === "fixture: ignoring SIGTERM");
    await waitForLog((l) => l.event === "child.exited" && l.signal === "SIGKILL");
    expect(() => process.kill(pid as number, 0)).toThrow();
  });
});
