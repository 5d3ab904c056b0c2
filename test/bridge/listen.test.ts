import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_ROUTES,
  type CredentialUse,
  LISTEN_LIMITS,
} from "../../container/src/contract.ts";
import { type BridgeProcess, startBridge } from "./harness.ts";

/**
 * `POST /listen` (container/src/listen.ts): one server's change notifications for the credential's
 * principal, for MCP 2026-07-28 `subscriptions/listen` at the Worker. Against the real bridge and the real
 * `everything` server, which announces its capability-gated tools (`notifications/tools/list_changed`) right
 * after it is initialized, and sends `notifications/resources/updated` for the URIs it was asked to
 * subscribe to when `toggle-subscriber-updates` is on (once at once, then every 5 s; process-wide on stdio).
 */

let bridge: BridgeProcess;
const open: Listen[] = [];
const URI_A = "demo://resource/static/document/architecture.md";
const URI_B = "demo://resource/static/document/features.md";

beforeAll(async () => {
  bridge = await startBridge({ HATAGO_BRIDGE_LOG_LEVEL: "debug" });
});

afterAll(async () => {
  for (const l of open.splice(0)) l.close();
  await bridge?.stop();
});

interface Listen {
  readonly status: number;
  /** The JSON-RPC messages received so far. */
  readonly events: Record<string, unknown>[];
  close(): void;
}

/** Opens a listen stream and reads its events as they come. */
async function listen(
  principal: string,
  server: string,
  resources: string[],
  options: { use?: CredentialUse; credentialServer?: string; body?: unknown } = {},
): Promise<Listen> {
  const abort = new AbortController();
  const credential = await bridge.mint(principal, options.credentialServer ?? server, options.use ?? "listen");
  const res = await fetch(`${bridge.base}${BRIDGE_ROUTES.listen}`, {
    method: "POST",
    headers: { "content-type": "application/json", [BRIDGE_CREDENTIAL_HEADER]: credential },
    body: JSON.stringify(options.body ?? { server, resources }),
    signal: abort.signal,
  });
  const events: Record<string, unknown>[] = [];
  const listening: Listen = { status: res.status, events, close: () => abort.abort() };
  if (res.status !== 200 || !res.body) {
    await res.text();
    return listening;
  }
  open.push(listening);
  void (async () => {
    const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
      for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read()) {
        buffered += chunk.value;
        for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event.split("\n").find((l) => l.startsWith("data: "));
          if (data) events.push(JSON.parse(data.slice(6)) as Record<string, unknown>);
        }
      }
    } catch {
      // Closed by the test.
    }
  })();
  return listening;
}

