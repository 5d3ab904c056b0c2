import type { Client as ModernClient } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { d1Execute, d1Query } from "./helpers/d1.ts";
import { connectModernAs } from "./helpers/mcp-client.ts";
import type { DemoOAuthProvider, DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

/**
 * `subscriptions/listen` (MCP 2026-07-28, basic/patterns/subscriptions) end to end: the real modern client
 * (@modelcontextprotocol/client 2.4, `client.listen()`), the full OAuth flow, the local stack as `npm start`
 * runs it, the real bridge and the real `everything` server (shared: one process for everyone). It announces
 * its capability-gated tools (`notifications/tools/list_changed`) once initialized, registers a resource when
 * `gzip-file-as-resource` runs (`notifications/resources/list_changed`), and, with `toggle-subscriber-updates`
 * on, sends `notifications/resources/updated` for every URI it was asked to subscribe to.
 *
 * People (policies/environments/dev.ts): alice is admin; carol reads every server; erin holds three
 * `everything` tools and no server-wide grant (none of its resources); frank holds only `memory` (execute).
 *
 * Ports 18710–18712 (the stack takes base, base+1, base+2).
 */
const BASE = 18710;
/**
 * This file's stack runs the listen clocks faster than listen.ts's defaults (30 s re-check, 15 s keep-alive)
 * through the Worker's settings, so what waits on them waits seconds: the same code, other intervals.
 */
const LISTEN_RECHECK_MS = 3_000;
const LISTEN_KEEPALIVE_MS = 2_000;
const LISTEN_SETTINGS = {
  HATAGO_LISTEN_RECHECK_SECONDS: String(LISTEN_RECHECK_MS / 1000),
  HATAGO_LISTEN_KEEPALIVE_SECONDS: String(LISTEN_KEEPALIVE_MS / 1000),
};
const URI = "hatago:everything:demo://resource/static/document/architecture.md";
let stack: TestStack;
const closers: (() => Promise<void>)[] = [];

interface Listener {
  readonly person: DemoPerson;
  readonly client: ModernClient;
  readonly provider: DemoOAuthProvider;
  /** Every change notification this client received: [method, uri?]. */
  readonly heard: [string, string?][];
}

/** A modern client signed in through the OAuth flow, recording what its listen streams deliver. */
async function connect(person: DemoPerson): Promise<Listener> {
  const { client, provider } = await connectModernAs(stack.url, person, { name: `e2e-listen-${person}` });
  closers.push(() => client.close());
  const heard: [string, string?][] = [];
  for (const method of [
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
  ] as const) {
    client.setNotificationHandler(method, () => {
      heard.push([method]);
    });
  }
  client.setNotificationHandler("notifications/resources/updated", (n) => {
    heard.push(["notifications/resources/updated", n.params.uri]);
  });
  return { person, client, provider, heard };
}

interface BridgeHealth {
  servers: Record<string, { listening?: number; children?: { pid: number | null; phase: string; state: string }[] }>;
}

async function bridgeHealth(): Promise<BridgeHealth> {
  return (await (await fetch(`${stack.bridgeUrl}/health`)).json()) as BridgeHealth;
}

const listening = async (server: string) => (await bridgeHealth()).servers[server]?.listening ?? 0;
const heardMethods = (l: Listener) => new Set(l.heard.map(([m]) => m));

beforeAll(async () => {
  stack = await startTestStack(BASE, { workerSettings: LISTEN_SETTINGS });
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => {});
  await stack?.dispose();
});

