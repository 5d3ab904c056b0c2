import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeProcess, connect, messagesOf, rawPost, rawSession, startBridge } from "./harness.ts";

let bridge: BridgeProcess;
const clients: Client[] = [];

beforeAll(async () => {
  bridge = await startBridge();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await bridge?.stop();
});

async function client(principal: string, server: string, options = {}) {
  const { client } = await connect(bridge, principal, server, options);
  clients.push(client);
  return client;
}

const textOf = (result: unknown) => JSON.stringify((result as { content?: unknown }).content);

describe("per-user isolation: memory runs a process per principal", () => {
  it("one principal's knowledge graph is invisible to another", async () => {
    const alice = await client("github:alice", "memory");
    const bob = await client("github:bob", "memory");
    await alice.callTool({
      name: "create_entities",
      arguments: { entities: [{ name: "AliceSecret", entityType: "note", observations: ["alice only"] }] },
    });
    expect(textOf(await alice.callTool({ name: "read_graph", arguments: {} }))).toContain("AliceSecret");
    expect(textOf(await bob.callTool({ name: "read_graph", arguments: {} }))).not.toContain("AliceSecret");
    const health = await bridge.health();
    const pids = (health.servers.memory?.children ?? []).map((c) => c.pid);
    expect(new Set(pids).size).toBe(2);
  });

  it("a second session of the same principal shares that principal's graph", async () => {
    const again = await client("github:alice", "memory");
    expect(textOf(await again.callTool({ name: "read_graph", arguments: {} }))).toContain("AliceSecret");
  });
});

describe("shared isolation: JSON-RPC ids are remapped (GHSA-345p-7cg4-v4c7, BR-20)", () => {
  it("two principals both sending id 0, many times concurrently, each get only their own answer", async () => {
    // Ids are unique per session, so concurrency comes from many sessions per principal, all using id 0.
    const SESSIONS = 16;
    const ROUNDS = 3;
    const open = (who: string) =>
      Promise.all(Array.from({ length: SESSIONS }, () => rawSession(bridge, who, "everything")));
    const sessions = { alice: await open("github:alice"), bob: await open("github:bob") };
    const ask = async (who: "alice" | "bob", session: string, text: string) => {
      const res = await rawPost(bridge, `github:${who}`, "everything", session, {
        jsonrpc: "2.0",
        id: 0,
        method: "tools/call",
        params: { name: "echo", arguments: { message: text } },
      });
      expect(res.status).toBe(200);
      const [message] = await messagesOf(res);
      return { text, message };
    };
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(
        (["alice", "bob"] as const).flatMap((who) =>
          sessions[who].map((session, i) => ask(who, session, `${who}-${round}-${i}`)),
        ),
      );
      for (const { text, message } of answers) {
        expect(message).toMatchObject({
          jsonrpc: "2.0",
          id: 0,
          result: { content: [{ type: "text", text: `Echo: ${text}` }] },
        });
      }
    }
  });

  it("a session reusing an id still in flight gets an error for the duplicate, not someone else's answer", async () => {
    const session = await rawSession(bridge, "github:carol", "everything");
    const call = (message: string) =>
      rawPost(bridge, "github:carol", "everything", session, {
        jsonrpc: "2.0",
        id: 0,
        method: "tools/call",
        params: {
          name: message === "slow" ? "trigger-long-running-operation" : "echo",
          arguments: message === "slow" ? { duration: 0.3, steps: 1 } : { message },
        },
      }).then(messagesOf);
    const [slow, dup] = await Promise.all([
      call("slow"),
      new Promise((r) => setTimeout(r, 50)).then(() => call("dup")),
    ]);
    expect(slow.at(-1)).toMatchObject({ id: 0, result: {} });
    expect(dup.at(-1)).toMatchObject({ id: 0, error: { code: -32600 } });
  });

  it("roots of one user never reach another through a shared server's cache (server-everything caches roots process-wide)", async () => {
    const rootsHandler = (uri: string) => async () => ({ roots: [{ uri, name: "home" }] });
    const alice = await client("github:alice", "everything", { capabilities: { roots: { listChanged: true } } });
    alice.setRequestHandler(ListRootsRequestSchema, rootsHandler("file:///home/alice-private"));
    const bob = await client("github:bob", "everything", { capabilities: { roots: { listChanged: true } } });
    bob.setRequestHandler(ListRootsRequestSchema, rootsHandler("file:///home/bob"));
    await alice.callTool({ name: "get-roots-list", arguments: {} });
    expect(textOf(await bob.callTool({ name: "get-roots-list", arguments: {} }))).not.toContain("alice-private");
  });
});
