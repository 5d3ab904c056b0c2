import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeNetwork } from "./fakes/fake-network.ts";
import { Browser } from "./harness/browser.ts";
import { OAuthTestClient, ORIGIN, pkce, REDIRECT_URI } from "./harness/oauth-client.ts";
import { kvKeys, viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

/**
 * Every request here must be refused on our own page: 400, no `Location` (never a redirect to an
 * unvalidated URI), no 5xx, and nothing stored (no consent transaction, no grant).
 */
async function expectRefusedLocally(url: string, browser = new Browser(send)): Promise<string> {
  const response = await browser.get(url);
  const body = await response.text();
  expect(response.status, body).toBe(400);
  expect(response.headers.get("Location")).toBeNull();
  expect(response.headers.get("Content-Type")).toContain("text/html");
  expect(browser.cookieNames()).toEqual([]);
  expect(await kvKeys("transaction:")).toEqual([]);
  expect(await kvKeys("grant:")).toEqual([]);
  return body;
}

let client: OAuthTestClient;
beforeEach(async () => {
  client = await OAuthTestClient.register(send);
});

describe("redirect_uri exact match (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3, CVE-2025-4143): bypass attempts", () => {
  const variants: Record<string, string> = {
    "another host": "https://evil.example/callback",
    "userinfo naming the client host": "https://client.example@evil.example/callback",
    "userinfo in front of the client host": "https://evil.example@client.example/callback",
    "the client host as a subdomain": "https://client.example.evil.example/callback",
    "an extra path segment": "https://client.example/callback/extra",
    "a different path case": "https://client.example/CALLBACK",
    "an added query": "https://client.example/callback?next=https://evil.example",
    "a fragment": "https://client.example/callback#x",
    "a scheme downgrade to http": "http://client.example/callback",
    "a scheme-relative URI": "//evil.example/callback",
    "javascript:": "javascript:alert(document.cookie)",
    "JaVaScRiPt: with odd case": "JaVaScRiPt:alert(1)",
    "data:": "data:text/html,<script>alert(1)</script>",
    "a trailing slash": "https://client.example/callback/",
    "another port": "https://client.example:8443/callback",
    "an empty redirect_uri": "",
  };
  for (const [name, redirectUri] of Object.entries(variants)) {
    it(`refuses ${name} on our own page`, async () => {
      const p = await pkce();
      const body = await expectRefusedLocally(client.authorizeUrl(p, { redirect_uri: redirectUri }));
      expect(body).toContain("Invalid redirect URI");
      expect(body).not.toContain("<script>alert");
    });
  }

  it("a missing redirect_uri is refused", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { redirect_uri: null }));
  });

  it("the registered URI itself is accepted (the control case)", async () => {
    const response = await new Browser(send).get(client.authorizeUrl(await pkce()));
    expect(response.status).toBe(200);
  });
});

