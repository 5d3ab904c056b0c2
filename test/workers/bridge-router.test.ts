import { describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  importBridgeKey,
  ReplayCache,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";
import { bridgeFetchFor, containerName } from "../../worker/bridge/router.ts";

const SECRET = "test-only-bridge-secret-0123456789abcdef";

/**
 * FakeContainerNamespace: stands in for the `BRIDGE` Durable Object namespace (Cloudflare Containers
 * cannot run here). It records which object each request went to and answers 200.
 */
class FakeContainerNamespace {
  readonly calls: { name: string; request: Request }[] = [];
  idFromName(name: string) {
    return { name } as unknown as DurableObjectId;
  }
  get(id: DurableObjectId) {
    const name = (id as unknown as { name: string }).name;
    return {
      fetch: async (request: Request) => {
        this.calls.push({ name, request });
        return new Response("{}", { status: 200 });
      },
    } as unknown as DurableObjectStub;
  }
}

describe("routing to the bridge containers (catalog isolation decides the instance)", () => {
  it("per-user servers get a container per (server, principal); shared servers one per server", () => {
    expect(containerName("memory", "github:583231")).toBe("user:memory:github:583231");
    expect(containerName("everything", "github:583231")).toBe("shared:everything");
    expect(containerName("memory", "mock:alice")).not.toBe(containerName("memory", "mock:bob"));
  });

  it("each request carries a fresh credential for that principal, server and session, and never the client's token", async () => {
    const key = await importBridgeKey(SECRET);
    const namespace = new FakeContainerNamespace();
    const fetchBridge = bridgeFetchFor(
      { key, insecureDevBridgeUrl: null, containers: namespace as unknown as DurableObjectNamespace },
      "mock:bob",
    );
    await fetchBridge("memory", "/servers/memory/mcp", {
      method: "POST",
      headers: {
        authorization: "Bearer client-token",
        "mcp-session-id": "bridge-session-1",
        "content-type": "application/json",
      },
      body: "{}",
    });
    await fetchBridge("everything", "/servers/everything/mcp", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });

    expect(namespace.calls.map((c) => c.name)).toEqual(["user:memory:mock:bob", "shared:everything"]);
    const [first, second] = namespace.calls;
    expect(first?.request.headers.get("authorization")).toBeNull();
    const replay = new ReplayCache(100);
    const verified = await verifyBridgeCredential(first?.request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
      key,
      replay,
      server: "memory",
      use: "mcp",
      sessionId: "bridge-session-1",
    });
    expect(verified).toMatchObject({ ok: true, claims: { sub: "mock:bob", srv: "memory", sid: "bridge-session-1" } });
    // The second request's credential is for another server: not usable on memory.
    const crossed = await verifyBridgeCredential(second?.request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
      key,
      replay,
      server: "memory",
      use: "mcp",
      sessionId: undefined,
    });
    expect(crossed).toMatchObject({ ok: false, reason: "wrong_server" });
  });

  it("/execute requests carry an execute credential", async () => {
    const key = await importBridgeKey(SECRET);
    const namespace = new FakeContainerNamespace();
    const fetchBridge = bridgeFetchFor(
      { key, insecureDevBridgeUrl: null, containers: namespace as unknown as DurableObjectNamespace },
      "mock:frank",
    );
    await fetchBridge("memory", "/execute", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const verified = await verifyBridgeCredential(namespace.calls[0]?.request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
      key,
      replay: new ReplayCache(10),
      server: "memory",
      use: "execute",
      sessionId: undefined,
    });
    expect(verified.ok).toBe(true);
  });

  it("no bridge configured: a clear 503, not a crash", async () => {
    const key = await importBridgeKey(SECRET);
    const fetchBridge = bridgeFetchFor({ key, insecureDevBridgeUrl: null, containers: undefined }, "mock:bob");
    await expect(fetchBridge("memory", "/servers/memory/mcp", {})).rejects.toMatchObject({ status: 503 });
  });
});