describe("listen relays the change notifications of the servers the caller may use, and nothing else", () => {
  it("updates, list changes and a restarted server's tool list reach who may see them; never erin or frank", async () => {
    const [alice, carol, erin, frank] = await Promise.all([
      connect("alice"),
      connect("carol"),
      connect("erin"),
      connect("frank"),
    ]);
    expect(alice.client.getProtocolEra()).toBe("modern");
    expect(alice.client.getServerCapabilities()).toMatchObject({
      tools: { listChanged: true },
      resources: { listChanged: true, subscribe: true },
    });
    const everyKind = { toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: [URI] };
    const subs = await Promise.all([
      alice.client.listen(everyKind),
      carol.client.listen({ resourcesListChanged: true, resourceSubscriptions: [URI] }),
      erin.client.listen(everyKind),
      frank.client.listen({ toolsListChanged: true, resourcesListChanged: true }),
    ]);
    for (const sub of subs) closers.push(() => sub.close());
    const [aliceSub, carolSub, erinSub, frankSub] = subs;
    expect(aliceSub?.honoredFilter).toEqual(everyKind);
    expect(carolSub?.honoredFilter).toEqual({ resourcesListChanged: true, resourceSubscriptions: [URI] });
    // erin may not read everything's resources: her subscription is not honored (and audited as a denial).
    expect(erinSub?.honoredFilter).toEqual({ toolsListChanged: true, resourcesListChanged: true });
    expect(frankSub?.honoredFilter).toEqual({ toolsListChanged: true, resourcesListChanged: true });
    // alice, carol and erin listen to `everything` through the bridge; frank holds nothing there.
    await expect.poll(() => listening("everything"), { timeout: 10_000 }).toBe(3);

    // resources/updated for the subscribed URI, in the gateway's namespace: alice and carol.
    await alice.client.callTool({ name: "everything__toggle-subscriber-updates", arguments: {} });
    try {
      for (const who of [alice, carol]) {
        await expect
          .poll(() => who.heard.some(([m, u]) => m === "notifications/resources/updated" && u === URI), {
            timeout: 12_000,
          })
          .toBe(true);
      }
    } finally {
      await alice.client.callTool({ name: "everything__toggle-subscriber-updates", arguments: {} });
    }

    // A new resource on the server: resources/list_changed for alice and carol.
    await alice.client.callTool({
      name: "everything__gzip-file-as-resource",
      arguments: { name: "listen-e2e.txt.gz", data: "data:text/plain,hello", outputType: "resourceLink" },
    });
    for (const who of [alice, carol]) {
      await expect
        .poll(() => heardMethods(who).has("notifications/resources/list_changed"), { timeout: 10_000 })
        .toBe(true);
    }

    // A new `everything` process (the old one killed; a call starts the next): its tools/list_changed reaches
    // alice and erin, who hold tools there. The bridge's listeners outlive the process.
    const child = (await bridgeHealth()).servers.everything?.children?.find((c) => c.phase === "ready");
    if (child?.pid) process.kill(child.pid, "SIGKILL");
    await expect
      .poll(async () => (await bridgeHealth()).servers.everything?.children?.some((c) => c.phase === "ready"))
      .toBe(false);
    await erin.client.callTool({ name: "everything__echo", arguments: { message: "wake" } });
    for (const who of [alice, erin]) {
      await expect
        .poll(() => heardMethods(who).has("notifications/tools/list_changed"), { timeout: 10_000 })
        .toBe(true);
    }

    // erin's refused subscription was audited as a denial, like a legacy resources/subscribe.
    await expect
      .poll(
        () =>
          d1Query(
            stack.stateDir,
            "SELECT tool, decision, reason FROM audit_log WHERE principal = 'mock:erin' AND action = 'resources/subscribe'",
          ),
        { timeout: 15_000, interval: 100 },
      )
      .toEqual([{ tool: URI, decision: "deny", reason: "server_not_granted" }]);

    // SECURITY: what erin and frank may not see never reached them.
    await new Promise((r) => setTimeout(r, 1_000));
    expect([...heardMethods(erin)]).toEqual(["notifications/tools/list_changed"]);
    expect(frank.heard).toEqual([]);
    expect(carol.heard.some(([m]) => m === "notifications/tools/list_changed")).toBe(false);

    // Closing the client's streams ends the gateway's streams toward the bridge: when request.signal aborts
    // (enable_request_signal), or at the latest when a write fails: through `wrangler dev`'s proxy, before the
    // flag, that was the second keep-alive after the close (~28 s), so within two keep-alives and a margin.
    await Promise.all(subs.map((sub) => sub.close()));
    for (const sub of subs) expect(await sub.closed).toBe("local");
    await expect.poll(() => listening("everything"), { timeout: 2 * LISTEN_KEEPALIVE_MS + 10_000 }).toBe(0);
  }, 120_000);
});

describe("hostile listens", () => {
  it("without Mcp-Method or with another method in it: 400 HeaderMismatch; without text/event-stream: 406", async () => {
    const erin = await connect("erin");
    const token = erin.provider.tokens()?.access_token ?? "";
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: "listen:hostile",
      method: "subscriptions/listen",
      params: {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
        notifications: { toolsListChanged: true },
      },
    });
    const post = (headers: Record<string, string>) =>
      fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2026-07-28",
          ...headers,
        },
        body,
      });
    const variants: Record<string, string>[] = [{}, { "mcp-method": "tools/list" }];
    for (const headers of variants) {
      const res = await post(headers);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: -32020 } });
    }
    const json = await post({ "mcp-method": "subscriptions/listen", accept: "application/json" });
    expect(json.status).toBe(406);
    await json.body?.cancel();
  });

  it("a person blocked while listening: the stream ends within one recheck, and a new listen is refused", {
    timeout: LISTEN_RECHECK_MS + 30_000,
  }, async () => {
    const frank = await connect("frank");
    const sub = await frank.client.listen({ toolsListChanged: true });
    closers.push(() => sub.close());
    await expect.poll(() => listening("memory"), { timeout: 10_000 }).toBeGreaterThan(0);
    const blockedAt = Date.now();
    await d1Execute(
      stack.stateDir,
      `INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES ('mock:frank', 'e2e', 'mock:alice', ${blockedAt})`,
    );
    // The server ends it with the 401's error on the stream: a remote end, not a graceful one.
    expect(await sub.closed).toBe("remote");
    expect(Date.now() - blockedAt).toBeLessThan(LISTEN_RECHECK_MS + 5_000);
    await expect(frank.client.listen({ toolsListChanged: true })).rejects.toThrow();
    // The bridge's stream toward frank's process went with it.
    await expect.poll(() => listening("memory"), { timeout: 10_000 }).toBe(0);
  });
});
