import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  bridgeConnectionPath,
  importBridgeKey,
  mintBridgeCredential,
} from "../../../container/src/contract.ts";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import { importKeyRing, openTokenSet } from "../../../worker/connect/token-seal.ts";
import { shipAuditRows } from "../audit/ledgers.ts";
import { FakeNetwork } from "../oauth/fakes/fake-network.ts";
import { Browser, decodeEntities } from "../oauth/harness/browser.ts";
import { mockUpstream } from "../oauth/harness/flow.ts";
import { ORIGIN, type Send } from "../oauth/harness/oauth-client.ts";
import { workerWith } from "../oauth/harness/workers.ts";
import { FAKE_UPSTREAM, FakeUpstreamOAuth } from "./fake-upstream-oauth.ts";

/** A test-only key (never used by any deployment): 32 bytes, base64. */
const KEY_B64 = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i + 1)));
const SETTINGS = {
  HATAGO_CONNECT_PROVIDERS: "demo",
  HATAGO_CONNECT_DEMO_KIND: "oauth2",
  HATAGO_CONNECT_DEMO_CLIENT_ID: "hatago-test",
  HATAGO_CONNECT_DEMO_CLIENT_SECRET: "fake-secret",
  HATAGO_CONNECT_DEMO_AUTHORIZATION_URL: `${FAKE_UPSTREAM}/authorize`,
  HATAGO_CONNECT_DEMO_TOKEN_URL: `${FAKE_UPSTREAM}/token`,
  HATAGO_CONNECT_DEMO_TIMEOUT_MS: "1000",
  HATAGO_CONNECTION_KEYS: `k1:${KEY_B64}`,
  // The bridge's connection route exists on the Worker in this mode only (dev); no bridge listens on port 9.
  HATAGO_INSECURE_DEV_BRIDGE_URL: "http://127.0.0.1:9",
};

let upstream: FakeUpstreamOAuth;
let network: FakeNetwork;
let send: Send;

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
  upstream = new FakeUpstreamOAuth();
  network = new FakeNetwork([upstream]);
  send = workerWith(SETTINGS);
});
afterEach(() => network.restore());

/** A browser signed in to /connect as `person` (mock login). */
async function signedIn(person: string): Promise<Browser> {
  const browser = new Browser(send);
  const start = await browser.get(`${ORIGIN}/connect/sign-in?next=/connect/demo`);
  expect(start.status).toBe(302);
  const login = await mockUpstream(person)(browser, start.headers.get("Location") ?? "");
  expect(login.status).toBe(302);
  const done = await browser.get(login.headers.get("Location") ?? "");
  expect(done.status).toBe(303);
  expect(done.headers.get("Location")).toBe("/connect/demo");
  return browser;
}

const csrfOf = (page: string) => decodeEntities(page.match(/name="csrf" value="([^"]*)"/)?.[1] ?? "");
const post = (browser: Browser, url: string, fields: Record<string, string>) =>
  browser.postForm(url, fields, { Origin: ORIGIN, "Sec-Fetch-Site": "same-origin" });

/** Up to the upstream's consent: our page, then the redirect to the upstream. Returns the authorization URL. */
async function startConnect(browser: Browser): Promise<string> {
  const page = await browser.get(`${ORIGIN}/connect/demo`);
  expect(page.status).toBe(200);
  const text = await page.text();
  expect(text).toContain("whoami-upstream");
  expect(text).toContain("profile");
  const go = await post(browser, `${ORIGIN}/connect/demo`, { csrf: csrfOf(text) });
  expect(go.status).toBe(303);
  const location = go.headers.get("Location") ?? "";
  expect(location.startsWith(`${FAKE_UPSTREAM}/authorize?`)).toBe(true);
  return location;
}

async function connect(browser: Browser, login: string): Promise<Response> {
  const approved = await upstream.approve(await startConnect(browser), login);
  expect(approved.redirectUri).toBe(`${ORIGIN}/connect/demo/callback`);
  return browser.get(`${approved.redirectUri}?code=${approved.code}&state=${approved.state}`);
}

