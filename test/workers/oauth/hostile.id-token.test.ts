import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { FakeNetwork } from "./fakes/fake-network.ts";
import { FakeOidcProvider, type IdTokenTampering } from "./fakes/fake-oidc-provider.ts";
import { Browser, formFields } from "./harness/browser.ts";
import { approve, clientRedirect, signIn } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce, type Send } from "./harness/oauth-client.ts";
import { kvKeys, workerWith } from "./harness/workers.ts";

const ISSUER = "https://idp.example.com";

let idp: FakeOidcProvider;
let network: FakeNetwork;
let send: Send;
let client: OAuthTestClient;
let warn: MockInstance<typeof console.warn>;

beforeEach(async () => {
  idp = await FakeOidcProvider.create({ issuer: ISSUER, clientId: "hatago", clientSecret: "secret" });
  network = new FakeNetwork([idp]);
  send = workerWith({
    HATAGO_LOGIN_PROVIDER: "oidc",
    HATAGO_OIDC_ISSUER: ISSUER,
    HATAGO_OIDC_CLIENT_ID: "hatago",
    HATAGO_OIDC_CLIENT_SECRET: "secret",
  });
  client = await OAuthTestClient.register(send);
  warn = vi.spyOn(console, "warn");
});
afterEach(() => {
  network.restore();
  warn.mockRestore();
});

/** Runs a sign-in whose ID token is tampered with; expects the client to get `error` and nothing stored. */
async function expectRefused(tampering: IdTokenTampering, reason: RegExp, error = "access_denied"): Promise<void> {
  idp.tampering = tampering;
  const browser = new Browser(send);
  const { location } = await approve(browser, client);
  const back = clientRedirect(await browser.get(idp.authorize(location)), client);
  expect(back.searchParams.get("error")).toBe(error);
  expect(back.searchParams.has("code")).toBe(false);
  expect(await kvKeys("grant:")).toEqual([]);
  const logged = warn.mock.calls.map((args) => String(args[0])).join("\n");
  expect(logged).toMatch(reason);
}

describe("ID token verification (OpenID Connect Core §3.1.3.7): forged and mismatched tokens", () => {
  it("a signature by a key not in the provider's JWKS is refused", async () => {
    await expectRefused({ foreignKey: true }, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it("an HMAC token keyed with the client secret (algorithm confusion) is refused", async () => {
    await expectRefused({ alg: "HS256" }, /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it("a token for another client (aud) is refused", async () => {
    await expectRefused({ aud: "someone-else" }, /claim_aud/);
  });

  it("a token from another issuer (iss) is refused", async () => {
    await expectRefused({ iss: "https://evil.example.com" }, /claim_iss/);
  });

  it("an expired token is refused", async () => {
    await expectRefused({ expiresIn: -600 }, /ERR_JWT_EXPIRED/);
  });

  it("several audiences without us as the authorized party (azp) are refused", async () => {
    await expectRefused({ aud: ["hatago", "other-app"] }, /azp_mismatch/);
  });

  it("a nonce replayed from an earlier sign-in is refused", async () => {
    await signIn(new Browser(send), client, (browser, location) => browser.get(idp.authorize(location)));
    const earlier = idp.nonces[0] ?? "";
    await expectRefusedAfter(1, { nonce: earlier }, /nonce_mismatch/);
  });

  it("a token without a nonce is refused", async () => {
    await expectRefused({ nonce: "" }, /nonce/);
  });

  it("an identity our subject grammar cannot name (sub with a space) is refused, not stored", async () => {
    const access = await FakeOidcProvider.create({
      issuer: "https://acme.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123",
      clientId: "abc123",
      clientSecret: "s",
      paths: { authorization: "/authorization", token: "/token", jwks: "/jwks" },
    });
    network.restore();
    network = new FakeNetwork([access]);
    const viaAccess = workerWith({
      HATAGO_LOGIN_PROVIDER: "access",
      HATAGO_ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com",
      HATAGO_ACCESS_CLIENT_ID: "abc123",
      HATAGO_ACCESS_CLIENT_SECRET: "s",
    });
    access.identity = { sub: "not a uuid" };
    const accessClient = await OAuthTestClient.register(viaAccess);
    const browser = new Browser(viaAccess);
    const { location } = await approve(browser, accessClient);
    const back = clientRedirect(await browser.get(access.authorize(location)), accessClient);
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(await kvKeys("grant:")).toEqual([]);
  });
});

async function expectRefusedAfter(grants: number, tampering: IdTokenTampering, reason: RegExp): Promise<void> {
  idp.tampering = tampering;
  const browser = new Browser(send);
  const { location } = await approve(browser, client);
  const back = clientRedirect(await browser.get(idp.authorize(location)), client);
  expect(back.searchParams.get("error")).toBe("access_denied");
  expect(await kvKeys("grant:")).toHaveLength(grants);
  expect(warn.mock.calls.map((args) => String(args[0])).join("\n")).toMatch(reason);
}

describe("the OpenID provider misbehaving or down", () => {
  it("declined at the provider → access_denied", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const back = clientRedirect(await browser.get(idp.authorize(location, "declined")), client);
    expect(back.searchParams.get("error")).toBe("access_denied");
  });

  it("a discovery document naming another issuer stops the sign-in with a 502 page; the consent can be retried", async () => {
    network.restore();
    network = new FakeNetwork([
      {
        handles: (url) => url.origin === ISSUER,
        handle: async () =>
          Response.json({
            issuer: "https://evil.example.com",
            authorization_endpoint: "https://evil.example.com/authorize",
            token_endpoint: "https://evil.example.com/token",
            jwks_uri: "https://evil.example.com/jwks",
          }),
      },
    ]);
    const browser = new Browser(send);
    const page = await browser.get(client.authorizeUrl(await pkce()));
    const handle = formFields(await page.text()).fields.handle ?? "";
    const response = await browser.postForm(`${ORIGIN}/authorize`, { handle, decision: "approve" }, { Origin: ORIGIN });
    expect(response.status).toBe(502);
    expect(response.headers.get("Retry-After")).toBe("30");
    expect(response.headers.get("Location")).toBeNull();
    // The provider is fixed: the same consent goes through.
    network.restore();
    network = new FakeNetwork([idp]);
    const retried = await browser.postForm(`${ORIGIN}/authorize`, { handle, decision: "approve" }, { Origin: ORIGIN });
    expect(retried.status).toBe(302);
  });

  it("signing keys unreachable → temporarily_unavailable", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const callback = idp.authorize(location);
    network.restore();
    network = new FakeNetwork([
      { handles: (url) => url.origin === ISSUER && !url.pathname.endsWith("/jwks"), handle: (r) => idp.handle(r) },
    ]);
    const back = clientRedirect(await browser.get(callback), client);
    expect(back.searchParams.get("error")).toBe("temporarily_unavailable");
  });

  it("the provider refusing our code (invalid_grant) → access_denied", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const callback = new URL(idp.authorize(location));
    callback.searchParams.set("code", "forged");
    const back = clientRedirect(await browser.get(callback.toString()), client);
    expect(back.searchParams.get("error")).toBe("access_denied");
  });

  it("a callback with two codes is refused before the state is used", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const callback = new URL(idp.authorize(location));
    callback.searchParams.append("code", "second");
    const response = await browser.get(callback.toString());
    expect(response.status).toBe(400);
    expect(response.headers.get("Location")).toBeNull();
  });
});
