import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import { forgetAllReused } from "../../../worker/authz/reuse-cache.ts";
import { database } from "../../../worker/db/database.ts";
import { recordBackend } from "../../../worker/db/sessions.repository.ts";
import type { Env } from "../../../worker/env.ts";
import { createWorker, parseConfig } from "../../../worker/index.ts";
import { DIRECT_SESSION_PREFIX } from "../../../worker/mcp/direct-call.ts";
import { shipAuditRows } from "../audit/ledgers.ts";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "../oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "../oauth/harness/oauth-client.ts";
import { testSettings, viaDefaultExport } from "../oauth/harness/workers.ts";
import { type FakeBridge, fakeBridge } from "./fake-bridge.ts";
import { meterD1, meterDurableObjects, meterKv, meterReset, meterSnapshot } from "./meter.ts";

/**
 * Issue 14, the cost count: a modern (2026-07-28) `tools/call` costs what a direct call on a legacy session
 * costs. Both are counted here the same way, on the same Worker, for the same person, tool and arguments:
 * the product Worker (createWorker, as the default export builds it) with its KV, D1, session objects,
 * audit ledgers and bridge containers wrapped by the bench's counters (meter.ts), and the counts compared
 * with each other and with what the issue promises, so the claim fails here the day either path changes.
 *
 * Per call: the token's KV read, the one D1 read of the caller's grants (none when this isolate read them
 * within the decision cache's bound, worker/authz/decision-cache.ts), no D1 write before the answer (the
 * audit row goes to the caller's ledger: one `append`, shipped to D1 afterwards), one request to the
 * server's container, and no session object at all.
 *
 * The containers are a fake (fake-bridge.ts: no container runs in workerd) standing where the Container
 * namespace stands, so the Worker's request to it is the deployed hop, counted as one Durable Object
 * request. The real bridge and servers run in the e2e count (test/e2e/direct-calls.test.ts) and the bench.
 */

const MODERN = "2026-07-28";
const LEGACY = "2025-11-25";
/** What the session object records when it opens a bridge session; the fake knows it (no bridge here). */
const BRIDGE_SESSION = "fake-bridge-session-0001";

interface Cost {
  readonly kvReads: number;
  readonly kvWrites: number;
  readonly d1Reads: number;
  /** On the request path: single statements, batches, exec. (The ledgers' shipments are not counted here.) */
  readonly d1Writes: number;
  /** The audit write: the row durable in the caller's ledger before the answer. */
  readonly ledgerAppends: number;
  /** The rate limit's count in the caller's ledger (only for roles with a limit). */
  readonly ledgerCounts: number;
  readonly sessionObjectRequests: number;
  /** Requests to the containers (Durable Object requests when deployed). */
  readonly containerRequests: number;
}

const count = (kind: string) => meterSnapshot()[kind]?.count ?? 0;

function costSoFar(): Cost {
  return {
    kvReads: count("kv.read") + count("kv.list"),
    kvWrites: count("kv.write") + count("kv.delete"),
    d1Reads: count("d1.read"),
    d1Writes: count("d1.write") + count("d1.batch") + count("d1.exec"),
    ledgerAppends: count("do.ledger.append"),
    ledgerCounts: count("do.ledger.callsSince"),
    sessionObjectRequests: count("do.session.fetch"),
    containerRequests: count("do.bridge.fetch"),
  };
}

/** What the issue promises a tool call costs (for a caller whose roles have no rate limit). */
const DIRECT_CALL_COST: Cost = {
  kvReads: 1,
  kvWrites: 0,
  d1Reads: 1,
  d1Writes: 0,
  ledgerAppends: 1,
  ledgerCounts: 0,
  sessionObjectRequests: 0,
  containerRequests: 1,
};

interface Answered {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** Counted when the answer's body was read, before the invocation's waitUntil work was waited for. */
  readonly costAtAnswer: Cost;
  /** Counted after the invocation's waitUntil work ended too. */
  readonly costAfter: Cost;
}

interface MeteredWorker {
  readonly bridge: FakeBridge;
  send(request: Request): Promise<Answered>;
}

