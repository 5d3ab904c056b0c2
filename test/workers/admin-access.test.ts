import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { parseConfig } from "../../worker/config.ts";
import { FakeNetwork, type FakeUpstream } from "./oauth/fakes/fake-network.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { testSettings, workerWith } from "./oauth/harness/workers.ts";

const TEAM = "acme.cloudflareaccess.com";
const AUD = "a".repeat(64);

/** FakeAccessCerts: Cloudflare Access's certificate endpoint for one team, serving a real RSA public key. */
class FakeAccessCerts implements FakeUpstream {
  jwk: JWK | null = null;
  handles(url: URL) {
    return url.host === TEAM && url.pathname === "/cdn-cgi/access/certs";
  }
  async handle() {
    return Response.json({ keys: this.jwk ? [this.jwk] : [] });
  }
}

const certs = new FakeAccessCerts();
let signing: CryptoKey;
let otherKey: CryptoKey;
let network: FakeNetwork | undefined;

beforeAll(async () => {
  const pair = await generateKeyPair("RS256", { extractable: true });
  signing = pair.privateKey;
  certs.jwk = { ...(await exportJWK(pair.publicKey)), kid: "access-1", alg: "RS256", use: "sig" };
  otherKey = (await generateKeyPair("RS256")).privateKey;
});
afterEach(() => network?.restore());

async function accessJwt(claims: { iss?: string; aud?: string; expSeconds?: number }, key = signing): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: "alice@example.com", type: "app" })
    .setProtectedHeader({ alg: "RS256", kid: "access-1" })
    .setIssuer(claims.iss ?? `https://${TEAM}`)
    .setAudience(claims.aud ?? AUD)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (claims.expSeconds ?? 300))
    .sign(key);
}

describe("admin endpoints behind Cloudflare Access: the Worker verifies the Access token too", () => {
  it("an admin's bearer token alone is not enough; with a valid Access token it is", async () => {
    await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
    const send = workerWith({ ...testSettings(), HATAGO_ADMIN_ACCESS_AUD: AUD, HATAGO_ACCESS_TEAM_DOMAIN: TEAM });
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("alice"));
    const bearer = (await tokens(await client.exchange(code, pkce.verifier))).access_token;
    network = new FakeNetwork([certs]);

    const audit = (accessToken?: string) =>
      send(
        new Request(`${ORIGIN}/admin/audit`, {
          headers: {
            authorization: `Bearer ${bearer}`,
            ...(accessToken ? { "Cf-Access-Jwt-Assertion": accessToken } : {}),
          },
        }),
      );
    expect((await audit()).status).toBe(403);
    expect((await audit(await accessJwt({}))).status).toBe(200);
    expect((await audit(await accessJwt({ aud: "b".repeat(64) }))).status).toBe(403);
    expect((await audit(await accessJwt({ iss: "https://evil.cloudflareaccess.com" }))).status).toBe(403);
    expect((await audit(await accessJwt({ expSeconds: -600 }))).status).toBe(403);
    expect((await audit(await accessJwt({}, otherKey))).status).toBe(403);
    expect((await audit("not.a.jwt")).status).toBe(403);
    expect(network.unrouted).toEqual([]);
  });

  it("configuration: the AUD needs a team domain, and must be an AUD tag", () => {
    const noTeam = parseConfig({ ...testSettings(), HATAGO_ADMIN_ACCESS_AUD: AUD });
    expect(noTeam.ok ? [] : noTeam.problems.map((p) => p.setting)).toContain("HATAGO_ACCESS_TEAM_DOMAIN");
    const badAud = parseConfig({
      ...testSettings(),
      HATAGO_ADMIN_ACCESS_AUD: "not-hex",
      HATAGO_ACCESS_TEAM_DOMAIN: TEAM,
    });
    expect(badAud.ok ? [] : badAud.problems.map((p) => p.setting)).toContain("HATAGO_ADMIN_ACCESS_AUD");
    const none = parseConfig(testSettings());
    expect(none.ok && none.config.adminAccess).toBeNull();
  });
});
