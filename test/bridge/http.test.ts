import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BRIDGE_CREDENTIAL_HEADER, MCP_SESSION_HEADER } from "../../container/src/contract.ts";
import { type BridgeProcess, messagesOf, rawPost, rawSession, startBridge } from "./harness.ts";

/** Streamable HTTP details and admission limits, on a bridge that hosts `everything` only. */

let bridge: BridgeProcess;
beforeAll(async () => {
  bridge = await startBridge({
    HATAGO_BRIDGE_SERVERS: "everything",
    HATAGO_BRIDGE_MAX_SESSIONS: "12",
    HATAGO_BRIDGE_MAX_IN_FLIGHT: "2",
  });
});
afterAll(async () => {
  await bridge?.stop();
});

const initialize = (protocolVersion: string) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion, capabilities: {}, clientInfo: { name: "t", version: "1" } },
});
const echo = (id: number | string, message: string) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name: "echo", arguments: { message } },
});

describe("HATAGO_BRIDGE_SERVERS restricts what this instance hosts", () => {
  it("a catalog server not hosted here is unknown (404) and absent from /health", async () => {
    const res = await rawPost(bridge, "github:alice", "memory", undefined, initialize("2025-11-25"));
    expect(res.status).toBe(404);
    await res.text();
    expect(Object.keys((await bridge.health()).servers)).toEqual(["everything"]);
  });
});

describe("Streamable HTTP behaviour", () => {
  it("negotiates the protocol version: a supported one is echoed, an unknown one gets the latest", async () => {
    const old = await rawPost(bridge, "github:v", "everything", undefined, initialize("2025-03-26"));
    expect((await messagesOf(old))[0]).toMatchObject({ result: { protocolVersion: "2025-03-26" } });
    const future = await rawPost(bridge, "github:v", "everything", undefined, initialize("2099-01-01"));
    expect((await messagesOf(future))[0]).toMatchObject({ result: { protocolVersion: "2025-11-25" } });
  });

  it("an unsupported MCP-Protocol-Version header is a 400", async () => {
    const session = await rawSession(bridge, "github:v2", "everything");
    const res = await rawPost(bridge, "github:v2", "everything", session, echo(1, "x"), {
      "mcp-protocol-version": "2099-01-01",
    });
    expect(res.status).toBe(400);
    await res.text();
  });

  it("a POST of notifications only is 202 with no body; a batch gets an array of answers", async () => {
    const session = await rawSession(bridge, "github:batch", "everything");
    const note = await rawPost(bridge, "github:batch", "everything", session, {
      jsonrpc: "2.0",
      method: "notifications/initialized",
    });
    expect(note.status).toBe(202);
    expect(await note.text()).toBe("");
    const batch = await rawPost(bridge, "github:batch", "everything", session, [echo("a", "one"), echo("b", "two")]);
    const answers = await messagesOf(batch);
    expect(answers.map((a) => a.id).sort()).toEqual(["a", "b"]);
  });

  it("a client that accepts only SSE gets its answer as an event stream", async () => {
    const session = await rawSession(bridge, "github:sse", "everything");
    const res = await rawPost(bridge, "github:sse", "everything", session, echo(9, "streamed"), {
      accept: "text/event-stream",
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect((await messagesOf(res))[0]).toMatchObject({ id: 9, result: { content: [{ text: "Echo: streamed" }] } });
  });

  it("invalid JSON or JSON-RPC is a 400, never a 500", async () => {
    const session = await rawSession(bridge, "github:bad", "everything");
    for (const body of [
      "{not json",
      JSON.stringify({ id: 1, method: "x" }),
      "[]",
      JSON.stringify({ jsonrpc: "2.0", id: null, method: "x" }),
    ]) {
      const res = await rawPost(bridge, "github:bad", "everything", session, body);
      expect(res.status, body).toBe(400);
      await res.text();
    }
  });

  it("one GET stream per session (a second is 409); GET without text/event-stream is 406", async () => {
    const session = await rawSession(bridge, "github:get", "everything");
    const get = async (accept: string) =>
      fetch(bridge.url("everything"), {
        headers: {
          accept,
          [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint("github:get", "everything", "mcp", session),
          [MCP_SESSION_HEADER]: session,
        },
      });
    const first = await get("text/event-stream");
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/event-stream");
    const second = await get("text/event-stream");
    expect(second.status).toBe(409);
    await second.text();
    const json = await get("application/json");
    expect(json.status).toBe(406);
    await json.text();
    await first.body?.cancel();
  });
});

describe("session and call limits answer 503 with Retry-After", () => {
  it("beyond HATAGO_BRIDGE_MAX_IN_FLIGHT concurrent calls per server", async () => {
    const session = await rawSession(bridge, "github:alice", "everything");
    const slow = (id: number) =>
      rawPost(bridge, "github:alice", "everything", session, {
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "trigger-long-running-operation", arguments: { duration: 0.4, steps: 1 } },
      });
    const running = [slow(1), slow(2)];
    await new Promise((r) => setTimeout(r, 100));
    const refused = await rawPost(bridge, "github:alice", "everything", session, echo(3, "one too many"));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toMatchObject({ error: { code: "too_many_calls" } });
    for (const res of await Promise.all(running)) expect((await messagesOf(res)).at(-1)).toMatchObject({ result: {} });
    const later = await rawPost(bridge, "github:alice", "everything", session, echo(4, "room again"));
    expect((await messagesOf(later))[0]).toMatchObject({ id: 4, result: {} });
  });

  it("beyond HATAGO_BRIDGE_MAX_SESSIONS sessions per server; a DELETE frees a slot", async () => {
    const sessions: string[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 13 && !refused; i++) {
      const res = await rawPost(bridge, `github:user${i}`, "everything", undefined, initialize("2025-11-25"));
      if (res.status === 503) refused = res;
      else sessions.push(res.headers.get(MCP_SESSION_HEADER) ?? "");
      if (res.status !== 503) await res.text();
    }
    expect(refused?.status).toBe(503);
    expect(refused?.headers.get("retry-after")).toBe("1");
    expect(await refused?.json()).toMatchObject({ error: { code: "too_many_sessions" } });
    const last = sessions.length - 1;
    const del = await fetch(bridge.url("everything"), {
      method: "DELETE",
      headers: {
        [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint(`github:user${last}`, "everything", "mcp", sessions[last]),
        [MCP_SESSION_HEADER]: sessions[last] ?? "",
      },
    });
    expect(del.status).toBe(200);
    const again = await rawPost(bridge, "github:again", "everything", undefined, initialize("2025-11-25"));
    expect(again.status).toBe(200);
    await again.text();
  });
});
