import { describe, expect, it } from "vitest";
import { Browser, formFields } from "./harness/browser.ts";
import { clientRedirect, mockUpstream, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce } from "./harness/oauth-client.ts";
import { viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;
const ENDPOINT = `${ORIGIN}/mcp`;

/** authorize (with `resource` as given) → consent → mock login → the client's redirect with a code. */
async function signInNaming(client: OAuthTestClient, resource: string) {
  const browser = new Browser(send);
  const p = await pkce();
  const consent = await browser.get(client.authorizeUrl(p, { resource }));
  expect(consent.status, "consent page").toBe(200);
  const { fields } = formFields(await consent.text());
  const approved = await browser.postForm(
    `${ORIGIN}/authorize`,
    { handle: fields.handle ?? "", decision: "approve" },
    { Origin: ORIGIN },
  );
  expect(approved.status).toBe(302);
  const back = clientRedirect(await mockUpstream("erin")(browser, approved.headers.get("Location") ?? ""), client);
  return { code: back.searchParams.get("code") ?? "", verifier: p.verifier };
}

describe("every client finds us: the MCP endpoint's URL names this server's resource (RFC 8707 §2, MCP authorization)", () => {
  it("resource=<origin>/mcp is accepted at /authorize and /token; the token's audience is the origin and it works on /mcp", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, verifier } = await signInNaming(client, ENDPOINT);
    const issued = await tokens(await client.exchange(code, verifier, { resource: ENDPOINT }));
    expect(issued.resource).toBe(ORIGIN);
    expect((await client.whoami(issued.access_token)).status).toBe(200);
    // The token is good on the endpoint it was asked for (a request reaching the gateway, not a 401).
    const mcp = await send(
      new Request(ENDPOINT, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${issued.access_token}`,
          "Content-Type": "application/json",
          Accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }),
      }),
    );
    expect(mcp.status).not.toBe(401);
    // A refresh naming the endpoint works too.
    const refreshed = await client.tokenRequest({
      grant_type: "refresh_token",
      refresh_token: issued.refresh_token ?? "",
      client_id: client.clientId,
      resource: ENDPOINT,
    });
    expect(refreshed.status).toBe(200);
  });

  it("a code issued for resource=<origin> may be redeemed naming <origin>/mcp, and the reverse", async () => {
    const client = await OAuthTestClient.register(send);
    const first = await signInNaming(client, ORIGIN);
    expect((await client.exchange(first.code, first.verifier, { resource: ENDPOINT })).status).toBe(200);
    const second = await signInNaming(client, ENDPOINT);
    expect((await client.exchange(second.code, second.verifier, { resource: ORIGIN })).status).toBe(200);
  });
});

describe("every client finds us: bypass attempts (only the endpoint's exact URL is mapped)", () => {
  for (const other of [
    `${ORIGIN}/mcpx`,
    `${ORIGIN}/mcp/`,
    `${ORIGIN}/mcp?x=1`,
    `${ORIGIN}/sse`,
    `${ORIGIN}/admin/`,
    "https://evil.example/mcp",
    "http://localhost:8787/mcp",
  ]) {
    it(`resource=${other} is still refused at /authorize`, async () => {
      const client = await OAuthTestClient.register(send);
      const response = await new Browser(send).get(client.authorizeUrl(await pkce(), { resource: other }));
      expect(response.status).toBe(400);
    });
  }

  it("resource=<origin>/mcpx is refused at /token (invalid_target)", async () => {
    const client = await OAuthTestClient.register(send);
    const { code, verifier } = await signInNaming(client, ENDPOINT);
    const response = await client.exchange(code, verifier, { resource: `${ORIGIN}/mcpx` });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_target" });
  });

  it("a repeated resource naming the endpoint is refused, not mapped", async () => {
    const client = await OAuthTestClient.register(send);
    const url = new URL(client.authorizeUrl(await pkce(), { resource: ENDPOINT }));
    url.searchParams.append("resource", ENDPOINT);
    expect((await new Browser(send).get(url.toString())).status).toBe(400);
  });
});

describe("every client finds us: /.well-known/oauth-protected-resource/mcp (RFC 9728 §3.1 path-suffixed)", () => {
  it("is served, with resource = the endpoint's URL (RFC 9728 §3.3) and the root document's other members", async () => {
    const root = (await (await send(new Request(`${ORIGIN}/.well-known/oauth-protected-resource`))).json()) as Record<
      string,
      unknown
    >;
    const response = await send(new Request(`${ORIGIN}/.well-known/oauth-protected-resource/mcp`));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const document = (await response.json()) as Record<string, unknown>;
    expect(document).toEqual({ ...root, resource: ENDPOINT });
    expect(document.authorization_servers).toEqual([ORIGIN]);
  });

  it("HEAD answers 200 without a body; other suffixes stay 404", async () => {
    const head = await send(new Request(`${ORIGIN}/.well-known/oauth-protected-resource/mcp`, { method: "HEAD" }));
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    for (const path of ["/sse", "/mcp/x", "/api"]) {
      const other = await send(new Request(`${ORIGIN}/.well-known/oauth-protected-resource${path}`));
      expect(other.status, path).toBe(404);
    }
  });
});