async function execute(principal: string, server: string, method: string, params: Record<string, unknown>) {
  const res = await fetch(`${bridge.base}${BRIDGE_ROUTES.execute}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint(principal, server, "execute"),
    },
    body: JSON.stringify({ server, message: { jsonrpc: "2.0", id: 1, method, params } }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

const toggleUpdates = () =>
  execute("github:alice", "everything", "tools/call", { name: "toggle-subscriber-updates", arguments: {} });

async function running(server: string): Promise<number> {
  return (await bridge.health()).servers[server]?.running ?? -1;
}

/**
 * Stops the shared `everything` process (SIGKILL) once it is initialized (the bridge starts shared servers at
 * boot, and a start still waited for would be restarted); with no session attached it is not restarted.
 */
async function stopEverything(): Promise<void> {
  const ready = async () => (await bridge.health()).servers.everything?.children.find((c) => c.phase === "ready");
  await expect.poll(ready, { timeout: 10_000 }).toBeTruthy();
  const child = await ready();
  if (child?.pid) process.kill(child.pid, "SIGKILL");
  await expect.poll(() => running("everything"), { timeout: 5_000 }).toBe(0);
}

const methods = (l: Listen) => l.events.map((e) => e.method);
const updatedUris = (l: Listen) =>
  l.events.filter((e) => e.method === "notifications/resources/updated").map((e) => (e.params as { uri: string }).uri);

describe("a listen is passive: it never starts a server, and hears it once something else does", () => {
  it("opened on a stopped process, it does not start it; a call does, and the new process's list_changed and its re-subscribed resource's updates arrive", async () => {
    await stopEverything();
    const alice = await listen("github:alice", "everything", [URI_A]);
    expect(alice.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(await running("everything")).toBe(0);
    expect(alice.events).toEqual([]);

    // A call starts the process: it announces its capability-gated tools after `initialize`.
    await execute("github:bob", "everything", "tools/list", {});
    await expect.poll(() => methods(alice), { timeout: 5_000 }).toContain("notifications/tools/list_changed");

    // The new process was asked to subscribe to the listener's URI when it became ready.
    await toggleUpdates();
    try {
      await expect.poll(() => updatedUris(alice), { timeout: 8_000 }).toContain(URI_A);
    } finally {
      await toggleUpdates();
    }
    // Only change notifications reach a listener: never the server's log lines or its requests (roots/list).
    expect(new Set(methods(alice))).toEqual(
      new Set(["notifications/tools/list_changed", "notifications/resources/updated"]),
    );
    alice.close();
  });

  it("a listen stream does not keep the process from idling out or being stopped (it is not a session)", async () => {
    const carol = await listen("github:carol", "everything", []);
    expect(carol.status).toBe(200);
    // A killed process with only a listener on it stays down: the listener does not make it wanted.
    await stopEverything();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await running("everything")).toBe(0);
    carol.close();
  });
});

describe("resources/updated reaches only the listeners that named the URI", () => {
  it("alice named A, bob named B: each hears only their own URI", async () => {
    await execute("github:alice", "everything", "tools/list", {});
    const alice = await listen("github:alice", "everything", [URI_A]);
    const bob = await listen("github:bob", "everything", [URI_B]);
    await toggleUpdates();
    try {
      await expect.poll(() => updatedUris(alice), { timeout: 8_000 }).toContain(URI_A);
      await expect.poll(() => updatedUris(bob), { timeout: 8_000 }).toContain(URI_B);
      expect(updatedUris(alice).every((u) => u === URI_A)).toBe(true);
      expect(updatedUris(bob).every((u) => u === URI_B)).toBe(true);
    } finally {
      await toggleUpdates();
      alice.close();
      bob.close();
    }
  });
});

describe("hostile /listen requests (the credential decides who listens; the body names nothing else)", () => {
  it("no credential is 401; a credential for /execute is 403 wrong_use; one for another server is 403", async () => {
    const none = await fetch(`${bridge.base}${BRIDGE_ROUTES.listen}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ server: "everything", resources: [] }),
    });
    expect(none.status).toBe(401);
    expect((await listen("github:alice", "everything", [], { use: "execute" })).status).toBe(403);
    expect((await listen("github:alice", "everything", [], { use: "mcp" })).status).toBe(403);
    expect((await listen("github:alice", "everything", [], { credentialServer: "memory" })).status).toBe(403);
  });

  it("one person cannot take every listen slot: past LISTEN_LIMITS.maxPerPrincipal on a server, 429; others still listen", async () => {
    const mine: Listen[] = [];
    for (let i = 0; i < LISTEN_LIMITS.maxPerPrincipal; i++) {
      const l = await listen("github:mallory", "everything", []);
      expect(l.status).toBe(200);
      mine.push(l);
    }
    const refused = await fetch(`${bridge.base}${BRIDGE_ROUTES.listen}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint("github:mallory", "everything", "listen"),
      },
      body: JSON.stringify({ server: "everything", resources: [] }),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("too_many_listens");
    // Another person, and the same person on another server, are not affected.
    const other = await listen("github:carol", "everything", []);
    expect(other.status).toBe(200);
    other.close();
    const elsewhere = await listen("github:mallory", "memory", []);
    expect(elsewhere.status).toBe(200);
    elsewhere.close();
    // Closing one frees its slot.
    mine.pop()?.close();
    await expect
      .poll(async () => (await listen("github:mallory", "everything", [])).status, { timeout: 5_000 })
      .toBe(200);
    for (const l of mine) l.close();
  });

  it("an unknown field (a command), an unknown server, bad resources are 400/404 before anything runs", async () => {
    const asked = (body: unknown) => listen("github:alice", "everything", [], { body });
    expect((await asked({ server: "everything", resources: [], command: "sh" })).status).toBe(400);
    expect((await asked({ server: "everything" })).status).toBe(400);
    expect((await asked({ server: "everything", resources: [1] })).status).toBe(400);
    expect((await asked({ server: "everything", resources: ["x".repeat(3_000)] })).status).toBe(400);
    expect(
      (await asked({ server: "everything", resources: Array.from({ length: 101 }, (_, i) => `u${i}`) })).status,
    ).toBe(400);
    expect((await listen("github:alice", "constructor", [])).status).toBe(404);
    const get = await fetch(`${bridge.base}${BRIDGE_ROUTES.listen}`);
    expect(get.status).toBe(405);
  });
});
