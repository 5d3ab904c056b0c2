import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BRIDGE_CREDENTIAL_HEADER, importBridgeKey } from "../../container/src/contract.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { auditLog, type LedgerBindings } from "../../worker/audit/ledger.ts";
import type { Caller } from "../../worker/authz/request-context.ts";
import { database } from "../../worker/db/database.ts";
import { type ListenDeps, serveListen } from "../../worker/mcp/modern/listen.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * `subscriptions/listen` (MCP 2026-07-28, basic/patterns/subscriptions) in workerd with real D1 and KV.
 *
 * Through the Worker's default export: the checks every modern request gets (headers, Accept, params), the
 * acknowledgment, the audited refusal of a resource the caller may not read, and a blocked caller. No bridge
 * runs here, and the test environment's container binding cannot start one, so those listens relay nothing.
 *
 * Called directly (serveListen) with a FakeBridgeNamespace (Cloudflare Containers cannot run here; the real
 * bridge's side is test/bridge/listen.test.ts and both together test/e2e/modern-listen.test.ts) whose streams
 * the test writes: what is relayed to whom, a policy re-seed, a block mid-stream, the lifetime bound.
 *
 * People (policies/environments/dev.ts): carol reads every server; erin holds three `everything` tools and no
 * server-wide grant (so none of its resources or prompts); dave holds nothing.
 */
const send = viaDefaultExport;
const VERSION = "2026-07-28";
const SECRET = "test-only-bridge-secret-0123456789abcdef";
const URI = "hatago:everything:demo://resource/static/document/architecture.md";
const INNER = "demo://resource/static/document/architecture.md";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const meta = {
  "io.modelcontextprotocol/protocolVersion": VERSION,
  "io.modelcontextprotocol/clientInfo": { name: "workers-test", version: "1.0.0" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

/** A modern `subscriptions/listen` POST through the Worker; `headers` override the mirrored defaults. */
function listenRequest(token: string, notifications: unknown, headers: Record<string, string | null> = {}) {
  const defaults: Record<string, string | null> = {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": VERSION,
    "mcp-method": "subscriptions/listen",
  };
  const h = new Headers();
  for (const [k, v] of Object.entries({ ...defaults, ...headers })) if (v !== null) h.set(k, v);
  const body = {
    jsonrpc: "2.0",
    id: "listen:0",
    method: "subscriptions/listen",
    params: { _meta: meta, notifications },
  };
  return send(new Request(`${ORIGIN}/mcp`, { method: "POST", headers: h, body: JSON.stringify(body) }));
}

/** Reads a listen's event stream as it comes; `next` waits for a message, `ended` for the end of the stream. */
function reader(res: Response) {
  const messages: Record<string, unknown>[] = [];
  let done = false;
  const body = res.body;
  if (!body) throw new Error("no body");
  const r = body.pipeThrough(new TextDecoderStream()).getReader();
  closers.push(() => void r.cancel().catch(() => {}));
  void (async () => {
    let buffered = "";
    try {
      for (let c = await r.read(); !c.done; c = await r.read()) {
        buffered += c.value;
        for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
          const data = buffered
            .slice(0, end)
            .split("\n")
            .find((l) => l.startsWith("data: "));
          buffered = buffered.slice(end + 2);
          if (data) messages.push(JSON.parse(data.slice(6)) as Record<string, unknown>);
        }
      }
    } catch {}
    done = true;
  })();
  return {
    messages,
    ended: () => done,
    async next(predicate: (m: Record<string, unknown>) => boolean, timeoutMs = 3_000) {
      await expect.poll(() => messages.find(predicate), { timeout: timeoutMs }).toBeTruthy();
      return messages.find(predicate) as Record<string, unknown>;
    },
    close: () => void r.cancel().catch(() => {}),
  };
}

async function auditRows(principal: string) {
  const { results } = await env.DB.prepare(
    "SELECT action, server, tool, decision, reason FROM audit_log WHERE principal = ? ORDER BY id",
  )
    .bind(principal)
    .all();
  return results;
}

const block = (subject: string) =>
  env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
    .bind(subject, "test", "mock:alice", Date.now())
    .run();

beforeEach(async () => {
  const compiled = await compilePolicy(POLICIES.dev);
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
});

describe("discover advertises what listen serves (server/discover, resources: listChanged and subscribe)", () => {
  it("tools, prompts and resources listChanged, resources subscribe", async () => {
    const token = await tokenFor("erin");
    const h = new Headers({
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": VERSION,
      "mcp-method": "server/discover",
    });
    const body = { jsonrpc: "2.0", id: 1, method: "server/discover", params: { _meta: meta } };
    const res = await send(new Request(`${ORIGIN}/mcp`, { method: "POST", headers: h, body: JSON.stringify(body) }));
    expect(((await res.json()) as { result: { capabilities: unknown } }).result.capabilities).toMatchObject({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true, subscribe: true },
    });
  });
});

describe("a listen is checked like every modern request (streamable-http, Server Validation)", () => {
  it("without Mcp-Method, or with another method in it, or without MCP-Protocol-Version: 400 HeaderMismatch", async () => {
    const token = await tokenFor("erin");
    const variants: Record<string, string | null>[] = [
      { "mcp-method": null },
      { "mcp-method": "tools/list" },
      { "mcp-protocol-version": null },
      { "mcp-protocol-version": "2025-11-25" },
    ];
    for (const headers of variants) {
      const res = await listenRequest(token, { toolsListChanged: true }, headers);
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: -32020 } });
    }
  });

  it("a client that does not accept an event stream gets 406; a missing or malformed filter gets -32602", async () => {
    const token = await tokenFor("erin");
    const json = await listenRequest(token, { toolsListChanged: true }, { accept: "application/json" });
    expect(json.status).toBe(406);
    for (const notifications of [undefined, "all", { toolsListChanged: "yes" }, { resourceSubscriptions: [1] }]) {
      const res = await listenRequest(token, notifications);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: "listen:0", error: { code: -32602 } });
    }
  });

  it("a blocked caller's listen is refused at once: 401 invalid_token, no stream", async () => {
    const token = await tokenFor("erin");
    await block("mock:erin");
    const res = await listenRequest(token, { toolsListChanged: true });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate") ?? "").toContain('error="invalid_token"');
  });
});

