import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import { describeProblems, parseConfig } from "../../../worker/config.ts";
import { FakeNetwork } from "../oauth/fakes/fake-network.ts";
import { Browser, decodeEntities } from "../oauth/harness/browser.ts";
import { mockUpstream } from "../oauth/harness/flow.ts";
import { ORIGIN, type Send } from "../oauth/harness/oauth-client.ts";
import { testSettings, workerWith } from "../oauth/harness/workers.ts";
import { FAKE_UPSTREAM, FakeUpstreamOAuth } from "./fake-upstream-oauth.ts";

const KEY_B64 = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i + 3)));
/** A provider named by its issuer only: its endpoints come from its discovery document. */
const BY_ISSUER = {
  HATAGO_CONNECT_PROVIDERS: "demo",
  HATAGO_CONNECT_DEMO_KIND: "oauth2",
  HATAGO_CONNECT_DEMO_ISSUER: FAKE_UPSTREAM,
  HATAGO_CONNECT_DEMO_CLIENT_ID: "hatago-test",
  HATAGO_CONNECT_DEMO_CLIENT_SECRET: "fake-secret",
  HATAGO_CONNECT_DEMO_TIMEOUT_MS: "1000",
  HATAGO_CONNECTION_KEYS: `k1:${KEY_B64}`,
};

let upstream: FakeUpstreamOAuth;
let network: FakeNetwork;

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
  upstream = new FakeUpstreamOAuth();
  network = new FakeNetwork([upstream]);
});
afterEach(() => network.restore());

async function signedIn(send: Send, person: string): Promise<Browser> {
  const browser = new Browser(send);
  const start = await browser.get(`${ORIGIN}/connect/sign-in?next=/connect/demo`);
  const login = await mockUpstream(person)(browser, start.headers.get("Location") ?? "");
  await browser.get(login.headers.get("Location") ?? "");
  return browser;
}

/** Our page, then its form: where the browser is sent. */
async function startConnect(browser: Browser): Promise<Response> {
  const page = await (await browser.get(`${ORIGIN}/connect/demo`)).text();
  const csrf = decodeEntities(page.match(/name="csrf" value="([^"]*)"/)?.[1] ?? "");
  return browser.postForm(`${ORIGIN}/connect/demo`, { csrf }, { Origin: ORIGIN, "Sec-Fetch-Site": "same-origin" });
}

describe("a connection provider named by its issuer (OpenID Connect Discovery / RFC 8414 endpoints)", () => {
  it("the endpoints come from the discovery document: bob connects through them", async () => {
    const send = workerWith(BY_ISSUER);
    const bob = await signedIn(send, "bob");
    const go = await startConnect(bob);
    expect(go.status).toBe(303);
    const location = go.headers.get("Location") ?? "";
    expect(location.startsWith(`${FAKE_UPSTREAM}/authorize?`)).toBe(true);
    const approved = await upstream.approve(location, "bob-upstream");
    const done = await bob.get(`${approved.redirectUri}?code=${approved.code}&state=${approved.state}`);
    expect(done.status).toBe(200);
    expect((await env.DB.prepare("SELECT principal FROM connections").all()).results).toEqual([
      { principal: "mock:bob" },
    ]);
    expect(upstream.discoveries).toBeGreaterThanOrEqual(1);
  });

  it("SECURITY: a document naming another issuer is refused (Discovery §4.3): a clear page, nothing started", async () => {
    const send = workerWith({ ...BY_ISSUER, HATAGO_CONNECT_DEMO_ISSUER: `${FAKE_UPSTREAM}/tenant-b` });
    const bob = await signedIn(send, "bob");
    const go = await startConnect(bob);
    expect(go.status).toBe(502);
    expect(decodeEntities(await go.text())).toContain("could not be reached");
    expect(go.headers.get("Location")).toBeNull();
    expect((await env.DB.prepare("SELECT * FROM connections").all()).results).toEqual([]);
  });

  it("the issuer is https, and is not combined with endpoints set by hand", () => {
    const refused = (settings: Record<string, string>) => {
      const parsed = parseConfig({ ...testSettings(), ...BY_ISSUER, ...settings });
      return parsed.ok ? "" : describeProblems(parsed.problems);
    };
    expect(refused({})).toBe("");
    expect(refused({ HATAGO_CONNECT_DEMO_ISSUER: "http://idp.example" })).toContain("HATAGO_CONNECT_DEMO_ISSUER");
    expect(refused({ HATAGO_CONNECT_DEMO_TOKEN_URL: `${FAKE_UPSTREAM}/token` })).toContain(
      "HATAGO_CONNECT_DEMO_TOKEN_URL",
    );
  });
});