async function rows(): Promise<Record<string, unknown>[]> {
  return (await env.DB.prepare("SELECT * FROM connections ORDER BY principal").all()).results;
}

/** The bridge's request for (server, principal)'s token, as the bridge makes it. */
async function bridgeAsks(principal: string, tool: string | null = "whoami") {
  const key = await importBridgeKey(env.HATAGO_BRIDGE_SECRET);
  const credential = await mintBridgeCredential(key, { principal, server: "whoami-upstream", use: "connection" });
  const url = new URL(bridgeConnectionPath("whoami-upstream"), ORIGIN);
  if (tool) url.searchParams.set("tool", tool);
  const response = await send(new Request(url, { headers: { [BRIDGE_CREDENTIAL_HEADER]: credential } }));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("connect flow against a fake upstream (issue 17)", () => {
  it("bob connects: our page names the servers and scopes, PKCE upstream, a connected page, a sealed row", async () => {
    const bob = await signedIn("bob");
    const done = await connect(bob, "bob-upstream");
    expect(done.status).toBe(200);
    expect(await done.text()).toContain("connected");
    const [row] = await rows();
    expect(row).toMatchObject({ principal: "mock:bob", provider: "demo", key_id: "k1", scopes: "profile" });
    // Stored value is ciphertext: no token, no login in it.
    expect(String(row?.sealed)).not.toContain("fake-at-");
    expect(String(row?.sealed)).not.toContain("bob-upstream");
    await shipAuditRows();
    const audit = (await env.DB.prepare("SELECT * FROM audit_log WHERE action LIKE 'connection:%'").all()).results;
    expect(audit).toMatchObject([{ action: "connection:connect", principal: "mock:bob", subject: "demo" }]);
    expect(JSON.stringify(audit)).not.toContain("fake-at-");
  });

  it("the bridge gets bob's token for bob only; the call is audited without the token", async () => {
    const bob = await signedIn("bob");
    await connect(bob, "bob-upstream");
    const asked = await bridgeAsks("mock:bob");
    expect(asked.status).toBe(200);
    expect(asked.body.status).toBe("connected");
    expect(upstream.access.get(String(asked.body.token))?.login).toBe("bob-upstream");
    const carol = await bridgeAsks("email:carol@example.com");
    expect(carol.body).toMatchObject({ status: "missing", connectUrl: `${ORIGIN}/connect/demo` });
    expect(String(carol.body.message)).toContain(`${ORIGIN}/connect/demo`);
    await shipAuditRows();
    const use = (await env.DB.prepare("SELECT * FROM audit_log WHERE action = 'connection:use'").all()).results;
    expect(use).toMatchObject([{ principal: "mock:bob", server: "whoami-upstream", tool: "whoami" }]);
    expect(JSON.stringify(use)).not.toContain(String(asked.body.token));
  });

  it("disconnect deletes the row (and is audited)", async () => {
    const bob = await signedIn("bob");
    await connect(bob, "bob-upstream");
    const list = await (await bob.get(`${ORIGIN}/connect`)).text();
    const gone = await post(bob, `${ORIGIN}/connect/demo/disconnect`, { csrf: csrfOf(list) });
    expect(gone.status).toBe(303);
    expect(await rows()).toEqual([]);
    expect((await bridgeAsks("mock:bob")).body.status).toBe("missing");
  });
});

describe("storage: ciphertext bound to (principal, provider) as additional authenticated data", () => {
  it("a row copied to another principal does not decrypt for them", async () => {
    await connect(await signedIn("bob"), "bob-upstream");
    const [row] = await rows();
    const ring = await importKeyRing([{ id: "k1", raw: Uint8Array.from(atob(KEY_B64), (c) => c.charCodeAt(0)) }]);
    const sealed = { keyId: String(row?.key_id), sealed: String(row?.sealed) };
    expect(await openTokenSet(ring, "mock:bob", "demo", sealed)).not.toBeNull();
    expect(await openTokenSet(ring, "mock:alice", "demo", sealed)).toBeNull();
    expect(await openTokenSet(ring, "mock:bob", "other", sealed)).toBeNull();
    await env.DB.prepare(
      "INSERT INTO connections SELECT 'mock:alice', provider, key_id, sealed, expires_at_ms, scopes, subjects, connected_at_ms, updated_at_ms FROM connections WHERE principal = 'mock:bob'",
    ).run();
    expect((await bridgeAsks("mock:alice")).body.status).toBe("missing");
  });
});

describe("expiry", () => {
  it("a token near expiry is refreshed before it is handed to the process", async () => {
    upstream.expiresInSeconds = 90; // inside the refresh margin (120 s)
    await connect(await signedIn("bob"), "bob-upstream");
    const fromCode = [...upstream.access.keys()];
    expect(fromCode).toHaveLength(1);
    const handed = String((await bridgeAsks("mock:bob")).body.token);
    // The code's token was refreshed before its first use: the process never gets one about to expire.
    expect(fromCode).not.toContain(handed);
    expect(upstream.access.get(handed)?.login).toBe("bob-upstream");
    expect(upstream.access.size).toBe(2);
  });

  it("a refused refresh disconnects with a clear message, audited as refresh_failed", async () => {
    upstream.expiresInSeconds = 90;
    await connect(await signedIn("bob"), "bob-upstream");
    upstream.mode = "refuse_refresh";
    const asked = await bridgeAsks("mock:bob");
    expect(asked.body.status).toBe("missing");
    expect(String(asked.body.message)).toContain("refused to renew");
    expect(await rows()).toEqual([]);
    await shipAuditRows();
    const audit = (
      await env.DB.prepare("SELECT action, reason FROM audit_log WHERE action = 'connection:refresh_failed'").all()
    ).results;
    expect(audit).toEqual([{ action: "connection:refresh_failed", reason: "refresh_refused" }]);
  });

  it("an unreachable upstream at refresh keeps the connection and answers 503", async () => {
    upstream.expiresInSeconds = 90;
    await connect(await signedIn("bob"), "bob-upstream");
    upstream.mode = "5xx";
    expect((await bridgeAsks("mock:bob")).status).toBe(503);
    expect(await rows()).toHaveLength(1);
  });
});

describe("hostile inputs at the connect callback (as for login)", () => {
  it("state replay: the second use of a callback is refused and stores nothing new", async () => {
    const bob = await signedIn("bob");
    const approved = await upstream.approve(await startConnect(bob), "bob-upstream");
    const url = `${approved.redirectUri}?code=${approved.code}&state=${approved.state}`;
    const keep = new Browser(send);
    bob.cloneInto(keep);
    expect((await bob.get(url)).status).toBe(200);
    await env.DB.prepare("DELETE FROM connections").run();
    const again = await keep.get(url);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("already used or has expired");
    expect(await rows()).toEqual([]);
  });

  it("state from another browser (login CSRF): refused, nothing stored", async () => {
    const bob = await signedIn("bob");
    const approved = await upstream.approve(await startConnect(bob), "attacker-upstream");
    const carol = await signedIn("carol");
    const answer = await carol.get(`${approved.redirectUri}?code=${approved.code}&state=${approved.state}`);
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain("not started in this browser");
    expect(await rows()).toEqual([]);
  });

  it("session swap: the state cookie carried into another person's session is refused", async () => {
    const bob = await signedIn("bob");
    const approved = await upstream.approve(await startConnect(bob), "bob-upstream");
    const carol = await signedIn("carol");
    // carol's browser gets bob's state cookie too (the attacker planted it): the person must match.
    const mixed = new Browser(send);
    bob.cloneInto(mixed);
    carol.cloneInto(mixed);
    const stateCookie = bob.cookieNames().includes("__Host-hatago-connect-state");
    expect(stateCookie).toBe(true);
    const answer = await mixed.get(`${approved.redirectUri}?code=${approved.code}&state=${approved.state}`);
    expect(answer.status).toBe(400);
    expect(await rows()).toEqual([]);
  });

  it("code replay: a code the upstream already redeemed is refused with a clear page", async () => {
    const bob = await signedIn("bob");
    const first = await upstream.approve(await startConnect(bob), "bob-upstream");
    expect((await bob.get(`${first.redirectUri}?code=${first.code}&state=${first.state}`)).status).toBe(200);
    await env.DB.prepare("DELETE FROM connections").run();
    const second = await upstream.approve(await startConnect(bob), "bob-upstream");
    const replay = await bob.get(`${second.redirectUri}?code=${first.code}&state=${second.state}`);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain("did not accept");
    expect(await rows()).toEqual([]);
  });

  it("redirect tricks: the authorization asks for our exact callback, and a provider path mix-up is refused", async () => {
    const bob = await signedIn("bob");
    const location = new URL(await startConnect(bob));
    expect(location.searchParams.get("redirect_uri")).toBe(`${ORIGIN}/connect/demo/callback`);
    const state = location.searchParams.get("state") ?? "";
    const other = await bob.get(`${ORIGIN}/connect/nope/callback?code=x&state=${state}`);
    expect(other.status).toBe(400);
    const evil = await bob.get(`${ORIGIN}/connect/sign-in?next=https://evil.example/`);
    expect(evil.status).toBe(302);
    expect(bob.cookieNames()).toContain("__Host-hatago-connect-signin");
    expect(await rows()).toEqual([]);
  });

  it.each([
    ["access_denied", 403, "You declined"],
    ["server_error", 502, "answered with an error"],
  ])("upstream error=%s: a clear page, nothing stored", async (error, status, words) => {
    const bob = await signedIn("bob");
    const state = new URL(await startConnect(bob)).searchParams.get("state") ?? "";
    const answer = await bob.get(`${ORIGIN}/connect/demo/callback?error=${error}&state=${state}`);
    expect(answer.status).toBe(status);
    expect(await answer.text()).toContain(words);
    expect(await rows()).toEqual([]);
  });

  it.each([["5xx"], ["hang"]] as const)(
    "upstream token endpoint %s: a clear 502 page, nothing stored",
    async (mode) => {
      const bob = await signedIn("bob");
      const approved = await upstream.approve(await startConnect(bob), "bob-upstream");
      upstream.mode = mode;
      const answer = await bob.get(`${approved.redirectUri}?code=${approved.code}&state=${approved.state}`);
      expect(answer.status).toBe(502);
      expect(await answer.text()).toContain("could not be reached or failed");
      expect(await rows()).toEqual([]);
    },
  );

  it("a form post without the page's CSRF value (another site) does not start a connection", async () => {
    const bob = await signedIn("bob");
    const answer = await bob.postForm(`${ORIGIN}/connect/demo`, { csrf: "forged" }, { Origin: "https://evil.example" });
    expect(answer.status).toBe(403);
  });
});

describe("the kill switch reaches connections", () => {
  it("blocking bob deletes his connection (storage) and the bridge gets none", async () => {
    await connect(await signedIn("bob"), "bob-upstream");
    const { deleteConnectionsOnBlock } = await import("../../../worker/connect/index.ts");
    expect(await deleteConnectionsOnBlock(env, "mock:bob")).toBe(1);
    expect(await rows()).toEqual([]);
    expect((await bridgeAsks("mock:bob")).body.status).toBe("missing");
  });

  it("a block written behind the row's back (no clean-up ran) still refuses and deletes at the bridge's request", async () => {
    await connect(await signedIn("bob"), "bob-upstream");
    await env.DB.prepare("INSERT INTO blocks VALUES ('mock:bob', 'test', 'mock:alice', 1)").run();
    expect((await bridgeAsks("mock:bob")).body.status).toBe("missing");
    expect(await rows()).toEqual([]);
  });
});
