import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient } from "./harness/oauth-client.ts";
import { viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

async function freshCode(person = "bob") {
  const client = await OAuthTestClient.register(send);
  const signedIn = await signIn(new Browser(send), client, mockUpstream(person));
  return { client, ...signedIn };
}

async function expectError(response: Response, status: number, error: string): Promise<void> {
  const body = (await response.json()) as { error?: string };
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(body.error).toBe(error);
}

function grantKeyOf(code: string): string {
  const [user, grant] = code.split(":");
  return `grant:${user}:${grant}`;
}

describe("a failed redemption burns the authorization code (OAuth 2.1 §4.1.3)", () => {
  it("a wrong code_verifier is refused, and then the right one is refused too", async () => {
    const { client, code, pkce } = await freshCode();
    await expectError(await client.exchange(code, "w".repeat(43)), 400, "invalid_grant");
    await expectError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
    expect(await env.OAUTH_KV.get(grantKeyOf(code))).toBeNull();
  });

  it("a missing code_verifier burns the code", async () => {
    const { client, code, pkce } = await freshCode();
    const response = await client.tokenRequest({
      grant_type: "authorization_code",
      code,
      redirect_uri: client.redirectUri,
      client_id: client.clientId,
    });
    expect(response.status).toBe(400);
    await expectError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
  });

  // Another client presenting the code burns it too: hostile.token.test.ts ("a code stolen by another client").

  it("another redirect_uri burns the code", async () => {
    const { client, code, pkce } = await freshCode();
    const wrong = await client.exchange(code, pkce.verifier, { redirect_uri: "https://evil.example/callback" });
    expect(wrong.status).toBe(400);
    await expectError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
  });

  it("a redeemed code presented again by another client revokes the tokens it issued (OAuth 2.1 §4.1.2)", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const thief = await OAuthTestClient.register(send);
    await expectError(await thief.exchange(code, pkce.verifier), 400, "invalid_grant");
    expect((await client.whoami(issued.access_token)).status).toBe(401);
    await expectError(await client.refresh(issued.refresh_token ?? ""), 400, "invalid_grant");
  });
});

describe("code burning: only the real code burns its grant", () => {
  it("a code with the real user and grant id but a wrong secret burns nothing", async () => {
    const { client, code, pkce } = await freshCode();
    const [user, grant] = code.split(":");
    const forged = `${user}:${grant}:${"A".repeat(32)}`;
    await expectError(await client.exchange(forged, pkce.verifier), 400, "invalid_grant");
    const thief = await OAuthTestClient.register(send);
    await expectError(await thief.exchange(forged, "w".repeat(43)), 400, "invalid_grant");
    await tokens(await client.exchange(code, pkce.verifier));
  });

  it("a code too long to name any grant is refused with invalid_grant, never a 500", async () => {
    const client = await OAuthTestClient.register(send);
    await expectError(await client.exchange(`${"x".repeat(600)}:grant:secret`, "w".repeat(43)), 400, "invalid_grant");
  });

  it("a request the library cannot read (JSON body) burns nothing", async () => {
    const { client, code, pkce } = await freshCode();
    const response = await send(
      new Request(`${client.origin}/token`, {
        method: "POST",
        body: JSON.stringify({ grant_type: "authorization_code", code, code_verifier: "w".repeat(43) }),
        headers: { "Content-Type": "application/json" },
      }),
    );
    expect(response.status).toBe(400);
    await tokens(await client.exchange(code, pkce.verifier));
  });

  it("a server-side failure (D1 unavailable: 503) does not burn the code; it redeems once D1 is back", async () => {
    const { client, code, pkce } = await freshCode();
    await env.DB.exec("ALTER TABLE blocks RENAME TO blocks_unavailable");
    try {
      await expectError(await client.exchange(code, pkce.verifier), 503, "temporarily_unavailable");
    } finally {
      await env.DB.exec("ALTER TABLE blocks_unavailable RENAME TO blocks");
    }
    await tokens(await client.exchange(code, pkce.verifier));
  });
});
