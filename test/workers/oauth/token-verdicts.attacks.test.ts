import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { forgetAllReused } from "../../../worker/authz/reuse-cache.ts";
import { TokenVerdicts } from "../../../worker/oauth/token-verdicts.ts";
import { adminBrowser, CONSOLE, csrfOf, pageOf, postForm, seedDevPolicy } from "../console/harness.ts";
import { meterReset } from "../metering/meter.ts";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./harness/oauth-client.ts";
import { headerSet, kvReads, meteredWorker, toolsList, verdictHarness } from "./harness/token-verdicts.ts";

/**
 * A hostile review of the reused token verdict (worker/oauth/token-verdicts.ts, issue 18): each test is one
 * attack on it, named after the attack, and shows it refused. The first one worked when the review was made
 * (a console sign-out did not empty the verdicts); the others were refused from the start.
 */

beforeEach(() => {
  forgetAllReused();
  meterReset();
});

describe("attacks on the reused token verdict", () => {
  it("console sign-out revokes the session's API tokens: /mcp refuses one at once in the isolate that signed out", async () => {
    // Claim (token-verdicts.ts): "In the isolate that serves the revocation, every verdict is dropped at once."
    // Sign-out (console.routes.ts) revokes the grant with revokeGrant; the verdicts must go with it (they did not
    // when this review was made).
    await seedDevPolicy();
    const send = meteredWorker();
    const browser = await adminBrowser("alice", send);
    const csrf = csrfOf((await pageOf(browser, `${CONSOLE}/token`)).text);
    const made = await postForm(browser, `${CONSOLE}/token`, { minutes: "5", csrf });
    const apiToken = (await made.text()).match(/<pre class="token" aria-label="API token">([^<]+)<\/pre>/)?.[1] ?? "";
    expect(apiToken).not.toBe("");
    // The API token is bound to the origin, so the library accepts it on /mcp too: its verdict is kept.
    expect((await send(toolsList(`Bearer ${apiToken}`))).status).toBe(200);
    const overview = await pageOf(browser, `${ORIGIN}/admin`);
    expect((await postForm(browser, `${CONSOLE}/sign-out`, { csrf: csrfOf(overview.text) })).status).toBe(200);
    // The library itself refuses it now (its records are gone); the cache must not answer for it.
    const fromCache = (await send(toolsList(`Bearer ${apiToken}`))).status;
    forgetAllReused();
    const fromLibrary = (await send(toolsList(`Bearer ${apiToken}`))).status;
    // Found by this review: the verdict outlived the sign-out's revocation by up to 1 s (fixed: forgettingOnRevoke).
    expect({ fromCache, fromLibrary }).toEqual({ fromCache: 401, fromLibrary: 401 });
  });

  it("duplicated Authorization headers each carrying the accepted token: refused as the library refuses them", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    const doubled = await send(toolsList([`Bearer ${token}`, `Bearer ${token}`]));
    expect(doubled.status).toBe(401);
    expect(doubled.headers.get("www-authenticate")).toContain("Bearer");
  });

  it("a disallowed Origin after a verdict was kept: 403 before the cache, no Origin reflected", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    const evil = await send(toolsList(`Bearer ${token}`, { origin: "https://evil.example" }));
    expect(evil.status).toBe(403);
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a token in its last second: its verdict is not kept, the library is asked on the next call", async () => {
    const { send, token } = await verdictHarness();
    // Make the token's own record end in the current second (the library accepts it until that second ends).
    if (Date.now() % 1000 > 700) await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)));
    const [userId, grantId] = token.split(":");
    const [key] = (await env.OAUTH_KV.list({ prefix: `token:${userId}:${grantId}:` })).keys;
    const record = (await env.OAUTH_KV.get(key?.name ?? "", { type: "json" })) as Record<string, unknown>;
    await env.OAUTH_KV.put(key?.name ?? "", JSON.stringify({ ...record, expiresAt: Math.floor(Date.now() / 1000) }));
    meterReset();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect(kvReads(), "each call in the token's last second asks the library").toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(401);
  });

  it("another person's token right after a verdict was kept: its own check, never the kept props", async () => {
    const erin = await verdictHarness("erin");
    expect((await erin.send(toolsList(`Bearer ${erin.token}`))).status).toBe(200);
    const client = await OAuthTestClient.register(erin.send);
    const { code, pkce } = await signIn(new Browser(erin.send), client, mockUpstream("frank"));
    const frank = (await tokens(await client.exchange(code, pkce.verifier))).access_token;
    meterReset();
    const answer = await erin.send(
      new Request(`${ORIGIN}/api/whoami`, { headers: { authorization: `Bearer ${frank}` } }),
    );
    expect(answer.status).toBe(200);
    expect(JSON.stringify(await answer.json())).toContain("frank");
    expect((await erin.send(toolsList(`Bearer ${frank}`))).status).toBe(200);
    expect(kvReads()).toBeGreaterThanOrEqual(2);
  });

  it("methods other than POST (GET, DELETE, HEAD) on a kept verdict: the same answer as through the library", async () => {
    const { send, token } = await verdictHarness();
    for (const method of ["GET", "DELETE", "HEAD"]) {
      const request = () =>
        new Request(`${ORIGIN}/mcp`, { method, headers: { authorization: `Bearer ${token}`, origin: ORIGIN } });
      forgetAllReused();
      expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
      const cached = await send(request());
      forgetAllReused();
      const library = await send(request());
      expect(cached.status, method).toBe(library.status);
      expect(headerSet(cached), method).toEqual(headerSet(library));
      expect(await cached.text(), method).toBe(await library.text());
    }
  });
});

describe("memory held by verdicts (controlled clock)", () => {
  it("one caller varying the query string cannot hold more than 1,000 verdicts", () => {
    const verdicts = new TokenVerdicts({ now: () => 1_000_000 });
    for (let i = 0; i < 1_500; i++) {
      const request = new Request(`${ORIGIN}/mcp?i=${i}`, { headers: { Authorization: "Bearer u:g:t" } });
      verdicts.beforeLibrary(request);
      verdicts.accepted(request, { props: {}, auth: { token: "u:g:t", expiresAt: 9_999_999_999 } });
    }
    expect(verdicts.size).toBe(1_000);
  });

  it("a long query string is never remembered: the memory held is bounded in bytes, not only in entries", () => {
    const verdicts = new TokenVerdicts({ now: () => 1_000_000 });
    const longQuery = "x".repeat(8_000);
    for (let i = 0; i < 10; i++) {
      const request = new Request(`${ORIGIN}/mcp?${longQuery}&i=${i}`, { headers: { Authorization: "Bearer u:g:t" } });
      verdicts.beforeLibrary(request);
      verdicts.accepted(request, { props: {}, auth: { token: "u:g:t", expiresAt: 9_999_999_999 } });
      expect(verdicts.recall(request)).toBeNull();
    }
    expect(verdicts.size).toBe(0);
  });
});
