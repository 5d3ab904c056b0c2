import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type LoggingMessageNotification,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

// Ports 18545–18547.
let stack: TestStack;
const opened: Connected[] = [];
const logs: LoggingMessageNotification["params"][] = [];
const samplingAsked: string[] = [];
let alice: Connected;

beforeAll(async () => {
  stack = await startTestStack(18545);
  // Alice's client can answer sampling, elicitation and roots, like a desktop MCP client.
  alice = await connectAs(stack.url, "alice", {
    clientOptions: { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
    setup: (client) => {
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        const first = req.params.messages[0]?.content;
        samplingAsked.push(first && "text" in first ? String(first.text) : "");
        return { model: "e2e-model", role: "assistant", content: { type: "text", text: "sampled by the e2e client" } };
      });
      client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
      client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: "file:///e2e", name: "e2e" }] }));
      client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
        logs.push(n.params);
      });
    },
  });
  opened.push(alice);
});

afterAll(async () => {
  for (const c of opened) await c.client.close().catch(() => {});
  await stack?.dispose();
});

const raw = (token: string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  ...extra,
});

/** JSON-RPC messages of a response, whether it came as JSON or as an event stream. */
async function messages(res: Response): Promise<unknown[]> {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    return text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)));
  }
  const body = JSON.parse(text);
  return Array.isArray(body) ? body : [body];
}

describe("fidelity through the gateway (server → client traffic)", () => {
  it("logging notifications reach the client, named after their server", async () => {
    await alice.client.setLoggingLevel("debug");
    await alice.client.callTool({ name: "everything__toggle-simulated-logging", arguments: {} });
    const deadline = Date.now() + 15_000;
    while (logs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await alice.client.callTool({ name: "everything__toggle-simulated-logging", arguments: {} });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs[0]?.logger?.startsWith("everything")).toBe(true);
  }, 30_000);

  it("progress notifications arrive for a long-running call", async () => {
    const progress: number[] = [];
    const result = await alice.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 1, steps: 4 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(JSON.stringify(result.content)).toContain("completed");
  });

  it("a sampling request from the server is answered by the client", async () => {
    const result = await alice.client.callTool({
      name: "everything__trigger-sampling-request",
      arguments: { prompt: "say hi" },
    });
    expect(samplingAsked.some((p) => p.includes("say hi"))).toBe(true);
    expect(JSON.stringify(result.content)).toContain("sampled by the e2e client");
  });

  it("an elicitation request from the server is answered by the client", async () => {
    const result = await alice.client.callTool({ name: "everything__trigger-elicitation-request", arguments: {} });
    expect(JSON.stringify(result.content).toLowerCase()).toContain("declin");
  });

  it("cancellation from the client ends the call promptly", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const call = alice.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 20, steps: 20 } },
      undefined,
      {
        signal: controller.signal,
      },
    );
    setTimeout(() => controller.abort("e2e cancel"), 500);
    await expect(call).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    // The session is still healthy.
    expect(await callError(alice.client, "everything__echo", { message: "after cancel" })).toBeNull();
  });

  it("every content type and structured content pass through unchanged", async () => {
    const image = await alice.client.callTool({ name: "everything__get-tiny-image", arguments: {} });
    const types = (image.content as { type: string }[]).map((c) => c.type);
    expect(types).toContain("image");
    const imagePart = (image.content as { type: string; mimeType?: string; data?: string }[]).find(
      (c) => c.type === "image",
    );
    expect(imagePart?.mimeType).toBe("image/png");
    expect(imagePart?.data?.length).toBeGreaterThan(100);
    const links = await alice.client.callTool({ name: "everything__get-resource-links", arguments: { count: 2 } });
    expect((links.content as { type: string }[]).some((c) => c.type === "resource_link")).toBe(true);
    const structured = await alice.client.callTool({
      name: "everything__get-structured-content",
      arguments: { location: "Chicago" },
    });
    expect(structured.structuredContent).toMatchObject({
      temperature: expect.any(Number),
      conditions: expect.any(String),
    });
  });

  it("a tool's own error comes back as isError, not as a gateway error", async () => {
    const result = await alice.client
      .callTool({ name: "everything__get-sum", arguments: { a: "not a number", b: 1 } })
      .catch((e: unknown) => e);
    // The SDK server reports bad arguments either way; what matters is that it is the server's answer.
    if (result instanceof Error) expect(result.message).not.toContain("not found");
    else expect((result as { isError?: boolean }).isError).toBe(true);
  });

  it("resources and prompts of readable servers are listed and readable under hatago: URIs", async () => {
    const { resources } = await alice.client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    expect(resources.every((r) => r.uri.startsWith("hatago:everything:") || r.uri.startsWith("hatago:memory:"))).toBe(
      true,
    );
    const first = resources[0];
    const read = await alice.client.readResource({ uri: first?.uri ?? "" });
    expect(read.contents[0]?.uri).toBe(first?.uri);
    const { prompts } = await alice.client.listPrompts();
    expect(prompts.every((p) => p.name.startsWith("everything__") || p.name.startsWith("memory__"))).toBe(true);
  });

  it("a subscribed resource's updates reach the client under its hatago: URI", async () => {
    const updates: string[] = [];
    alice.client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => {
      updates.push(n.params.uri);
    });
    const resource = (await alice.client.listResources()).resources.find((r) => r.uri.startsWith("hatago:everything:"));
    expect(resource).toBeTruthy();
    await alice.client.subscribeResource({ uri: resource?.uri ?? "" });
    await alice.client.callTool({ name: "everything__toggle-subscriber-updates", arguments: {} });
    const deadline = Date.now() + 15_000;
    while (updates.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await alice.client.callTool({ name: "everything__toggle-subscriber-updates", arguments: {} });
    await alice.client.unsubscribeResource({ uri: resource?.uri ?? "" });
    expect(updates).toContain(resource?.uri);
  }, 30_000);

  it("a caller without a server-wide grant sees no resources (erin), and reading one is not found", async () => {
    const erin = await connectAs(stack.url, "erin");
    opened.push(erin);
    expect((await erin.client.listResources()).resources).toEqual([]);
    const { resources } = await alice.client.listResources();
    await expect(erin.client.readResource({ uri: resources[0]?.uri ?? "" })).rejects.toThrow(/not found/);
  });
});

