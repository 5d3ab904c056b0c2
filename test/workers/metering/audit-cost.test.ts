import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import type { Env } from "../../../worker/env.ts";
import { createWorker, parseConfig } from "../../../worker/index.ts";
import { ledgerOf, shipAuditRows } from "../audit/ledgers.ts";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "../oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "../oauth/harness/oauth-client.ts";
import { testSettings, viaDefaultExport } from "../oauth/harness/workers.ts";
import { meterD1, meterDurableObjects, meterReset, meterSnapshot } from "./meter.ts";

/**
 * Issue 18, goal 1: what a decided request costs in D1 before its answer. The product Worker runs with
 * its D1 and its ledger namespace wrapped by the bench's counters (meter.ts), and counts, per request:
 * D1 writes on the request path (must be 0: the answer never waits for D1's primary), the audit write
 * (one ledger `append`, durable in the Durable Object before the answer), and afterwards the shipment
 * (the row in D1, once, with its anchor).
 *
 * The calls are modern (2026-07-28) requests: the Worker itself serves them, so every binding they use
 * is the metered one. No bridge runs here: the allowed call ends as a transport error, which is still an
 * allowed tools/call with its one row (an answer from a real server is counted by the e2e file,
 * test/e2e/audit-ledger.test.ts).
 */

const VERSION = "2026-07-28";

function meteredWorker(): (request: Request) => Promise<Response> {
  const parsed = parseConfig(testSettings());
  if (!parsed.ok) throw new Error("test configuration invalid");
  const worker = createWorker(parsed.config);
  const metered: Env = {
    ...(env as unknown as Env),
    DB: meterD1(env.DB),
    AUDIT_LEDGER: meterDurableObjects(env.AUDIT_LEDGER, "ledger", ["append"]),
  };
  return async (request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, metered, ctx);
    const body = await response.text();
    await waitOnExecutionContext(ctx);
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(viaDefaultExport);
  const { code, pkce } = await signIn(new Browser(viaDefaultExport), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const modernCall = (token: string, name: string) =>
  new Request(`${ORIGIN}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": VERSION,
      "mcp-method": "tools/call",
      "mcp-name": name,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name,
        arguments: { message: "metered" },
        _meta: {
          "io.modelcontextprotocol/protocolVersion": VERSION,
          "io.modelcontextprotocol/clientInfo": { name: "meter", version: "1.0.0" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }),
  });

const count = (kind: string) => meterSnapshot()[kind]?.count ?? 0;
/** Every D1 statement on the request path that writes: single statements, batches, exec. */
const d1Writes = () => count("d1.write") + count("d1.batch") + count("d1.exec");

async function rowsOf(principal: string) {
  return (
    await env.DB.prepare(
      "SELECT action, decision, reason, outcome, delivery, result, stream, seq, hash FROM audit_log WHERE principal = ? ORDER BY id",
    )
      .bind(principal)
      .all<Record<string, unknown>>()
  ).results;
}

const D1_REFUSES_AUDIT_ROWS =
  "CREATE TRIGGER test_audit_offline BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit offline'); END";

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
});

describe("cost per decided tools/call: 0 D1 writes before the answer, 1 ledger write, 1 shipment after", () => {
  it("an allowed tools/call: no D1 write, one ledger append; then one row in D1", async () => {
    const erin = await tokenFor("erin");
    const send = meteredWorker();
    meterReset();
    const res = await send(modernCall(erin, "everything__echo"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 1, error: { message: expect.stringContaining("not available") } });
    expect({ d1Writes: d1Writes(), ledgerAppends: count("do.ledger.append") }).toEqual({
      d1Writes: 0,
      ledgerAppends: 1,
    });
    // The row is durable in erin's ledger; D1 gets it from there, after the answer.
    await shipAuditRows();
    const rows = await rowsOf("mock:erin");
    expect(rows).toEqual([
      {
        action: "tools/call",
        decision: "allow",
        reason: "granted",
        outcome: "transport_error",
        delivery: "unreachable",
        result: null,
        stream: expect.any(String),
        seq: 1,
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    ]);
    expect(await ledgerOf("mock:erin").state()).toMatchObject({ headSeq: 1, shippedSeq: 1, pending: 0 });
    expect(
      await env.DB.prepare("SELECT seq FROM audit_anchors WHERE stream = ?").bind(rows[0]?.stream).all(),
    ).toMatchObject({ results: [{ seq: 1 }] });
  });

  it("a denied tools/call: likewise, no D1 write before the answer, one ledger append, the denial in D1 after", async () => {
    const dave = await tokenFor("dave");
    const send = meteredWorker();
    meterReset();
    const res = await send(modernCall(dave, "everything__echo"));
    expect(await res.json()).toMatchObject({ error: { code: -32602, message: "Tool everything__echo not found" } });
    expect({ d1Writes: d1Writes(), ledgerAppends: count("do.ledger.append") }).toEqual({
      d1Writes: 0,
      ledgerAppends: 1,
    });
    await shipAuditRows();
    expect(await rowsOf("mock:dave")).toMatchObject([
      { decision: "deny", reason: "tool_not_granted", outcome: null, delivery: "not_sent", result: null, seq: 1 },
    ]);
  });

  it("D1 refusing every audit insert changes no answer: the answers never waited for D1, the rows wait in the ledgers", async () => {
    const [erin, dave] = [await tokenFor("erin"), await tokenFor("dave")];
    const send = meteredWorker();
    await env.DB.prepare(D1_REFUSES_AUDIT_ROWS).run();
    const allowed = await send(modernCall(erin, "everything__echo"));
    const denied = await send(modernCall(dave, "everything__echo"));
    expect(await allowed.json()).toMatchObject({ error: { message: expect.stringContaining("not available") } });
    expect(await denied.json()).toMatchObject({ error: { message: "Tool everything__echo not found" } });
    expect((await ledgerOf("mock:erin").state()).headSeq).toBe(1);
    expect((await ledgerOf("mock:dave").state()).headSeq).toBe(1);
    expect(await rowsOf("mock:erin")).toEqual([]);

    await env.DB.prepare("DROP TRIGGER test_audit_offline").run();
    await shipAuditRows();
    expect(await rowsOf("mock:erin")).toHaveLength(1);
    expect(await rowsOf("mock:dave")).toHaveLength(1);
  });
});
