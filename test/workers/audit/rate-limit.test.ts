import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { compilePolicy, POLICIES, type Policy } from "../../../policies/index.ts";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "../oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "../oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "../oauth/harness/workers.ts";
import { ledgerOf, shipAuditRows } from "./ledgers.ts";

/**
 * A role's rate limit counts the caller's calls in their ledger (worker/audit/ledger.ts), not in D1: rows
 * reach D1 after the answers, and a count of D1 would miss the calls just made. Shown with D1 refusing
 * every audit row, so no row of these calls is in D1 at all: the limit still holds at exactly its number.
 */

const send = viaDefaultExport;
const VERSION = "2026-07-28";

const LIMITED: Policy = {
  ...POLICIES.dev,
  roles: {
    ...POLICIES.dev.roles,
    limited: {
      description: "echo, three times a minute",
      grants: [{ server: "everything", level: "read", allow: ["echo"] }],
      rateLimitPerMinute: 3,
    },
  },
  bindings: [...POLICIES.dev.bindings, { subject: "group:mock:ratelimited", roles: ["limited"] }],
};

async function tokenFor(person: string, groups: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person, groups));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const call = async (token: string) =>
  (await (
    await send(
      new Request(`${ORIGIN}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": VERSION,
          "mcp-method": "tools/call",
          "mcp-name": "everything__echo",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: {
            name: "everything__echo",
            arguments: { message: "x" },
            _meta: {
              "io.modelcontextprotocol/protocolVersion": VERSION,
              "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        }),
      }),
    )
  ).json()) as { error?: { code: number; message: string } };

describe("rate limits count in the caller's ledger: exact at once, with no row in D1 yet", () => {
  it("three calls a minute: the fourth is refused (-32029) and audited, though D1 holds none of the three", async () => {
    await env.DB.batch((await compilePolicy(LIMITED)).statements.map((s) => env.DB.prepare(s)));
    const dave = await tokenFor("dave", "ratelimited");
    await env.DB.prepare(
      "CREATE TRIGGER test_audit_offline BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit offline'); END",
    ).run();
    // No bridge runs here: each allowed call ends as "not available", and is still an allowed call.
    for (let i = 0; i < 3; i++) expect((await call(dave)).error?.code).not.toBe(-32029);
    const refused = await call(dave);
    expect(refused.error?.code).toBe(-32029);
    expect(refused.error?.message).toContain("Rate limit reached: your roles allow 3 calls per minute");
    expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_log").first<number>("n")) ?? 0).toBe(0);
    expect(await ledgerOf("mock:dave").callsSince(Date.now() - 60_000)).toBe(3);

    await env.DB.prepare("DROP TRIGGER test_audit_offline").run();
    await shipAuditRows();
    const rows = (
      await env.DB.prepare("SELECT decision, reason FROM audit_log WHERE principal = 'mock:dave' ORDER BY seq").all()
    ).results;
    expect(rows).toEqual([
      ...Array.from({ length: 3 }, () => ({ decision: "allow", reason: "granted" })),
      { decision: "deny", reason: "rate_limited" },
    ]);
  });
});
