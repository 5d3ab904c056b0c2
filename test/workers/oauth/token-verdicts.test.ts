import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { forgetAllReused, REUSE_MAX_AGE_MS } from "../../../worker/authz/reuse-cache.ts";
import { TokenVerdicts } from "../../../worker/oauth/token-verdicts.ts";
import { meterReset } from "../metering/meter.ts";
import { ORIGIN } from "./harness/oauth-client.ts";
import { headerSet, kvReads, toolsList, verdictHarness } from "./harness/token-verdicts.ts";

/**
 * Issue 18, goal 3: the OAuth library's verdict on a token is reused on the MCP paths for at most
 * REUSE_MAX_AGE_MS per isolate (worker/oauth/token-verdicts.ts). Each rule of that file is a test here:
 * the library is skipped only for a token it accepted for the exact URL within the bound, never past the
 * token's expiry, never for a header it would refuse, and a revocation in this isolate holds at once.
 * The Worker is the product's (createWorker) with its KV counted, so "the library was asked" is a KV read.
 */

beforeEach(() => {
  forgetAllReused();
  meterReset();
});

describe("token verdicts reused on the MCP paths (issue 18)", () => {
  it("a second call within the bound skips the library (no KV read) and answers exactly as the library path does, CORS headers included", async () => {
    const { send, token } = await verdictHarness();
    const origin = ORIGIN;
    forgetAllReused();
    meterReset();
    const first = await send(toolsList(`Bearer ${token}`, { origin }));
    expect(first.status).toBe(200);
    expect(kvReads()).toBe(1);
    const second = await send(toolsList(`Bearer ${token}`, { origin }));
    expect(second.status).toBe(200);
    expect(kvReads()).toBe(1);
    expect(headerSet(second)).toEqual(headerSet(first));
    expect(second.headers.get("access-control-allow-origin")).toBe(origin);
    const body = await first.text();
    expect(JSON.parse(body)).toHaveProperty("result.tools");
    expect(await second.text()).toBe(body);
  });

  it("verdicts expire: after REUSE_MAX_AGE_MS the library is asked again", async () => {
    const { send, token } = await verdictHarness();
    forgetAllReused();
    meterReset();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, REUSE_MAX_AGE_MS + 20));
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect(kvReads()).toBe(2);
  });

  it("token differing in one character: refused by the library even right after the real one was accepted", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    const last = token.at(-1) === "A" ? "B" : "A";
    const forged = await send(toolsList(`Bearer ${token.slice(0, -1)}${last}`));
    expect(forged.status).toBe(401);
    expect(forged.headers.get("www-authenticate")).toContain("invalid_token");
  });

  it("malformed Authorization header carrying an accepted token: refused as the library refuses it, never served from the cache", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    for (const header of [`Bearer ${token},`, `Bearer ${token} extra`, `Basic ${token}`, `Bearer:${token}`, token]) {
      const refused = await send(toolsList(header));
      expect(refused.status, header.replace(token, "<token>")).toBe(401);
    }
  });

  it("revocation by the client (RFC 7009) in this isolate: the next call is refused at once", async () => {
    const { send, client, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect((await client.revoke(token)).status).toBe(200);
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(401);
  });

  it("refresh in this isolate: verdicts are asked again (a rotation may end tokens)", async () => {
    const { send, client, token, refreshToken } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    meterReset();
    expect((await client.refresh(refreshToken)).status).toBe(200);
    const reads = kvReads();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect(kvReads()).toBe(reads + 1);
  });

  it("revoked in another isolate: accepted at most REUSE_MAX_AGE_MS more here, then refused", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    // Another isolate's revocation: the library's record gone from KV, this isolate not told.
    const [userId, grantId] = token.split(":");
    for (const key of (await env.OAUTH_KV.list({ prefix: `token:${userId}:${grantId}:` })).keys) {
      await env.OAUTH_KV.delete(key.name);
    }
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, REUSE_MAX_AGE_MS + 20));
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(401);
  });

  it("kill switch in this isolate (forgetAllReused, as the admin API calls it): the library is asked again at once", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    forgetAllReused();
    meterReset();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    expect(kvReads()).toBe(1);
  });

  it("other protected paths never reuse a verdict: /api/whoami asks the library every time", async () => {
    const { send, client, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    meterReset();
    expect((await client.whoami(token)).status).toBe(200);
    expect((await client.whoami(token)).status).toBe(200);
    expect(kvReads()).toBe(2);
  });

  it("another URL (a query string) is a miss: the library checks the audience for that URL", async () => {
    const { send, token } = await verdictHarness();
    expect((await send(toolsList(`Bearer ${token}`))).status).toBe(200);
    meterReset();
    await send(toolsList(`Bearer ${token}`, { url: `${ORIGIN}/mcp?x=1` }));
    expect(kvReads()).toBe(1);
  });
});

describe("TokenVerdicts (the rules on a controlled clock)", () => {
  const request = (token: string, url = `${ORIGIN}/mcp`) =>
    new Request(url, { headers: { Authorization: `Bearer ${token}` } });
  const nowSeconds = 1_800_000_000;
  const auth = (token: string, expiresAt = nowSeconds + 3600) => ({ token, expiresAt, clientId: "c" });

  it("never past the token's own expiry", () => {
    let clock = nowSeconds * 1000 - 300;
    const verdicts = new TokenVerdicts({ now: () => clock });
    const accepted = request("u:g:t");
    verdicts.beforeLibrary(accepted);
    verdicts.accepted(accepted, { props: { p: 1 }, auth: auth("u:g:t", nowSeconds) });
    expect(verdicts.recall(request("u:g:t"))).not.toBeNull();
    clock = nowSeconds * 1000;
    expect(verdicts.recall(request("u:g:t"))).toBeNull();
  });

  it("age counts from before the library's check; unusable at the bound", () => {
    let clock = 10_000;
    const verdicts = new TokenVerdicts({ now: () => clock });
    const accepted = request("u:g:t");
    verdicts.beforeLibrary(accepted);
    clock += 40;
    verdicts.accepted(accepted, { props: {}, auth: auth("u:g:t", 9_999_999_999) });
    clock = 10_000 + REUSE_MAX_AGE_MS - 1;
    expect(verdicts.recall(request("u:g:t"))).not.toBeNull();
    clock = 10_000 + REUSE_MAX_AGE_MS;
    expect(verdicts.recall(request("u:g:t"))).toBeNull();
  });

  it("a check under way when everything is forgotten is not kept", () => {
    const verdicts = new TokenVerdicts({ now: () => 5_000 });
    const accepted = request("u:g:t");
    verdicts.beforeLibrary(accepted);
    verdicts.forget();
    verdicts.accepted(accepted, { props: {}, auth: auth("u:g:t", 9_999_999_999) });
    expect(verdicts.recall(request("u:g:t"))).toBeNull();
  });

  it("nothing is kept for a request that did not go to the library first, or whose verdict names another token", () => {
    const verdicts = new TokenVerdicts({ now: () => 5_000 });
    verdicts.accepted(request("u:g:t"), { props: {}, auth: auth("u:g:t", 9_999_999_999) });
    expect(verdicts.size).toBe(0);
    const mismatched = request("u:g:t");
    verdicts.beforeLibrary(mismatched);
    verdicts.accepted(mismatched, { props: {}, auth: auth("u:g:other", 9_999_999_999) });
    expect(verdicts.size).toBe(0);
  });
});
