import { env } from "cloudflare:test";
import oauthLibrary from "@cloudflare/workers-oauth-provider/package.json" with { type: "json" };
import { describe, expect, it } from "vitest";
import { GRANT_RECORD_CHECKED_WITH, GrantRecord } from "../../../worker/oauth/grant-record.ts";
import { shipAuditRows } from "../audit/ledgers.ts";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, type TokenResponse } from "./harness/oauth-client.ts";
import { kvKeys, viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

async function signedIn(person = "bob") {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  const issued = await tokens(await client.exchange(code, pkce.verifier));
  return { client, code, issued, refresh: issued.refresh_token ?? "" };
}

async function expectInvalidGrant(response: Response): Promise<void> {
  const body = (await response.json()) as { error?: string };
  expect(response.status, JSON.stringify(body)).toBe(400);
  expect(body.error).toBe("invalid_grant");
  expect(response.headers.get("Cache-Control")).toContain("no-store");
}

/** SHA-256 hex, written here independently of the Worker: what the library stores for a code or token. */
async function sha256Hex(s: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function grantKeyOf(token: string): string {
  const [user, grant] = token.split(":");
  return `grant:${user}:${grant}`;
}

async function auditRows(action: string): Promise<Record<string, unknown>[]> {
  await shipAuditRows();
  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE action = ? ORDER BY id").bind(action).all();
  return results;
}

/** Every token of a grant is dead: its refresh token, its access tokens, its KV records. */
async function expectGrantRevoked(client: OAuthTestClient, refresh: string, accessTokens: TokenResponse[]) {
  expect(await env.OAUTH_KV.get(grantKeyOf(refresh)), "grant record").toBeNull();
  expect(await kvKeys(`token:${grantKeyOf(refresh).slice("grant:".length)}:`), "token records").toEqual([]);
  for (const t of accessTokens) expect((await client.whoami(t.access_token)).status, "access token").toBe(401);
  await expectInvalidGrant(await client.refresh(refresh));
}

describe("refresh token reuse detection (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1)", () => {
  it("a rotated-out refresh token presented again revokes the whole grant, is refused and audited", async () => {
    const { client, issued, refresh: r1 } = await signedIn("bob");
    const rotated = await tokens(await client.refresh(r1));
    const r2 = rotated.refresh_token ?? "";

    await expectInvalidGrant(await client.refresh(r1));

    await expectGrantRevoked(client, r2, [issued, rotated]);
    expect(await auditRows("oauth:refresh_reuse")).toMatchObject([
      {
        principal: "mock:bob",
        subject: "mock:bob",
        client_id: client.clientId,
        decision: "deny",
        reason: "refresh_token_reuse",
        session_id: null,
      },
    ]);
  });

  it("a thief who refreshes first loses the grant when the real client presents the same token", async () => {
    const { client, refresh: r1 } = await signedIn("bob");
    const thiefs = await tokens(await client.refresh(r1)); // the stolen token, used first
    await expectInvalidGrant(await client.refresh(r1)); // the real client, a moment later
    await expectGrantRevoked(client, thiefs.refresh_token ?? "", [thiefs]);
  });

  it("the library's grace for a lost refresh response is given up: the client signs in again", async () => {
    const { client, refresh: r1 } = await signedIn("carol");
    await client.refresh(r1); // its response never reaches the client
    await expectInvalidGrant(await client.refresh(r1));
    expect(await auditRows("oauth:refresh_reuse")).toMatchObject([{ principal: "mock:carol" }]);
    await signedIn("carol"); // signing in again works
  });

  it("the current refresh token keeps rotating normally, with no reuse recorded", async () => {
    const { client, refresh: r1 } = await signedIn("bob");
    const r2 = (await tokens(await client.refresh(r1))).refresh_token ?? "";
    const r3 = (await tokens(await client.refresh(r2))).refresh_token ?? "";
    const third = await tokens(await client.refresh(r3));
    expect((await client.whoami(third.access_token)).status).toBe(200);
    expect(await auditRows("oauth:refresh_reuse")).toEqual([]);
  });
});

describe("refresh token reuse detection: bypass and collateral attempts revoke nothing", () => {
  it("a token with someone's real user and grant id but a wrong secret is refused and revokes nothing", async () => {
    const { client, issued, refresh: r1 } = await signedIn("bob");
    const [user, grant] = r1.split(":");
    const attacker = await OAuthTestClient.register(send);
    await expectInvalidGrant(await attacker.refresh(`${user}:${grant}:${"A".repeat(32)}`));
    await expectInvalidGrant(await client.refresh(`${user}:${grant}:${"A".repeat(32)}`));
    expect(await env.OAUTH_KV.get(grantKeyOf(r1))).not.toBeNull();
    expect((await client.whoami(issued.access_token)).status).toBe(200);
    await tokens(await client.refresh(r1));
    expect(await auditRows("oauth:refresh_reuse")).toEqual([]);
  });

  it("a token rotated out two refreshes ago matches no stored hash: refused, nothing revoked", async () => {
    const { client, refresh: r1 } = await signedIn("bob");
    const r2 = (await tokens(await client.refresh(r1))).refresh_token ?? "";
    const r3 = (await tokens(await client.refresh(r2))).refresh_token ?? "";
    await expectInvalidGrant(await client.refresh(r1));
    await tokens(await client.refresh(r3));
  });

  it("a repeated refresh_token parameter is refused by the library and revokes nothing", async () => {
    const { client, refresh: r1 } = await signedIn("bob");
    const r2 = (await tokens(await client.refresh(r1))).refresh_token ?? "";
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: r1, client_id: client.clientId });
    body.append("refresh_token", r1);
    const response = await send(
      new Request(`${client.origin}/token`, {
        method: "POST",
        body: body.toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }),
    );
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_request");
    await tokens(await client.refresh(r2));
  });

  it("malformed and oversized refresh requests are refused, never a 500", async () => {
    const client = await OAuthTestClient.register(send);
    for (const token of ["", "a", "a:b", "a:b:c:d", `${"x".repeat(600)}:g:s`, "%ZZ:grant:secret"]) {
      const response = await client.refresh(token);
      expect(response.status, token.slice(0, 20)).toBe(400);
    }
    const huge = await client.tokenRequest({ grant_type: "refresh_token", refresh_token: "x".repeat(70_000) });
    expect(huge.status).toBe(413);
  });

  it("revoking (RFC 7009) a token too long to be one we issued is a 200 like any invalid token, not a 500", async () => {
    const client = await OAuthTestClient.register(send);
    for (const token of [`${"x".repeat(600)}:g:s`, `u:${"g".repeat(500)}:s`, "a:b:c"]) {
      const response = await client.revoke(token);
      expect(response.status, token.slice(0, 20)).toBe(200);
    }
  });
});