describe("loopback redirect URIs (RFC 8252 §7.3): only the port may vary", () => {
  let native: OAuthTestClient;
  beforeEach(async () => {
    native = await OAuthTestClient.register(send, { redirect_uris: ["http://127.0.0.1:33418/cb"] });
  });

  it("another port on the same loopback address and path is accepted", async () => {
    const response = await new Browser(send).get(
      native.authorizeUrl(await pkce(), { redirect_uri: "http://127.0.0.1:51004/cb" }),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Access goes to an application on this computer");
  });

  for (const redirectUri of [
    "http://127.0.0.1:51004/cb2",
    "http://localhost:51004/cb",
    "http://127.0.0.1.evil.example/cb",
    "https://127.0.0.1:51004/cb",
  ]) {
    it(`refuses ${redirectUri}`, async () => {
      await expectRefusedLocally(native.authorizeUrl(await pkce(), { redirect_uri: redirectUri }));
    });
  }
});

describe("PKCE S256 for every client (OAuth 2.1 §7.5.1, RFC 7636, CVE-2025-4144): downgrade attempts", () => {
  it("no code_challenge is refused", async () => {
    expect(
      await expectRefusedLocally(
        client.authorizeUrl(await pkce(), { code_challenge: null, code_challenge_method: null }),
      ),
    ).toContain("code_challenge");
  });

  it("code_challenge_method=plain is refused", async () => {
    const p = await pkce();
    expect(
      await expectRefusedLocally(
        client.authorizeUrl(p, { code_challenge: p.verifier, code_challenge_method: "plain" }),
      ),
    ).toContain("code_challenge");
  });

  it("a challenge without a method is refused (no silent plain)", async () => {
    expect(await expectRefusedLocally(client.authorizeUrl(await pkce(), { code_challenge_method: null }))).toContain(
      "code_challenge",
    );
  });

  it("a lowercase s256 is refused", async () => {
    expect(await expectRefusedLocally(client.authorizeUrl(await pkce(), { code_challenge_method: "s256" }))).toContain(
      "code_challenge",
    );
  });

  it("a confidential client cannot skip PKCE either, so a verifier can never meet a flow without a challenge", async () => {
    const confidential = await OAuthTestClient.register(send, { token_endpoint_auth_method: "client_secret_basic" });
    expect(confidential.clientSecret).toBeTruthy();
    expect(
      await expectRefusedLocally(
        confidential.authorizeUrl(await pkce(), { code_challenge: null, code_challenge_method: null }),
      ),
    ).toContain("code_challenge");
  });
});

describe("response_type: only code (OAuth 2.1 removed the implicit grant)", () => {
  for (const responseType of ["token", "code token", "id_token", ""]) {
    it(`response_type=${JSON.stringify(responseType)} is refused locally (no token or error in a fragment)`, async () => {
      const body = await expectRefusedLocally(client.authorizeUrl(await pkce(), { response_type: responseType }));
      expect(body).toMatch(/response.type/i);
    });
  }
});

describe("repeated parameters (OAuth 2.1 §3.1: MUST NOT be included more than once)", () => {
  for (const name of ["client_id", "redirect_uri", "state", "code_challenge", "response_type", "resource", "scope"]) {
    it(`two ${name} parameters are refused`, async () => {
      const url = new URL(client.authorizeUrl(await pkce()));
      url.searchParams.append(name, name === "redirect_uri" ? "https://evil.example/cb" : "second");
      const body = await expectRefusedLocally(url.toString());
      expect(body).toContain(`The ${name} parameter is repeated`);
    });
  }
});

describe("oversized parameters", () => {
  it("a 4 KiB state is refused", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { state: "s".repeat(4096) }));
  });

  it("a 10 KiB client_id is refused", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { client_id: "c".repeat(10_240) }));
  });

  it("a query over 8 KiB in total is refused", async () => {
    await expectRefusedLocally(`${client.authorizeUrl(await pkce())}&junk=${"j".repeat(9_000)}`);
  });

  it("an unknown client_id is refused", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { client_id: "nobody-registered-this" }));
  });

  it("a resource other than this server (RFC 8707) is refused", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { resource: "https://other.example" }));
  });
});

describe("Client ID Metadata Documents: SSRF attempts (MCP security best practices)", () => {
  let network: FakeNetwork;
  beforeEach(() => {
    network = new FakeNetwork([]);
  });
  afterEach(() => network.restore());

  const privateClientIds = [
    "https://10.0.0.1/client.json",
    "https://127.0.0.1/client.json",
    "https://169.254.169.254/latest/meta-data/",
    "https://192.168.1.10/client.json",
    "https://localhost/client.json",
    "https://metadata.google.internal/client.json",
    "https://[::1]/client.json",
    "https://2130706433/client.json",
    "https://0x7f000001/client.json",
  ];
  for (const clientId of privateClientIds) {
    it(`a client id on ${new URL(clientId).host} is refused at /authorize before any fetch`, async () => {
      const body = await expectRefusedLocally(client.authorizeUrl(await pkce(), { client_id: clientId }));
      expect(body).toContain("public host");
      expect(network.requests).toEqual([]);
    });
  }

  it("a client id on a private address is refused at the token endpoint before any fetch", async () => {
    const response = await client.tokenRequest({
      grant_type: "authorization_code",
      code: "x:y:z",
      client_id: "https://10.0.0.1/client.json",
      code_verifier: "v".repeat(43),
      redirect_uri: REDIRECT_URI,
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "invalid_client" });
    expect(network.requests).toEqual([]);
  });

  it("CIMD is advertised (the global_fetch_strictly_public flag is on) and a public document's client works", async () => {
    const asm = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-authorization-server`))).json()) as Record<
      string,
      unknown
    >;
    expect(asm.client_id_metadata_document_supported).toBe(true);
    network.restore();
    const clientId = "https://app.example/oauth/client.json";
    network = new FakeNetwork([
      {
        handles: (url) => url.href === clientId,
        handle: async () =>
          Response.json({
            client_id: clientId,
            client_name: "Example <App>",
            redirect_uris: [REDIRECT_URI],
            token_endpoint_auth_method: "none",
          }),
      },
    ]);
    const response = await new Browser(send).get(client.authorizeUrl(await pkce(), { client_id: clientId }));
    const page = await response.text();
    expect(response.status).toBe(200);
    expect(page).toContain("Published by <strong>app.example</strong>");
    expect(page).toContain("Example &lt;App&gt;");
  });

  it("an unreachable metadata document is a local 400, not a 500", async () => {
    await expectRefusedLocally(client.authorizeUrl(await pkce(), { client_id: "https://gone.example/client.json" }));
  });
});
