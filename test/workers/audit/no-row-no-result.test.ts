import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import type { AuditLedger } from "../../../worker/audit/ledger.ts";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "../oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "../oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "../oauth/harness/workers.ts";
import { ledgerOf, shipAuditRows } from "./ledgers.ts";

/**
 * SECURITY: no row, no result. Audit rows are written to the caller's ledger (worker/audit/ledger.ts)
 * before the answer; a ledger that cannot write fails the request exactly as the audit log being down
 * always did: a call's error, an admin request's 503. The fault is real: the ledger's own SQLite refuses
 * the insert (a trigger), as a storage failure would.
 */

const send = viaDefaultExport;
const VERSION = "2026-07-28";

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

async function ledgerRefusesWrites(principal: string): Promise<void> {
  const ledger = ledgerOf(principal);
  await ledger.state();
  await runInDurableObject(ledger, (_: AuditLedger, state) => {
    state.storage.sql.exec(
      "CREATE TRIGGER test_ledger_offline BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'ledger offline'); END",
    );
  });
}

const modernCall = (token: string, name: string) =>
  send(
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
        id: 7,
        method: "tools/call",
        params: {
          name,
          arguments: {},
          _meta: {
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      }),
    }),
  );

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
});

describe("no row, no result: a ledger that cannot write fails the request (fail closed)", () => {
  it("a denied tools/call is answered with the audit log's error, not the denial, and leaves no row", async () => {
    const dave = await tokenFor("dave");
    await ledgerRefusesWrites("mock:dave");
    const res = await modernCall(dave, "everything__echo");
    const body = (await res.json()) as { error?: { message: string } };
    expect(body.error?.message).toContain("The audit log is unavailable, so the call was not completed");
    // The storage's own text does not reach the client.
    expect(JSON.stringify(body)).not.toContain("ledger offline");
    await shipAuditRows();
    expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_log").first<number>("n")) ?? 0).toBe(0);
  });

  it("an allowed tools/call is answered with the audit log's error", async () => {
    const erin = await tokenFor("erin");
    await ledgerRefusesWrites("mock:erin");
    const body = (await (await modernCall(erin, "everything__echo")).json()) as { error?: { message: string } };
    expect(body.error?.message).toContain("The audit log is unavailable, so the call was not completed");
  });

  it("an admin request is a 503 with Retry-After, and the next one, once the ledger writes again, is recorded", async () => {
    const alice = await tokenFor("alice");
    await ledgerRefusesWrites("mock:alice");
    const refused = await send(new Request(`${ORIGIN}/admin/audit`, { headers: { authorization: `Bearer ${alice}` } }));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBeTruthy();
    await runInDurableObject(ledgerOf("mock:alice"), (_: AuditLedger, state) => {
      state.storage.sql.exec("DROP TRIGGER test_ledger_offline");
    });
    const ok = await send(new Request(`${ORIGIN}/admin/audit`, { headers: { authorization: `Bearer ${alice}` } }));
    expect(ok.status).toBe(200);
    await shipAuditRows();
    expect(
      (await env.DB.prepare("SELECT action, decision, seq FROM audit_log WHERE principal = 'mock:alice'").all())
        .results,
    ).toEqual([{ action: "admin:read", decision: "allow", seq: 1 }]);
  });
});
