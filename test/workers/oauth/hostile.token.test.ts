import { afterEach, describe, expect, it, vi } from "vitest";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, type Send } from "./harness/oauth-client.ts";
import { viaDefaultExport, workerWith } from "./harness/workers.ts";

const send = viaDefaultExport;

afterEach(() => vi.useRealTimers());

async function freshCode(c?: OAuthTestClient, via: Send = send) {
  const client = c ?? (await OAuthTestClient.register(via));
  const signedIn = await signIn(new Browser(via), client, mockUpstream("bob"));
  return { client, ...signedIn };
}

async function expectOAuthError(response: Response, status: number, error: string): Promise<void> {
  const body = (await response.json()) as { error?: string };
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(body.error).toBe(error);
  expect(response.headers.get("Cache-Control")).toContain("no-store");
}

describe("authorization codes (OAuth 2.1 §4.1.3): replay and theft", () => {
  it("a code works once; replaying it fails and revokes what it issued (OAuth 2.1 §4.1.3)", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    await expectOAuthError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
    expect((await client.whoami(issued.access_token)).status).toBe(401);
  });

  it("a code stolen by another client is refused, and burned for its own client too (OAuth 2.1 §4.1.3)", async () => {
    const { client, code, pkce } = await freshCode();
    const thief = await OAuthTestClient.register(send);
    await expectOAuthError(await thief.exchange(code, pkce.verifier), 400, "invalid_grant");
    // A failed redemption uses the code (worker/oauth/token-guard.ts; more in hostile.code.test.ts).
    await expectOAuthError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
  });

  it("a forged code with a valid user:grant prefix is refused (workers-oauth-provider PR #225)", async () => {
    const { client, code, pkce } = await freshCode();
    const [user, grant] = code.split(":");
    await expectOAuthError(await client.exchange(`${user}:${grant}:forged`, pkce.verifier), 400, "invalid_grant");
    await tokens(await client.exchange(code, pkce.verifier));
  });

  it("another redirect_uri at the token endpoint is refused", async () => {
    const { client, code, pkce } = await freshCode();
    const response = await client.exchange(code, pkce.verifier, { redirect_uri: "https://evil.example/callback" });
    expect([400, 401]).toContain(response.status);
    expect(((await response.json()) as { error: string }).error).toMatch(/invalid_grant|invalid_request/);
  });
});

describe("PKCE at the token endpoint (RFC 7636 §4.6): bypass attempts", () => {
  it("a wrong verifier is refused", async () => {
    const { client, code } = await freshCode();
    await expectOAuthError(await client.exchange(code, "w".repeat(43)), 400, "invalid_grant");
  });

  it("a missing verifier is refused", async () => {
    const { client, code } = await freshCode();
    const response = await client.tokenRequest({
      grant_type: "authorization_code",
      code,
      redirect_uri: client.redirectUri,
      client_id: client.clientId,
    });
    expect(response.status).toBe(400);
  });
});

describe("token endpoint request shape", () => {
  it("a JSON body (wrong Content-Type) is refused, not a 500 (workers-oauth-provider 0.8.3 #240)", async () => {
    const { client, code, pkce } = await freshCode();
    const response = await send(
      new Request(`${ORIGIN}/token`, {
        method: "POST",
        body: JSON.stringify({
          grant_type: "authorization_code",
          code,
          code_verifier: pkce.verifier,
          client_id: client.clientId,
        }),
        headers: { "Content-Type": "application/json" },
      }),
    );
    await expectOAuthError(response, 400, "invalid_request");
    await tokens(await client.exchange(code, pkce.verifier)); // the code was not consumed
  });

  it("a repeated parameter is refused (OAuth 2.1 §3.1)", async () => {
    const { client, code, pkce } = await freshCode();
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      code_verifier: pkce.verifier,
      client_id: client.clientId,
    });
    body.append("code", code);
    const response = await send(
      new Request(`${ORIGIN}/token`, {
        method: "POST",
        body: body.toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }),
    );
    await expectOAuthError(response, 400, "invalid_request");
  });

  it("a resource other than this server is refused with invalid_target (RFC 8707), and the code is burned (OAuth 2.1 §4.1.3)", async () => {
    const { client, code, pkce } = await freshCode();
    await expectOAuthError(
      await client.exchange(code, pkce.verifier, { resource: "https://other.example" }),
      400,
      "invalid_target",
    );
    await expectOAuthError(await client.exchange(code, pkce.verifier), 400, "invalid_grant");
  });

  it("unsupported grants are refused (no password, no client_credentials)", async () => {
    const client = await OAuthTestClient.register(send);
    for (const grant of ["password", "client_credentials", "implicit"]) {
      const response = await client.tokenRequest({
        grant_type: grant,
        client_id: client.clientId,
        username: "a",
        password: "b",
      });
      expect(response.status).toBe(400);
    }
  });
});