describe("the grant record our token checks read is the library's (workers-oauth-provider 1.2.3)", () => {
  it("the installed library is the version the checks were written against (re-read worker/oauth/grant-record.ts on an upgrade)", () => {
    expect(oauthLibrary.version).toBe(GRANT_RECORD_CHECKED_WITH);
  });

  it("codes and refresh tokens are stored as SHA-256 hex under the fields token-guard.ts reads", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("bob"));
    const [user, grantId] = code.split(":");
    const read = async () => GrantRecord.parse(await env.OAUTH_KV.get(grantKeyOf(code), { type: "json" }));

    const beforeRedemption = await read();
    expect(beforeRedemption).toMatchObject({ id: grantId, userId: user, clientId: client.clientId });
    expect(beforeRedemption.authCodeId).toBe(await sha256Hex(code));
    expect(beforeRedemption.refreshTokenId).toBeUndefined();

    const r1 = (await tokens(await client.exchange(code, pkce.verifier))).refresh_token ?? "";
    expect(grantKeyOf(r1)).toBe(grantKeyOf(code));
    const afterRedemption = await read();
    expect(afterRedemption.authCodeId, "kept after redemption (replays burn the grant)").toBe(await sha256Hex(code));
    expect(afterRedemption.refreshTokenId).toBe(await sha256Hex(r1));
    expect(afterRedemption.previousRefreshTokenId).toBeUndefined();

    const r2 = (await tokens(await client.refresh(r1))).refresh_token ?? "";
    const afterRefresh = await read();
    expect(afterRefresh.refreshTokenId).toBe(await sha256Hex(r2));
    expect(afterRefresh.previousRefreshTokenId).toBe(await sha256Hex(r1));
  });
});
