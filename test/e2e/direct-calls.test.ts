import { readFile } from "node:fs/promises";
import path from "node:path";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  bridgeMcpPath,
  importBridgeKey,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { d1Execute, d1Query } from "./helpers/d1.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

// Ports 18550–18552. The stack runs the metered Worker entry (the product's Worker and Durable Objects,
// unchanged, with counters around their bindings; test/workers/metering/), as the bench's cost count does.
const METERED_WORKER_ENTRY = "test/workers/metering/metered-worker.ts";
const BASE = 18550;
let stack: TestStack;
const opened: Connected[] = [];

type Tallies = Record<string, { count: number }>;

async function meter(method: "GET" | "POST"): Promise<Tallies> {
  const res = await fetch(`${stack.url}/__meter`, { method });
  expect(res.status).toBe(200);
  return (await res.json()) as Tallies;
}

/**
 * What `run` cost: session-object requests, requests to the bridge, D1 reads and writes on the request
 * path, and audit writes (ledger appends: the rows reach D1 from the ledgers after the answers, issue 18).
 */
async function costOf(run: () => Promise<unknown>) {
  await meter("POST");
  await run();
  // The last answer's own work (a streamed answer finishing) lands just after it; give it a moment.
  await new Promise((r) => setTimeout(r, 300));
  const t = await meter("GET");
  const bridge = Object.entries(t)
    .filter(([k]) => k === `fetch.127.0.0.1:${BASE + 1}`)
    .reduce((n, [, v]) => n + v.count, 0);
  return {
    session: t["do.session.fetch"]?.count ?? 0,
    bridge,
    d1Read: t["d1.read"]?.count ?? 0,
    d1Write: t["d1.write"]?.count ?? 0,
    auditWrite: t["do.ledger.append"]?.count ?? 0,
  };
}

async function open(person: Parameters<typeof connectAs>[1], capabilities = {}): Promise<Connected> {
  const c = await connectAs(stack.url, person, { clientOptions: { capabilities } });
  opened.push(c);
  return c;
}

const echo = (c: Connected, message: string) => c.client.callTool({ name: "everything__echo", arguments: { message } });
const echoed = (result: Awaited<ReturnType<typeof echo>>) => JSON.stringify(result.content);

beforeAll(async () => {
  stack = await startTestStack(BASE, { workerEntry: METERED_WORKER_ENTRY });
});

afterAll(async () => {
  for (const c of opened) await c.client.close().catch(() => {});
  await stack?.dispose();
});

describe("a session's setup and teardown read grants only where something is decided", () => {
  // Requests that decide nothing still check the caller's standing (a block holds on every request):
  // one small D1 read of `blocks` and `revocations`, never the grants query.
  it("initialize: 1 D1 read (grants); notifications/initialized and DELETE: 1 each (standing only)", async () => {
    // The SDK client only provides a token: its own session (and the GET stream it opens in the background)
    // is settled and closed first, so nothing of it lands in the counts below.
    const alice = await open("alice");
    await alice.client.listTools();
    const token = alice.token();
    await alice.client.close();
    await new Promise((r) => setTimeout(r, 500));
    const headers = (extra: Record<string, string> = {}) => ({
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...extra,
    });
    let session = "";
    const init = await costOf(async () => {
      const res = await fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
        }),
      });
      expect(res.status).toBe(200);
      session = res.headers.get("mcp-session-id") ?? "";
      await res.text();
    });
    expect(init.d1Read).toBe(1);
    const inSession = headers({ "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" });
    const initialized = await costOf(async () => {
      const res = await fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers: inSession,
        body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
      });
      expect(res.status).toBe(202);
    });
    expect(initialized.d1Read).toBe(1);
    const ended = await costOf(async () => {
      const res = await fetch(`${stack.url}/mcp`, { method: "DELETE", headers: inSession });
      expect(res.status).toBe(200);
    });
    expect(ended.d1Read).toBe(1);
  });
});

