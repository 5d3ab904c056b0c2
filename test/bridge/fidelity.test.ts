import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  type Progress,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CLIENT_CAPS, type BridgeProcess, connect, startBridge } from "./harness.ts";

/**
 * What server-everything sends must reach a real SDK client unchanged, through the bridge
 * (DESIGN.md "MCP gateway": every content type, isError, progress, logging, cancellation and
 * server→client requests).
 */

let bridge: BridgeProcess;
let client: Client;
const logs: unknown[] = [];

beforeAll(async () => {
  bridge = await startBridge({ HATAGO_BRIDGE_LOG_LEVEL: "debug" });
  ({ client } = await connect(bridge, "github:alice", "everything", { capabilities: ALL_CLIENT_CAPS }));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(n.params);
  });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
    model: "test-model",
    role: "assistant",
    content: { type: "text", text: `sampled for: ${JSON.stringify(request.params.messages[0]?.content)}` },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: "accept",
    content: { name: "Alice Example", check: true },
  }));
});

afterAll(async () => {
  await client?.close();
  await bridge?.stop();
});

type Content = { type: string; [key: string]: unknown };
const contentOf = (result: unknown) => (result as { content: Content[] }).content;

describe("tool results pass through unchanged", () => {
  it("image content (get-tiny-image)", async () => {
    const content = contentOf(await client.callTool({ name: "get-tiny-image", arguments: {} }));
    const image = content.find((c) => c.type === "image");
    expect(image).toMatchObject({ type: "image", mimeType: "image/png" });
    expect(Buffer.from(String(image?.data), "base64").subarray(1, 4).toString()).toBe("PNG");
  });

  it("resource links (get-resource-links)", async () => {
    const content = contentOf(await client.callTool({ name: "get-resource-links", arguments: { count: 3 } }));
    expect(content.filter((c) => c.type === "resource_link")).toHaveLength(3);
  });

  it("structured content (get-structured-content)", async () => {
    const result = await client.callTool({ name: "get-structured-content", arguments: { location: "Chicago" } });
    expect(result.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) });
  });

  it("isError results", async () => {
    const result = await client.callTool({ name: "get-sum", arguments: { a: "not a number", b: 1 } });
    expect(result.isError).toBe(true);
  });
});

describe("notifications pass through", () => {
  it("progress notifications for the call's progressToken arrive in order", async () => {
    const seen: Progress[] = [];
    const result = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => seen.push(p) },
    );
    expect(contentOf(result)[0]?.text).toContain("Long running operation completed");
    expect(seen).toEqual([
      { progress: 1, total: 3 },
      { progress: 2, total: 3 },
      { progress: 3, total: 3 },
    ]);
  });

  it("logging notifications reach the session that caused them", async () => {
    await client.setLoggingLevel("debug");
    await client.callTool({ name: "toggle-simulated-logging", arguments: {} });
    try {
      await expect.poll(() => logs.length, { timeout: 3_000 }).toBeGreaterThan(0);
      expect(logs[0]).toMatchObject({ level: expect.any(String), data: expect.stringContaining("message") });
    } finally {
      await client.callTool({ name: "toggle-simulated-logging", arguments: {} });
    }
  });
});

describe("the GET stream delivers server-initiated messages", () => {
  it("resource updates reach the subscribed session only, over its GET stream", async () => {
    const uri = "demo://resource/static/document/architecture.md";
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    const { client: other } = await connect(bridge, "github:bob", "everything", { capabilities: ALL_CLIENT_CAPS });
    const otherUpdates: string[] = [];
    other.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      otherUpdates.push(n.params.uri);
    });
    await client.subscribeResource({ uri });
    await client.callTool({ name: "toggle-subscriber-updates", arguments: {} });
    try {
      await expect.poll(() => updates, { timeout: 3_000 }).toContain(uri);
      expect(otherUpdates).toEqual([]);
    } finally {
      await client.callTool({ name: "toggle-subscriber-updates", arguments: {} });
      await client.unsubscribeResource({ uri });
      await other.close();
    }
  });
});

describe("server→client requests and the client's answers", () => {
  it("sampling: the client's completion goes back to the server (trigger-sampling-request)", async () => {
    const content = contentOf(
      await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "ping-42" } }),
    );
    expect(content[0]?.text).toContain("sampled for:");
    expect(content[0]?.text).toContain("ping-42");
    expect(content[0]?.text).toContain("test-model");
  });

  it("elicitation: the user's answer goes back to the server (trigger-elicitation-request)", async () => {
    const content = contentOf(await client.callTool({ name: "trigger-elicitation-request", arguments: {} }));
    const text = content.map((c) => c.text).join("\n");
    expect(text).toContain("Alice Example");
    expect(text).toContain("Agreed to terms: true");
  });
});

describe("cancellation from the client reaches the child", () => {
  it("an aborted call is cancelled toward the server, which then sends no response", async () => {
    const controller = new AbortController();
    const call = client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 1 } },
      undefined,
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort("user pressed stop"), 200);
    await expect(call).rejects.toThrow();
    await bridge.waitForLog((l) => l.event === "call.cancelled" && l.reason === "user pressed stop");
    // Had the child not received notifications/cancelled it would answer after 1 s, and the bridge
    // would log the late answer as unmatched. The SDK server drops answers to cancelled requests.
    await new Promise((r) => setTimeout(r, 1_300));
    expect(bridge.logs.filter((l) => l.event === "child.response_unmatched")).toEqual([]);
    // The session still works.
    expect(contentOf(await client.callTool({ name: "echo", arguments: { message: "after" } }))[0]?.text).toBe(
      "Echo: after",
    );
  });
});