describe("the acknowledgment comes first and says what is honored (subscriptions: Acknowledgment)", () => {
  it("an event stream whose first message acknowledges the filter, tagged with the listen's id", async () => {
    const token = await tokenFor("erin");
    const res = await listenRequest(token, { toolsListChanged: true, promptsListChanged: false });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const stream = reader(res);
    const first = await stream.next(() => true);
    expect(first).toEqual({
      jsonrpc: "2.0",
      method: "notifications/subscriptions/acknowledged",
      params: {
        notifications: { toolsListChanged: true },
        _meta: { "io.modelcontextprotocol/subscriptionId": "listen:0" },
      },
    });
    stream.close();
  });

  it("a resource the caller may not read is not honored, and its refusal is audited like a legacy subscribe", async () => {
    const token = await tokenFor("erin");
    const stream = reader(
      await listenRequest(token, { toolsListChanged: true, resourceSubscriptions: [URI, "file:///etc/passwd"] }),
    );
    const ack = await stream.next((m) => m.method === "notifications/subscriptions/acknowledged");
    expect((ack.params as { notifications: unknown }).notifications).toEqual({ toolsListChanged: true });
    stream.close();
    // The rows reach D1 through the caller's audit ledger (worker/audit/ledger.ts).
    await expect
      .poll(() => auditRows("mock:erin"), { timeout: 5_000 })
      .toEqual(
        expect.arrayContaining([
          {
            action: "resources/subscribe",
            server: "everything",
            tool: URI,
            decision: "deny",
            reason: "server_not_granted",
          },
          {
            action: "resources/subscribe",
            server: null,
            tool: "file:///etc/passwd",
            decision: "deny",
            reason: "unknown_target",
          },
        ]),
      );
  });

  it("a filter that honors nothing is acknowledged empty and ended gracefully at once (the listen's result)", async () => {
    const token = await tokenFor("dave");
    const stream = reader(await listenRequest(token, { resourceSubscriptions: [URI] }));
    await expect.poll(stream.ended).toBe(true);
    expect(stream.messages).toMatchObject([
      { method: "notifications/subscriptions/acknowledged", params: { notifications: {} } },
      {
        id: "listen:0",
        result: { resultType: "complete", _meta: { "io.modelcontextprotocol/subscriptionId": "listen:0" } },
      },
    ]);
  });
});

/**
 * FakeBridgeNamespace: stands in for the `BRIDGE` container namespace (Cloudflare Containers cannot run here).
 * Each `/listen` request is recorded with the container it went to, and answered with an event stream the test
 * writes into, as the bridge writes what the server said. `asleep` containers report a stopped state.
 */
