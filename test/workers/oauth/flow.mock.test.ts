import { describe, expect, it } from "vitest";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./harness/oauth-client.ts";
import { kvKeys, viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

describe("the whole OAuth flow with the mock login, through the Worker's default export", () => {
  it("metadata → register → authorize → consent → mock login → callback → token → /api/whoami → refresh → revoke", async () => {
    // An MCP client's first contact: a protected resource answers 401 and points at its metadata (RFC 9728 §5.1).
    const challenge = await send(new Request(`${ORIGIN}/api/whoami`));
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("WWW-Authenticate")).toContain(
      `resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`,
    );
    const prm = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-protected-resource`))).json()) as Record<
      string,
      unknown
    >;
    expect(prm).toMatchObject({ resource: ORIGIN, authorization_servers: [ORIGIN], scopes_supported: ["mcp"] });
    const asm = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-authorization-server`))).json()) as Record<
      string,
      unknown
    >;
    expect(asm).toMatchObject({
      issuer: ORIGIN,
      authorization_endpoint: `${ORIGIN}/authorize`,
      token_endpoint: `${ORIGIN}/token`,
      registration_endpoint: `${ORIGIN}/register`,
      revocation_endpoint: `${ORIGIN}/token`,
      response_types_supported: ["code"],
      code_challenge_methods_supported: ["S256"],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    });

    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { code, pkce } = await signIn(browser, client, mockUpstream("erin"));
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    expect(issued).toMatchObject({ token_type: "bearer", scope: "mcp", resource: ORIGIN, expires_in: 3600 });
    expect(issued.refresh_token).toBeTruthy();

    const me = await client.whoami(issued.access_token);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      principal: "mock:erin",
      displayName: "Erin",
      provider: "mock",
      email: null,
      groups: ["group:mock:staff"],
      subjects: ["mock:erin", "group:mock:staff"],
      clientId: client.clientId,
      scope: ["mcp"],
    });

    // Refresh rotates (OAuth 2.1 §4.3.1): a new refresh token, and the new access token works.
    const refreshed = await tokens(await client.refresh(issued.refresh_token ?? ""));
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(issued.refresh_token);
    expect((await client.whoami(refreshed.access_token)).status).toBe(200);
    // Once the new refresh token is used, the old one is dead.
    const rotatedAgain = await tokens(await client.refresh(refreshed.refresh_token ?? ""));
    expect((await client.refresh(issued.refresh_token ?? "")).status).toBe(400);

    // Revocation (RFC 7009) of the access token: it stops working at once.
    const revoked = await client.revoke(rotatedAgain.access_token);
    expect(revoked.status).toBe(200);
    expect((await client.whoami(rotatedAgain.access_token)).status).toBe(401);
    // Revoking the refresh token ends the grant.
    expect((await client.revoke(rotatedAgain.refresh_token ?? "")).status).toBe(200);
    expect((await client.refresh(rotatedAgain.refresh_token ?? "")).status).toBe(400);
  });

  it("the grant's user id is the percent-encoded principal (the library forbids ':' in it)", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("carol"));
    expect(code.startsWith("mock%3Acarol:")).toBe(true);
    await tokens(await client.exchange(code, pkce.verifier));
    expect((await kvKeys("grant:")).every((k) => k.startsWith("grant:mock%3Acarol:"))).toBe(true);
  });

  it("carol's verified email becomes a subject; groups can be edited on the picker", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("carol", "staff, oncall"));
    const issued = await tokens(await client.exchange(code, pkce.verifier));
    const me = (await (await client.whoami(issued.access_token)).json()) as { subjects: string[] };
    expect(me.subjects).toEqual(["mock:carol", "email:carol@example.com", "group:mock:oncall", "group:mock:staff"]);
  });
});
