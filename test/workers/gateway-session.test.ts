import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sessionObjectName } from "../../worker/mcp/internal.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

const send = viaDefaultExport;

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const headers = (token: string, session?: string) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
  ...(session ? { "mcp-session-id": session } : {}),
});

async function rpc(token: string, session: string | undefined, body: unknown): Promise<Response> {
  return send(
    new Request(`${ORIGIN}/mcp`, { method: "POST", headers: headers(token, session), body: JSON.stringify(body) }),
  );
}

/** The JSON-RPC messages of an SSE or JSON response. */
async function messages(
  res: Response,
): Promise<{ id?: unknown; result?: Record<string, unknown>; error?: { message: string } }[]> {
  const text = await res.text();
  if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) return [JSON.parse(text)];
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)));
}

async function openSession(token: string): Promise<string> {
  const init = await rpc(token, undefined, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "workers-test", version: "1" } },
  });
  expect(init.status).toBe(200);
  const session = init.headers.get("mcp-session-id");
  expect(session).toBeTruthy();
  await init.text();
  const ready = await rpc(token, session ?? "", { jsonrpc: "2.0", method: "notifications/initialized" });
  expect(ready.status).toBe(202);
  return session ?? "";
}

describe("MCP sessions live in Durable Objects, bound to their principal", () => {
  it("a session survives the eviction of its Durable Object (rebuilt from storage, not from isolate memory)", async () => {
    const token = await tokenFor("dave");
    const session = await openSession(token);
    const before = await messages(await rpc(token, session, { jsonrpc: "2.0", id: 2, method: "tools/list" }));
    expect(before[0]?.result).toEqual({ tools: [] });

    const stub = env.MCP_SESSIONS.get(env.MCP_SESSIONS.idFromName(sessionObjectName("mock:dave", session)));
    await evictDurableObject(stub);

    const after = await rpc(token, session, { jsonrpc: "2.0", id: 3, method: "tools/list" });
    expect(after.status).toBe(200);
    const [reply] = await messages(after);
    expect(reply?.id).toBe(3);
    expect(reply?.result).toEqual({ tools: [] });
    // The negotiated protocol version survived too.
    const ping = await rpc(token, session, { jsonrpc: "2.0", id: 4, method: "ping" });
    expect((await messages(ping))[0]?.result).toEqual({});
  });

  it("another principal presenting the session id gets 404, even with a valid token", async () => {
    const dave = await tokenFor("dave");
    const erin = await tokenFor("erin");
    const session = await openSession(dave);
    const stolen = await rpc(erin, session, { jsonrpc: "2.0", id: 2, method: "tools/list" });
    expect(stolen.status).toBe(404);
    expect(((await stolen.json()) as { error: { message: string } }).error.message).toContain("Session not found");
    expect((await rpc(dave, session, { jsonrpc: "2.0", id: 3, method: "ping" })).status).toBe(200);
  });

  it("an unknown session id is 404; a request without one, other than initialize, is 400 (MCP transports)", async () => {
    const token = await tokenFor("dave");
    expect((await rpc(token, "never-issued", { jsonrpc: "2.0", id: 1, method: "tools/list" })).status).toBe(404);
    const orphan = await rpc(token, undefined, { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(orphan.status).toBe(400);
  });

  it("after DELETE the session is gone, also after eviction", async () => {
    const token = await tokenFor("dave");
    const session = await openSession(token);
    const deleted = await send(new Request(`${ORIGIN}/mcp`, { method: "DELETE", headers: headers(token, session) }));
    expect(deleted.status).toBe(200);
    await evictDurableObject(
      env.MCP_SESSIONS.get(env.MCP_SESSIONS.idFromName(sessionObjectName("mock:dave", session))),
    );
    expect((await rpc(token, session, { jsonrpc: "2.0", id: 2, method: "tools/list" })).status).toBe(404);
  });
});