class FakeBridgeNamespace {
  readonly listens: {
    name: string;
    server: string;
    resources: string[];
    cancelled: boolean;
    write(m: unknown): void;
  }[] = [];
  readonly asleep = new Set<string>();
  readonly key = importBridgeKey(SECRET);
  idFromName(name: string) {
    return { name } as unknown as DurableObjectId;
  }
  get(id: DurableObjectId) {
    const name = (id as unknown as { name: string }).name;
    return {
      getState: async () => ({ status: this.asleep.has(name) ? "stopped" : "healthy" }),
      fetch: async (request: Request) => {
        expect(request.headers.get(BRIDGE_CREDENTIAL_HEADER)).toMatch(/^v1\./);
        const body = (await request.json()) as { server: string; resources: string[] };
        let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
        const entry = {
          name,
          ...body,
          cancelled: false,
          write: (m: unknown) =>
            controller?.enqueue(new TextEncoder().encode(`event: message\ndata: ${JSON.stringify(m)}\n\n`)),
        };
        this.listens.push(entry);
        const stream = new ReadableStream<Uint8Array>({
          start: (c) => {
            controller = c;
          },
          cancel: () => {
            entry.cancelled = true;
          },
        });
        return new Response(stream, { headers: { "content-type": "text/event-stream" } });
      },
    } as unknown as DurableObjectStub;
  }
  /** The open listen of a container, once the gateway opened it. */
  async open(name: string) {
    await expect.poll(() => this.listens.find((l) => l.name === name && !l.cancelled)).toBeTruthy();
    return this.listens.find((l) => l.name === name && !l.cancelled) as FakeBridgeNamespace["listens"][number];
  }
}

const CALLERS: Record<string, Caller> = {
  carol: {
    principal: "mock:carol",
    subjects: ["mock:carol", "email:carol@example.com"],
    clientId: null,
    authenticatedAtMs: Date.now(),
  },
  erin: {
    principal: "mock:erin",
    subjects: ["mock:erin", "group:mock:staff"],
    clientId: null,
    authenticatedAtMs: Date.now(),
  },
  dave: { principal: "mock:dave", subjects: ["mock:dave"], clientId: null, authenticatedAtMs: Date.now() },
};

async function listenDirect(
  fake: FakeBridgeNamespace,
  person: keyof typeof CALLERS,
  notifications: Record<string, unknown>,
  timings: ListenDeps["timings"] = {},
) {
  const bridge = await fake.key;
  const deps: ListenDeps = {
    db: database(env.DB),
    audit: auditLog(env as unknown as LedgerBindings),
    keys: async () => ({ bridge }),
    insecureDevBridgeUrl: null,
    containers: fake as unknown as DurableObjectNamespace,
    timings: { recheckMs: 60_000, keepAliveMs: 60_000, ...timings },
  };
  const request = new Request(`${ORIGIN}/mcp`, { method: "POST", headers: { accept: "text/event-stream" } });
  const caller = CALLERS[person] as Caller;
  const modern = {
    id: 7,
    method: "subscriptions/listen",
    params: { notifications },
    protocolVersion: VERSION,
    clientCapabilities: {},
  };
  const stream = reader(await serveListen(deps, caller, request, modern));
  await stream.next((m) => m.method === "notifications/subscriptions/acknowledged");
  return stream;
}

const LIST_CHANGED = (kind: "tools" | "prompts" | "resources") => ({
  jsonrpc: "2.0",
  method: `notifications/${kind}/list_changed`,
});
const UPDATED = (uri: string) => ({ jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri } });
const settle = () => new Promise((r) => setTimeout(r, 200));

