import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient } from "./harness/oauth-client.ts";
import { viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

async function signedIn(person: string) {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  const issued = await tokens(await client.exchange(code, pkce.verifier));
  const [user, grant] = (issued.refresh_token ?? "").split(":");
  return { client, issued, refresh: issued.refresh_token ?? "", grantKey: `grant:${user}:${grant}` };
}

async function block(subject: string): Promise<void> {
  await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
    .bind(subject, "test", "mock:alice", Date.now())
    .run();
}

async function revokeBefore(subject: string, revokedBeforeMs: number): Promise<void> {
  await env.DB.prepare("INSERT INTO revocations (subject, revoked_before_ms, reason, revoked_by) VALUES (?, ?, ?, ?)")
    .bind(subject, revokedBeforeMs, "test", "mock:alice")
    .run();
}

async function unblock(subject: string): Promise<void> {
  await env.DB.prepare("DELETE FROM blocks WHERE subject = ?").bind(subject).run();
}

/** The refresh is refused with invalid_grant, and the library revoked the grant: lifting the block does not bring it back. */
async function expectRefusedAndRevoked(
  person: Awaited<ReturnType<typeof signedIn>>,
  description: RegExp,
): Promise<void> {
  const response = await person.client.refresh(person.refresh);
  const body = (await response.json()) as { error?: string; error_description?: string };
  expect(response.status, JSON.stringify(body)).toBe(400);
  expect(body.error).toBe("invalid_grant");
  expect(body.error_description).toMatch(description);
  expect(await env.OAUTH_KV.get(person.grantKey), "grant revoked").toBeNull();
}

describe("blocked or revoked people get no token at the token endpoint (kill switch, RFC 6749 §5.2 invalid_grant)", () => {
  it("a blocked principal cannot refresh, and the grant stays revoked after the block is lifted", async () => {
    const bob = await signedIn("bob");
    await block("mock:bob");
    await expectRefusedAndRevoked(bob, /blocked/);
    await unblock("mock:bob");
    expect((await bob.client.refresh(bob.refresh)).status).toBe(400);
  });

  it("a blocked verified email blocks its owner's refresh", async () => {
    const carol = await signedIn("carol");
    await block("email:carol@example.com");
    await expectRefusedAndRevoked(carol, /blocked/);
  });

  it("a blocked group blocks its members' refresh", async () => {
    const erin = await signedIn("erin");
    await block("group:mock:staff");
    await expectRefusedAndRevoked(erin, /blocked/);
  });

  it("a revocation whose cut-off is after the sign-in ends the refresh; one before it changes nothing", async () => {
    const bob = await signedIn("bob");
    const carol = await signedIn("carol");
    const signInTime = Date.now();
    await revokeBefore("mock:carol", signInTime - 60_000);
    await tokens(await carol.client.refresh(carol.refresh));
    await revokeBefore("mock:bob", signInTime + 1);
    await expectRefusedAndRevoked(bob, /revoked/);
  });

  it("someone else's block changes nothing", async () => {
    const bob = await signedIn("bob");
    await block("mock:carol");
    await block("group:mock:staff");
    await tokens(await bob.client.refresh(bob.refresh));
  });

  it("a block made between the sign-in and the code redemption refuses the code", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("bob"));
    await block("mock:bob");
    const response = await client.exchange(code, pkce.verifier);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_grant");
  });
});

describe("the standing check fails closed (D1 unavailable: never a token)", () => {
  it("a refresh while D1 cannot answer is 503 temporarily_unavailable with Retry-After; the grant survives", async () => {
    const bob = await signedIn("bob");
    await env.DB.exec("ALTER TABLE blocks RENAME TO blocks_unavailable");
    try {
      const response = await bob.client.refresh(bob.refresh);
      const body = (await response.json()) as { error?: string };
      expect(response.status, JSON.stringify(body)).toBe(503);
      expect(body.error).toBe("temporarily_unavailable");
      expect(response.headers.get("Retry-After")).toBe("5");
      expect(response.headers.get("Cache-Control")).toContain("no-store");
    } finally {
      await env.DB.exec("ALTER TABLE blocks_unavailable RENAME TO blocks");
    }
    const refreshed = await tokens(await bob.client.refresh(bob.refresh));
    expect((await bob.client.whoami(refreshed.access_token)).status).toBe(200);
  });
});