async function meteredWorker(): Promise<MeteredWorker> {
  const parsed = parseConfig(testSettings());
  if (!parsed.ok) throw new Error("test configuration invalid");
  const worker = createWorker(parsed.config);
  const bridge = await fakeBridge(env.HATAGO_BRIDGE_SECRET);
  const metered: Env = {
    ...(env as unknown as Env),
    DB: meterD1(env.DB),
    OAUTH_KV: meterKv(env.OAUTH_KV),
    MCP_SESSIONS: meterDurableObjects(env.MCP_SESSIONS, "session"),
    AUDIT_LEDGER: meterDurableObjects(env.AUDIT_LEDGER, "ledger", ["append", "callsSince"]),
    BRIDGE: meterDurableObjects(bridge.containers, "bridge"),
  };
  return {
    bridge,
    async send(request) {
      const ctx = createExecutionContext();
      const response = await worker.fetch(request, metered, ctx);
      const body = await response.text();
      const costAtAnswer = costSoFar();
      await waitOnExecutionContext(ctx);
      return { status: response.status, headers: response.headers, body, costAtAnswer, costAfter: costSoFar() };
    },
  };
}

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(viaDefaultExport);
  const { code, pkce } = await signIn(new Browser(viaDefaultExport), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const echoParams = (message: string) => ({ name: "everything__echo", arguments: { message } });

/** A modern tools/call: the mirrored headers and the `_meta` every 2026-07-28 request carries. */
const modernCall = (token: string, message: string) =>
  new Request(`${ORIGIN}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "tools/call",
      "mcp-name": "everything__echo",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        ...echoParams(message),
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "meter", version: "1.0.0" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }),
  });

const legacyPost = (token: string, session: string | null, body: unknown) =>
  new Request(`${ORIGIN}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(session === null ? {} : { "mcp-session-id": session, "mcp-protocol-version": LEGACY }),
    },
    body: JSON.stringify(body),
  });

/**
 * A legacy Streamable HTTP session of a client that declared no sampling, elicitation or roots (so its
 * calls may go direct), opened through the real session object, with the bridge session for `everything`
 * recorded as the session object records it when it opens one (recordBackend; no bridge runs here for
 * the session object to open it on).
 */
async function directSession(worker: MeteredWorker, token: string, principal: string): Promise<string> {
  const init = await worker.send(
    legacyPost(token, null, {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "meter", version: "1.0.0" } },
    }),
  );
  expect(init.status).toBe(200);
  const session = init.headers.get("mcp-session-id") ?? "";
  expect(session.startsWith(DIRECT_SESSION_PREFIX)).toBe(true);
  const ready = await worker.send(legacyPost(token, session, { jsonrpc: "2.0", method: "notifications/initialized" }));
  expect(ready.status).toBe(202);
  await recordBackend(database(env.DB), { principal, sessionId: session }, "everything", BRIDGE_SESSION, LEGACY);
  worker.bridge.openSession(BRIDGE_SESSION);
  return session;
}

const directCall = (token: string, session: string, message: string) =>
  legacyPost(token, session, { jsonrpc: "2.0", id: 1, method: "tools/call", params: echoParams(message) });

/** The call's answer text, from a JSON body or the one `data:` line of an event stream. */
function echoed(answered: Answered): unknown {
  const json = answered.body.startsWith("{")
    ? answered.body
    : (answered.body
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6) ?? "null");
  return (JSON.parse(json) as { result?: { content?: { text?: unknown }[] } }).result?.content?.[0]?.text;
}

/**
 * One metered call: the counters start at zero, and nothing an earlier request read is reused (decision
 * facts, the library's token verdict) unless `warm`.
 */
async function metered(worker: MeteredWorker, request: Request, options: { warm?: boolean } = {}) {
  if (!options.warm) forgetAllReused();
  meterReset();
  const answered = await worker.send(request);
  expect(answered.status).toBe(200);
  return answered;
}

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
  forgetAllReused();
});

