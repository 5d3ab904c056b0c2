import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DIRECT_SESSION_PREFIX } from "../../worker/mcp/direct-call.ts";
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

async function openSession(token: string, capabilities: Record<string, unknown> = {}): Promise<string> {
  const init = await rpc(token, undefined, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities, clientInfo: { name: "workers-test", version: "1" } },
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

  it("a session is recorded in D1 for direct tool calls, and the record goes when the session ends", async () => {
    const token = await tokenFor("dave");
    const record = (session: string) =>
      env.DB.prepare("SELECT principal, direct_calls FROM mcp_sessions WHERE session_id = ?")
        .bind(session)
        .first<{ principal: string; direct_calls: number }>();
    // A client that can answer no server→client request: its calls may skip the session object.
    const plain = await openSession(token);
    expect(plain.startsWith(DIRECT_SESSION_PREFIX)).toBe(true);
    expect(await record(plain)).toEqual({ principal: "mock:dave", direct_calls: 1 });
    // A client that declares elicitation keeps every call on the session object (the call's own stream).
    const eliciting = await openSession(token, { elicitation: {} });
    expect(eliciting.startsWith(DIRECT_SESSION_PREFIX)).toBe(false);
    expect(await record(eliciting)).toEqual({ principal: "mock:dave", direct_calls: 0 });

    const deleted = await send(new Request(`${ORIGIN}/mcp`, { method: "DELETE", headers: headers(token, plain) }));
    expect(deleted.status).toBe(200);
    // Gone before the client heard the session ended.
    expect(await record(plain)).toBeNull();
  });

  it("a session whose record was lost gets it back when its object is rebuilt", async () => {
    const token = await tokenFor("dave");
    const session = await openSession(token);
    await env.DB.prepare("DELETE FROM mcp_sessions WHERE session_id = ?").bind(session).run();
    await evictDurableObject(
      env.MCP_SESSIONS.get(env.MCP_SESSIONS.idFromName(sessionObjectName("mock:dave", session))),
    );
    expect((await rpc(token, session, { jsonrpc: "2.0", id: 2, method: "ping" })).status).toBe(200);
    const row = await env.DB.prepare("SELECT direct_calls FROM mcp_sessions WHERE session_id = ?")
      .bind(session)
      .first<{ direct_calls: number }>();
    expect(row?.direct_calls).toBe(1);
  });

  it("another principal's tool call on a session id with a bridge session on record is 404, never sent on", async () => {
    const dave = await tokenFor("dave");
    const erin = await tokenFor("erin");
    const session = await openSession(dave);
    // dave's session holds a bridge session for everything (as after his first call there).
    await env.DB.prepare("INSERT INTO mcp_session_backends VALUES ('mock:dave', ?, 'everything', 'b-1', '2025-11-25')")
      .bind(session)
      .run();
    // erin may call everything__echo herself, so only the session binding stands in her way. No bridge is
    // configured in this test Worker: a call sent on would come back as a transport error, not a 404.
    const res = await rpc(erin, session, {
      jsonrpc: "2.0",
      id: 5,
      method: "tools/call",
      params: { name: "everything__echo", arguments: { message: "hi" } },
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("Session not found");
  });
});
