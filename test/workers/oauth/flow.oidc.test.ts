import { afterEach, describe, expect, it } from "vitest";
import { FakeNetwork } from "./fakes/fake-network.ts";
import { FakeOidcProvider } from "./fakes/fake-oidc-provider.ts";
import { Browser } from "./harness/browser.ts";
import { signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, type Send } from "./harness/oauth-client.ts";
import { workerWith } from "./harness/workers.ts";

let network: FakeNetwork | undefined;
afterEach(() => network?.restore());

const ACCESS_CLIENT_ID = "0a1b2c3d4e5f67890a1b2c3d4e5f67890a1b2c3d4e5f67890a1b2c3d4e5f6789";

/** A FakeOidcProvider laid out like a Cloudflare Access SaaS OIDC application, signing with RS256 as Access does. */
async function fakeAccess(): Promise<{ access: FakeOidcProvider; send: Send }> {
  const access = await FakeOidcProvider.create({
    issuer: `https://acme.cloudflareaccess.com/cdn-cgi/access/sso/oidc/${ACCESS_CLIENT_ID}`,
    clientId: ACCESS_CLIENT_ID,
    clientSecret: "access-secret",
    alg: "RS256",
    paths: { authorization: "/authorization", token: "/token", jwks: "/jwks" },
  });
  network = new FakeNetwork([access]);
  const send = workerWith({
    HATAGO_LOGIN_PROVIDER: "access",
    HATAGO_ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com",
    HATAGO_ACCESS_CLIENT_ID: ACCESS_CLIENT_ID,
    HATAGO_ACCESS_CLIENT_SECRET: "access-secret",
  });
  return { access, send };
}

async function fakeOidc(): Promise<{ idp: FakeOidcProvider; send: Send }> {
  const idp = await FakeOidcProvider.create({
    issuer: "https://login.example.com/tenant-1",
    clientId: "hatago",
    clientSecret: "oidc-secret",
  });
  network = new FakeNetwork([idp]);
  const send = workerWith({
    HATAGO_LOGIN_PROVIDER: "oidc",
    HATAGO_OIDC_ISSUER: "https://login.example.com/tenant-1",
    HATAGO_OIDC_CLIENT_ID: "hatago",
    HATAGO_OIDC_CLIENT_SECRET: "oidc-secret",
  });
  return { idp, send };
}

async function fullFlow(send: Send, provider: FakeOidcProvider): Promise<Record<string, unknown>> {
  const asm = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-authorization-server`))).json()) as {
    issuer: string;
  };
  expect(asm.issuer).toBe(ORIGIN);
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, (browser, location) =>
    browser.get(provider.authorize(location)),
  );
  const issued = await tokens(await client.exchange(code, pkce.verifier));
  const me = await client.whoami(issued.access_token);
  expect(me.status).toBe(200);
  const who = (await me.json()) as Record<string, unknown>;
  const refreshed = await tokens(await client.refresh(issued.refresh_token ?? ""));
  expect((await client.whoami(refreshed.access_token)).status).toBe(200);
  expect((await client.revoke(refreshed.refresh_token ?? "")).status).toBe(200);
  expect((await client.whoami(refreshed.access_token)).status).toBe(401);
  return who;
}

describe("the whole OAuth flow with Cloudflare Access (SaaS OIDC app) as the login", () => {
  it("metadata → register → authorize → consent → Access → callback (ID token verified) → token → whoami → refresh → revoke", async () => {
    const { access, send } = await fakeAccess();
    access.identity = {
      sub: "2f1c7e0a-5b7d-4c4e-9a51-1f0e6d2b9c11",
      email: "Ada@Example.com",
      name: "Ada Lovelace",
      groups: ["engineering", { name: "on-call" }, "Platform Team"],
    };
    expect(await fullFlow(send, access)).toMatchObject({
      principal: "access:2f1c7e0a-5b7d-4c4e-9a51-1f0e6d2b9c11",
      displayName: "Ada Lovelace",
      provider: "access",
      // Access omits email_verified: the address Access authenticated counts as verified.
      email: "ada@example.com",
      // "Platform Team" cannot be a subject (whitespace) and is dropped.
      groups: ["group:access:engineering", "group:access:on-call"],
      subjects: [
        "access:2f1c7e0a-5b7d-4c4e-9a51-1f0e6d2b9c11",
        "email:ada@example.com",
        "group:access:engineering",
        "group:access:on-call",
      ],
    });
  });

  it("asks Access for openid, email, profile and groups, with PKCE S256 and a nonce, at the team's issuer", async () => {
    const { access, send } = await fakeAccess();
    const client = await OAuthTestClient.register(send);
    await signIn(new Browser(send), client, async (browser, location) => {
      const url = new URL(location);
      expect(`${url.origin}${url.pathname}`).toBe(`${access.issuer}/authorization`);
      expect(url.searchParams.get("scope")).toBe("openid email profile groups");
      expect(url.searchParams.get("redirect_uri")).toBe(`${ORIGIN}/login/access/callback`);
      expect(url.searchParams.get("code_challenge_method")).toBe("S256");
      expect(url.searchParams.get("nonce")?.length).toBeGreaterThanOrEqual(43);
      return browser.get(access.authorize(location));
    });
  });

  it("an explicit email_verified=false is never trusted", async () => {
    const { access, send } = await fakeAccess();
    access.identity = { sub: "0b7a4f3e-1111-2222-3333-444455556666", email: "x@example.com", email_verified: false };
    expect(await fullFlow(send, access)).toMatchObject({
      email: null,
      subjects: ["access:0b7a4f3e-1111-2222-3333-444455556666"],
    });
  });
});

describe("the whole OAuth flow with a generic OpenID provider as the login", () => {
  it("metadata → register → authorize → consent → IdP → callback (ID token verified) → token → whoami → refresh → revoke", async () => {
    const { idp, send } = await fakeOidc();
    idp.identity = {
      sub: "00u1abcd",
      email: "grace@example.com",
      email_verified: true,
      preferred_username: "grace",
      groups: ["eng"],
    };
    expect(await fullFlow(send, idp)).toMatchObject({
      principal: "oidc:login.example.com:00u1abcd",
      displayName: "grace",
      provider: "oidc",
      email: "grace@example.com",
      groups: ["group:oidc:login.example.com:eng"],
    });
  });

  it("an email without email_verified is not a subject for a generic provider", async () => {
    const { idp, send } = await fakeOidc();
    idp.identity = { sub: "00u2", email: "someone@example.com" };
    expect(await fullFlow(send, idp)).toMatchObject({ email: null, subjects: ["oidc:login.example.com:00u2"] });
  });

  it("the discovery document and signing keys are fetched once and cached", async () => {
    const { idp, send } = await fakeOidc();
    await fullFlow(send, idp);
    await fullFlow(send, idp);
    const discovery = network?.requests.filter((u) => u.pathname.endsWith("/.well-known/openid-configuration")) ?? [];
    const jwks = network?.requests.filter((u) => u.pathname.endsWith("/jwks")) ?? [];
    expect(discovery).toHaveLength(1);
    expect(jwks).toHaveLength(1);
  });
});