describe("cost count: a modern tools/call costs what a direct call costs (issue 14)", () => {
  it("1 KV read, 1 D1 read, 0 D1 writes before the answer, 1 ledger append, 1 container request, no session object: on both paths", async () => {
    const worker = await meteredWorker();
    const erin = await tokenFor("erin");
    const session = await directSession(worker, erin, "mock:erin");

    const direct = await metered(worker, directCall(erin, session, "direct"));
    const modern = await metered(worker, modernCall(erin, "modern"));

    expect(echoed(direct)).toBe("Echo: direct");
    expect(echoed(modern)).toBe("Echo: modern");
    expect(direct.costAtAnswer).toEqual(DIRECT_CALL_COST);
    expect(modern.costAtAnswer).toEqual(direct.costAtAnswer);
    // Nothing more on the request path once the answer is out (the rows reach D1 from the ledgers).
    expect(direct.costAfter).toEqual(direct.costAtAnswer);
    expect(modern.costAfter).toEqual(modern.costAtAnswer);

    // The one container request of each: the same container (`everything` is a shared server), each path's own route.
    const sent = worker.bridge.received.filter((r) => r.method === "tools/call");
    expect(sent).toEqual([
      {
        container: "shared:everything",
        path: "/servers/everything/mcp",
        use: "mcp",
        principal: "mock:erin",
        bridgeSessionId: BRIDGE_SESSION,
        method: "tools/call",
        refused: null,
      },
      {
        container: "shared:everything",
        path: "/execute",
        use: "execute",
        principal: "mock:erin",
        bridgeSessionId: null,
        method: "tools/call",
        refused: null,
      },
    ]);
    // One row each, shipped from erin's ledger after the answers: the modern one belongs to no session.
    await shipAuditRows();
    const { results } = await env.DB.prepare(
      "SELECT session_id, decision, outcome FROM audit_log WHERE principal = 'mock:erin' AND action = 'tools/call' ORDER BY seq",
    ).all();
    expect(results).toEqual([
      { session_id: session, decision: "allow", outcome: "ok" },
      { session_id: null, decision: "allow", outcome: "ok" },
    ]);
  });

  it("a call right after another (facts and token verdict from within the last second) reads no D1 and no KV on either path", async () => {
    const worker = await meteredWorker();
    const erin = await tokenFor("erin");
    const session = await directSession(worker, erin, "mock:erin");

    await metered(worker, directCall(erin, session, "first"));
    const direct = await metered(worker, directCall(erin, session, "again"), { warm: true });
    await metered(worker, modernCall(erin, "first"));
    const modern = await metered(worker, modernCall(erin, "again"), { warm: true });

    expect(echoed(direct)).toBe("Echo: again");
    expect(echoed(modern)).toBe("Echo: again");
    // Issue 18: the grants query and the library's token check (its KV read) are both reused.
    expect(direct.costAtAnswer).toEqual({ ...DIRECT_CALL_COST, d1Reads: 0, kvReads: 0 });
    expect(modern.costAtAnswer).toEqual(direct.costAtAnswer);
  });

  it("kill switch on the modern path: facts reused only within the bound; a block in this isolate holds at once", async () => {
    const worker = await meteredWorker();
    const erin = await tokenFor("erin");
    await metered(worker, modernCall(erin, "before"));
    // A block written by another isolate (straight into D1): this one may use what it read < 1 s ago.
    await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
      .bind("mock:erin", "laptop stolen", "mock:alice", Date.now())
      .run();
    const within = await metered(worker, modernCall(erin, "within the bound"), { warm: true });
    expect(within.costAtAnswer.d1Reads).toBe(0);
    // What the admin API does in the isolate that makes a block (worker/admin/blocks.routes.ts).
    forgetAllReused();
    meterReset();
    const refused = await worker.send(modernCall(erin, "after the block"));
    expect(refused.status).toBe(401);
    expect(refused.costAtAnswer).toMatchObject({ d1Reads: 1, ledgerAppends: 0, containerRequests: 0 });
  });

  it("a caller whose roles have a rate limit: one more ledger request (its count) on both paths alike", async () => {
    const worker = await meteredWorker();
    const bob = await tokenFor("bob");
    const session = await directSession(worker, bob, "mock:bob");

    const direct = await metered(worker, directCall(bob, session, "direct"));
    const modern = await metered(worker, modernCall(bob, "modern"));

    expect(echoed(direct)).toBe("Echo: direct");
    expect(echoed(modern)).toBe("Echo: modern");
    expect(direct.costAtAnswer).toEqual({ ...DIRECT_CALL_COST, ledgerCounts: 1 });
    expect(modern.costAtAnswer).toEqual(direct.costAtAnswer);
  });
});