describe("direct tool calls: Worker → container, one Durable Object hop", () => {
  it("after a server's first call, a tool call makes no session-object request: 1 bridge request, at most 1 D1 read, 1 audit write (not to D1)", async () => {
    const alice = await open("alice");
    await alice.client.listTools();
    expect(echoed(await echo(alice, "first"))).toContain("first");
    const cost = await costOf(async () => {
      for (let i = 0; i < 5; i++) expect(echoed(await echo(alice, `direct ${i}`))).toContain(`direct ${i}`);
    });
    // Calls within a second of the facts' read reuse them (authz/decision-cache.ts; its bound is tested with a
    // controlled clock in test/workers/grants-freshness.test.ts), so how many of the five read D1 depends on
    // this machine's pace: never more than one each.
    const { d1Read, ...rest } = cost;
    expect(rest).toEqual({ session: 0, bridge: 5, d1Write: 0, auditWrite: 5 });
    expect(d1Read).toBeLessThanOrEqual(5);
  });

  it("a client that declares elicitation keeps its calls on the session object (the call's own stream)", async () => {
    const bob = await open("bob", { elicitation: {} });
    await echo(bob, "warm");
    const cost = await costOf(() => echo(bob, "via session"));
    expect(cost.session).toBe(1);
    expect(cost.d1Read).toBe(1);
  });

  it("a call that asks for progress goes through the session object, and its progress arrives", async () => {
    const alice = await open("alice");
    await echo(alice, "warm");
    const progress: number[] = [];
    const cost = await costOf(() =>
      alice.client.callTool(
        { name: "everything__trigger-long-running-operation", arguments: { duration: 0.2, steps: 2 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      ),
    );
    expect(cost.session).toBe(1);
    expect(progress.length).toBeGreaterThan(0);
  });

  it("denials on the direct path read the same as everywhere: not found, audited, nothing sent on", async () => {
    const carol = await open("carol");
    await echo(carol, "warm");
    let error: Awaited<ReturnType<typeof callError>> = null;
    const cost = await costOf(async () => {
      error = await callError(carol.client, "everything__get-env", {});
    });
    expect(error).toMatchObject({ message: expect.stringContaining("Tool everything__get-env not found") });
    expect(cost).toEqual({ session: 0, bridge: 0, d1Read: 1, d1Write: 0, auditWrite: 1 });
  });

  it("after DELETE, a tool call on the session is 404: the direct path ends with the session", async () => {
    const alice = await open("alice");
    await echo(alice, "warm");
    const session = sessionOf(alice);
    const token = alice.token();
    await streamable(alice).terminateSession();
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 9,
        method: "tools/call",
        params: { name: "everything__echo", arguments: { message: "after delete" } },
      }),
    });
    expect(res.status).toBe(404);
  });

  it("a record older than a session's life is not used: the call goes to the session object, which owns expiry", async () => {
    const alice = await open("alice");
    await echo(alice, "warm");
    const session = sessionOf(alice);
    await d1Execute(
      stack.stateDir,
      `UPDATE mcp_sessions SET created_ms = created_ms - 25 * 3600 * 1000 WHERE session_id = '${session}'`,
    );
    const cost = await costOf(() => echo(alice, "aged"));
    expect(cost.session).toBe(1);
  });

  it("a bridge that forgot the session (idle, new container): the call still succeeds, and the next is direct again", async () => {
    const alice = await open("alice");
    await echo(alice, "warm");
    const session = sessionOf(alice);
    // The bridge session the gateway session holds, ended at the bridge itself (as a restart would).
    const secret = (await readFile(path.join(stack.stateDir, "bridge-secret"), "utf8")).trim();
    const bridgeSession = await bridgeSessionOf(session);
    const key = await importBridgeKey(secret);
    const credential = await mintBridgeCredential(key, {
      principal: "mock:alice",
      server: "everything",
      use: "mcp",
      sessionId: bridgeSession,
    });
    const ended = await fetch(`http://127.0.0.1:${BASE + 1}${bridgeMcpPath("everything")}`, {
      method: "DELETE",
      headers: { [BRIDGE_CREDENTIAL_HEADER]: credential, "mcp-session-id": bridgeSession },
    });
    expect(ended.ok).toBe(true);

    const fallback = await costOf(async () => expect(echoed(await echo(alice, "reopened"))).toContain("reopened"));
    expect(fallback.session).toBe(1);
    const direct = await costOf(async () =>
      expect(echoed(await echo(alice, "direct again"))).toContain("direct again"),
    );
    expect(direct.session).toBe(0);
    expect(await bridgeSessionOf(session)).not.toBe(bridgeSession);
  });
});

function streamable(c: Connected): StreamableHTTPClientTransport {
  if (!(c.transport instanceof StreamableHTTPClientTransport)) throw new Error("a Streamable HTTP connection");
  return c.transport;
}

function sessionOf(c: Connected): string {
  const id = streamable(c).sessionId;
  if (!id) throw new Error("no session id");
  return id;
}

/** The bridge session a gateway session holds on `everything`, from the stack's local D1. */
async function bridgeSessionOf(session: string): Promise<string> {
  const out = await d1Query(
    stack.stateDir,
    `SELECT bridge_session_id FROM mcp_session_backends WHERE session_id = '${session}' AND server = 'everything'`,
  );
  const id = out[0]?.bridge_session_id;
  if (typeof id !== "string") throw new Error(`no bridge session recorded for ${session}`);
  return id;
}