describe("bearer tokens at the protected API (RFC 6750, RFC 8707, MCP authorization)", () => {
  it("no token: 401 with a challenge naming the resource metadata (RFC 9728 §5.1)", async () => {
    const response = await send(new Request(`${ORIGIN}/api/whoami`));
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toBe(
      `Bearer realm="OAuth", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource", scope="mcp"`,
    );
  });

  it("a token in the query string is ignored (OAuth 2.1 §5.1.1, MCP: MUST NOT be in the URI)", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const response = await send(
      new Request(`${ORIGIN}/api/whoami?access_token=${encodeURIComponent(issued.access_token)}`),
    );
    expect(response.status).toBe(401);
  });

  it("a token in a form body is ignored", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const response = await send(
      new Request(`${ORIGIN}/api/whoami`, {
        method: "POST",
        body: new URLSearchParams({ access_token: issued.access_token }).toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }),
    );
    expect(response.status).toBe(401);
  });

  it("a token issued for another audience (another deployment sharing the store) is refused", async () => {
    const otherOrigin = "http://127.0.0.2:8787";
    const other = workerWith({ HATAGO_LOGIN_PROVIDER: "mock", HATAGO_PUBLIC_URL: otherOrigin });
    const otherClient = await OAuthTestClient.register(other, {}, otherOrigin);
    const { code, pkce } = await signIn(new Browser(other), otherClient, async (browser, location) => {
      const picker = await browser.get(location);
      const action = (await picker.text()).match(/<form[^>]*action="([^"]*)"/)?.[1]?.replaceAll("&amp;", "&") ?? "";
      return browser.postForm(`${otherOrigin}${action}`, { identity: "alice" }, { Origin: otherOrigin });
    });
    const foreign = await tokens(await otherClient.exchange(code, pkce.verifier));
    expect(foreign.resource).toBe(otherOrigin);
    expect((await otherClient.whoami(foreign.access_token)).status).toBe(200);
    const here = await send(
      new Request(`${ORIGIN}/api/whoami`, { headers: { Authorization: `Bearer ${foreign.access_token}` } }),
    );
    expect(here.status).toBe(401);
    expect(here.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
  });

  it("an expired token is refused", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + (issued.expires_in + 1) * 1000);
    const response = await client.whoami(issued.access_token);
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
  });

  it("a revoked token is refused", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    expect((await client.revoke(issued.access_token)).status).toBe(200);
    expect((await client.whoami(issued.access_token)).status).toBe(401);
  });

  it("another client cannot revoke my token (RFC 7009 §2.1, workers-oauth-provider 0.8.0 #188)", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const other = await OAuthTestClient.register(send);
    await other.revoke(issued.access_token);
    await other.revoke(issued.refresh_token ?? "");
    expect((await client.whoami(issued.access_token)).status).toBe(200);
    await tokens(await client.refresh(issued.refresh_token ?? ""));
  });

  it("another client cannot use my refresh token", async () => {
    const { client, code, pkce } = await freshCode();
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const other = await OAuthTestClient.register(send);
    expect((await other.refresh(issued.refresh_token ?? "")).status).toBe(400);
  });

  it("garbage, oversized and wrong-scheme Authorization headers get 401, never 500", async () => {
    for (const value of ["Bearer", "Bearer a:b:c", `Bearer ${"x".repeat(8_000)}`, "Basic dXNlcjpwYXNz", "Bearer a b"]) {
      const response = await send(new Request(`${ORIGIN}/api/whoami`, { headers: { Authorization: value } }));
      expect(response.status, value.slice(0, 20)).toBe(401);
    }
  });
});
