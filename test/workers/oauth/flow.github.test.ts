import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeGitHub } from "./fakes/fake-github.ts";
import { FakeNetwork } from "./fakes/fake-network.ts";
import { Browser } from "./harness/browser.ts";
import { approve, clientRedirect, signIn, tokens, type UpstreamStep } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./harness/oauth-client.ts";
import { kvKeys, workerWith } from "./harness/workers.ts";

let github: FakeGitHub;
let network: FakeNetwork;

beforeEach(() => {
  github = new FakeGitHub();
  network = new FakeNetwork([github]);
});
afterEach(() => network.restore());

const settings = (extra: Record<string, string> = {}) => ({
  HATAGO_LOGIN_PROVIDER: "github",
  HATAGO_GITHUB_CLIENT_ID: github.clientId,
  HATAGO_GITHUB_CLIENT_SECRET: github.clientSecret,
  ...extra,
});

const viaGitHub =
  (outcome: "approved" | "declined" = "approved"): UpstreamStep =>
  (browser, location) =>
    browser.get(github.authorize(location, outcome));

describe("the whole OAuth flow with GitHub as the login", () => {
  it("metadata → register → authorize → consent → GitHub → callback → token → /api/whoami → refresh → revoke", async () => {
    const send = workerWith(settings());
    github.user = {
      id: 583231,
      login: "Octo-Cat",
      name: "Octo Cat",
      emails: [
        { email: "unverified@example.com", verified: false, primary: true },
        { email: "Octo@Example.com", verified: true, primary: false },
      ],
      orgs: ["Acme"],
      teams: ["Acme/platform", "Acme/sre"],
    };
    const asm = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-authorization-server`))).json()) as {
      issuer: string;
    };
    expect(asm.issuer).toBe(ORIGIN);

    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { code, pkce } = await signIn(browser, client, viaGitHub());
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const me = await client.whoami(issued.access_token);
    expect(await me.json()).toMatchObject({
      // The numeric id is the principal; the login is only for display.
      principal: "github:583231",
      displayName: "Octo-Cat",
      provider: "github",
      // Only the verified address, lowercased (the unverified primary is ignored).
      email: "octo@example.com",
      groups: ["group:github:acme", "group:github:acme/platform", "group:github:acme/sre"],
      subjects: [
        "github:583231",
        "email:octo@example.com",
        "group:github:acme",
        "group:github:acme/platform",
        "group:github:acme/sre",
      ],
    });

    const refreshed = await tokens(await client.refresh(issued.refresh_token ?? ""));
    expect((await client.whoami(refreshed.access_token)).status).toBe(200);
    expect((await client.revoke(refreshed.access_token)).status).toBe(200);
    expect((await client.whoami(refreshed.access_token)).status).toBe(401);
  });

  it("no upstream token passthrough: the GitHub token is in no response and no stored props", async () => {
    const send = workerWith(settings());
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, viaGitHub());
    const body = await (await client.exchange(code, pkce.verifier)).text();
    expect(body).not.toContain("gho_fake_");
    const issued = JSON.parse(body) as { access_token: string };
    expect(JSON.stringify(await (await client.whoami(issued.access_token)).json())).not.toContain("gho_fake_");
    // The GitHub token, presented to us as a bearer token, is not ours: 401.
    expect((await client.whoami("gho_fake_0123456789")).status).toBe(401);
  });

  it("GitHub's authorization request carries PKCE S256, our callback and only read scopes", async () => {
    const send = workerWith(settings());
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    await signIn(browser, client, async (b, location) => {
      const url = new URL(location);
      expect(url.searchParams.get("redirect_uri")).toBe(`${ORIGIN}/login/github/callback`);
      expect(url.searchParams.get("scope")).toBe("read:user user:email read:org");
      expect(url.searchParams.get("code_challenge_method")).toBe("S256");
      return b.get(github.authorize(location));
    });
  });
});

describe("GitHub organisation allow-list (HATAGO_GITHUB_ORG_ALLOWLIST)", () => {
  it("a member of an allowed org signs in (org names compare case-insensitively)", async () => {
    const send = workerWith(settings({ HATAGO_GITHUB_ORG_ALLOWLIST: "other, ACME" }));
    github.user = { ...github.user, orgs: ["acme"] };
    const client = await OAuthTestClient.register(send);
    await signIn(new Browser(send), client, viaGitHub());
  });

  it("anyone else is sent back to the client with access_denied, and no grant is stored", async () => {
    const send = workerWith(settings({ HATAGO_GITHUB_ORG_ALLOWLIST: "acme" }));
    github.user = { ...github.user, orgs: ["elsewhere"], teams: [] };
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const url = clientRedirect(await browser.get(github.authorize(location)), client);
    expect(url.searchParams.get("error")).toBe("access_denied");
    expect(url.searchParams.has("code")).toBe(false);
    expect(await kvKeys("grant:")).toEqual([]);
  });
});

describe("GitHub failures", () => {
  it("declined at GitHub → access_denied to the client", async () => {
    const send = workerWith(settings());
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const back = clientRedirect(await browser.get(github.authorize(location, "declined")), client);
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(await kvKeys("grant:")).toEqual([]);
  });

  it("GitHub's API down → temporarily_unavailable to the client, never a 500", async () => {
    const send = workerWith(settings());
    github.apiStatus = 503;
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const back = clientRedirect(await browser.get(github.authorize(location)), client);
    expect(back.searchParams.get("error")).toBe("temporarily_unavailable");
  });

  it("GitHub unreachable at the token endpoint → temporarily_unavailable", async () => {
    const send = workerWith(settings());
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const callback = github.authorize((await approve(browser, client)).location);
    network.restore();
    network = new FakeNetwork([]); // GitHub is gone
    const back = clientRedirect(await browser.get(callback), client);
    expect(back.searchParams.get("error")).toBe("temporarily_unavailable");
  });

  it("a code GitHub rejects (HTTP 200 with an error member) → access_denied", async () => {
    const send = workerWith(settings());
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const callback = new URL(github.authorize((await approve(browser, client)).location));
    callback.searchParams.set("code", "not-a-real-code");
    const back = clientRedirect(await browser.get(callback.toString()), client);
    expect(back.searchParams.get("error")).toBe("access_denied");
  });
});