describe("what is relayed to whom: the same decision as the lists (policies/decide.ts)", () => {
  it("carol (reads everything) hears her subscribed resource, renamed into the gateway's namespace, and each list's change", async () => {
    const fake = new FakeBridgeNamespace();
    const carol = await listenDirect(fake, "carol", {
      toolsListChanged: true,
      resourcesListChanged: true,
      resourceSubscriptions: [URI],
    });
    const everything = await fake.open("shared:everything");
    // The bridge is asked for the server's own URI, and only on the server it belongs to.
    expect(everything.resources).toEqual([INNER]);
    expect(fake.listens.filter((l) => l.name !== "shared:everything").every((l) => l.resources.length === 0)).toBe(
      true,
    );
    everything.write(UPDATED("demo://resource/static/document/features.md"));
    everything.write(UPDATED(INNER));
    everything.write(LIST_CHANGED("resources"));
    everything.write(LIST_CHANGED("prompts"));
    everything.write(LIST_CHANGED("tools"));
    await carol.next((m) => m.method === "notifications/tools/list_changed");
    const relayed = carol.messages.slice(1);
    expect(relayed).toEqual([
      {
        jsonrpc: "2.0",
        method: "notifications/resources/updated",
        params: { uri: URI, _meta: { "io.modelcontextprotocol/subscriptionId": 7 } },
      },
      {
        jsonrpc: "2.0",
        method: "notifications/resources/list_changed",
        params: { _meta: { "io.modelcontextprotocol/subscriptionId": 7 } },
      },
      {
        jsonrpc: "2.0",
        method: "notifications/tools/list_changed",
        params: { _meta: { "io.modelcontextprotocol/subscriptionId": 7 } },
      },
    ]);
    carol.close();
    // Closing the client's stream ends the streams toward the bridge.
    await expect.poll(() => fake.listens.every((l) => l.cancelled)).toBe(true);
  });

  it("a resources/updated or resources/list_changed of a server the caller may not read is never relayed (erin)", async () => {
    const fake = new FakeBridgeNamespace();
    const erin = await listenDirect(fake, "erin", {
      toolsListChanged: true,
      resourcesListChanged: true,
      promptsListChanged: true,
      resourceSubscriptions: [URI],
    });
    const everything = await fake.open("shared:everything");
    expect(everything.resources).toEqual([]);
    // A bridge (or a shared process) that says more than it was asked: nothing of it reaches erin.
    everything.write(UPDATED(INNER));
    everything.write(LIST_CHANGED("resources"));
    everything.write(LIST_CHANGED("prompts"));
    everything.write(LIST_CHANGED("tools"));
    await erin.next((m) => m.method === "notifications/tools/list_changed");
    await settle();
    expect(erin.messages.map((m) => m.method)).toEqual([
      "notifications/subscriptions/acknowledged",
      "notifications/tools/list_changed",
    ]);
    // Servers erin holds nothing on are not even listened to.
    expect(fake.listens.map((l) => l.name)).toEqual(["shared:everything"]);
  });

  it("a list_changed of a server the caller has no grants on is never relayed (dave listens to nothing)", async () => {
    const fake = new FakeBridgeNamespace();
    const dave = await listenDirect(fake, "dave", { toolsListChanged: true, resourcesListChanged: true });
    await settle();
    expect(fake.listens).toEqual([]);
    expect(dave.messages).toHaveLength(1);
  });

  it("a container that is not running is not woken to listen; it is tried again at the next check", async () => {
    const fake = new FakeBridgeNamespace();
    fake.asleep.add("shared:everything");
    const erin = await listenDirect(fake, "erin", { toolsListChanged: true }, { recheckMs: 100 });
    await settle();
    expect(fake.listens).toEqual([]);
    fake.asleep.delete("shared:everything");
    const everything = await fake.open("shared:everything");
    everything.write(LIST_CHANGED("tools"));
    await erin.next((m) => m.method === "notifications/tools/list_changed");
  });
});

describe("the caller's standing and grants are read again every recheck (SECURITY: a listen is not a pass)", () => {
  it("a person blocked mid-stream: the stream ends with the 401's error within one recheck, the bridge streams too", async () => {
    const fake = new FakeBridgeNamespace();
    const carol = await listenDirect(fake, "carol", { toolsListChanged: true }, { recheckMs: 100 });
    await fake.open("shared:everything");
    await block("email:carol@example.com");
    const error = await carol.next((m) => "error" in m);
    expect(error).toMatchObject({ id: 7, error: { code: -32000, message: expect.stringContaining("blocked") } });
    await expect.poll(carol.ended).toBe(true);
    await expect.poll(() => fake.listens.every((l) => l.cancelled)).toBe(true);
  });

  it("a policy re-seed that gives dave a role emits the lists' list_changed, and his servers are listened to", async () => {
    const fake = new FakeBridgeNamespace();
    const dave = await listenDirect(
      fake,
      "dave",
      { toolsListChanged: true, resourcesListChanged: true, promptsListChanged: true },
      { recheckMs: 100 },
    );
    await settle();
    expect(fake.listens).toEqual([]);
    const policy = POLICIES.dev;
    const reseeded = await compilePolicy({
      ...policy,
      bindings: [...policy.bindings, { subject: "mock:dave", roles: ["reader"], note: "Dave, now a reader" }],
    });
    await env.DB.batch(reseeded.statements.map((s) => env.DB.prepare(s)));
    await dave.next((m) => m.method === "notifications/tools/list_changed");
    await dave.next((m) => m.method === "notifications/resources/list_changed");
    await dave.next((m) => m.method === "notifications/prompts/list_changed");
    await fake.open("shared:everything");
  });

  it("the stream ends gracefully at its lifetime bound, with the listen's result (subscriptions: Graceful Closure)", async () => {
    const fake = new FakeBridgeNamespace();
    const erin = await listenDirect(fake, "erin", { toolsListChanged: true }, { maxMs: 300 });
    const result = await erin.next((m) => "result" in m);
    expect(result).toMatchObject({
      id: 7,
      result: {
        resultType: "complete",
        _meta: {
          "io.modelcontextprotocol/subscriptionId": 7,
          "io.modelcontextprotocol/serverInfo": { name: "hatago-auth" },
        },
      },
    });
    await expect.poll(erin.ended).toBe(true);
  });
});