describe("transports and protocol versions", () => {
  it("/sse (HTTP+SSE, 2024-11-05 transport) and /mcp give the same view", async () => {
    const viaSse = await connectAs(stack.url, "bob", { transport: "sse" });
    const viaMcp = await connectAs(stack.url, "bob");
    opened.push(viaSse, viaMcp);
    const a = (await viaSse.client.listTools()).tools.map((t) => t.name).sort();
    const b = (await viaMcp.client.listTools()).tools.map((t) => t.name).sort();
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(10);
    const echo = await viaSse.client.callTool({ name: "everything__echo", arguments: { message: "over sse" } });
    expect(JSON.stringify(echo.content)).toContain("over sse");
    expect(await callError(viaSse.client, "everything__get-env")).toEqual({
      code: -32602,
      message: "MCP error -32602: Tool everything__get-env not found",
    });
  });

  it("a 2025-03-26 client: negotiated, its batches handled", async () => {
    const carol = await connectAs(stack.url, "carol");
    opened.push(carol);
    const init = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: raw(carol.token()),
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "old", version: "1" } },
      }),
    });
    const session = init.headers.get("mcp-session-id") ?? "";
    const [hello] = (await messages(init)) as { result: { protocolVersion: string } }[];
    expect(hello?.result.protocolVersion).toBe("2025-03-26");
    const headers = raw(carol.token(), { "mcp-session-id": session, "mcp-protocol-version": "2025-03-26" });
    await (
      await fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
      })
    ).body?.cancel();
    const batch = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers,
      body: JSON.stringify([
        { jsonrpc: "2.0", id: 2, method: "tools/list" },
        {
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "everything__echo", arguments: { message: "batched" } },
        },
      ]),
    });
    expect(batch.status).toBe(200);
    const replies = (await messages(batch)) as { id: number; result?: { tools?: unknown[]; content?: unknown } }[];
    expect(replies.map((r) => r.id).sort()).toEqual([2, 3]);
    expect(JSON.stringify(replies.find((r) => r.id === 3))).toContain("batched");
  });

  it("a 2025-11-25 client: batches are refused (removed in 2025-06-18)", async () => {
    const carol = await connectAs(stack.url, "carol");
    opened.push(carol);
    const session = (carol.transport as { sessionId?: string }).sessionId ?? "";
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: raw(carol.token(), { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" }),
      body: JSON.stringify([{ jsonrpc: "2.0", id: 2, method: "tools/list" }]),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "batches are not part of MCP 2025-11-25",
    );
  });

  it("DELETE ends a session: its id is unknown afterwards", async () => {
    const dave = await connectAs(stack.url, "dave");
    const transport = dave.transport as { sessionId?: string; terminateSession(): Promise<void> };
    const session = transport.sessionId ?? "";
    await transport.terminateSession();
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: raw(dave.token(), { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
    });
    expect(res.status).toBe(404);
    await dave.client.close().catch(() => {});
  });
});
