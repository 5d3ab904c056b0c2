import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BRIDGE_CREDENTIAL_HEADER, BRIDGE_ROUTES } from "../../container/src/contract.ts";
import { type BridgeProcess, startBridge } from "./harness.ts";

let bridge: BridgeProcess;
beforeAll(async () => {
  bridge = await startBridge();
});
afterAll(async () => {
  await bridge?.stop();
});

const ECHO = { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "echo", arguments: { message: "exec" } } };

async function execute(body: unknown, credential?: string | null, server = "everything") {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const cred = credential === undefined ? await bridge.mint("github:alice", server, "execute") : credential;
  if (cred !== null) headers[BRIDGE_CREDENTIAL_HEADER] = cred;
  const res = await fetch(`${bridge.base}${BRIDGE_ROUTES.execute}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("POST /execute: one JSON-RPC request to a catalog server's process", () => {
  it("answers a tools/call with the server's response and the caller's id", async () => {
    expect(await execute({ server: "everything", message: ECHO })).toEqual({
      status: 200,
      body: { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "Echo: exec" }] } },
    });
  });

  it("answers initialize from the bridge's handshake without re-initializing the shared child", async () => {
    const res = await execute({
      server: "everything",
      message: {
        jsonrpc: "2.0",
        id: "i",
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {} },
      },
    });
    expect(res).toMatchObject({
      status: 200,
      body: { id: "i", result: { serverInfo: { name: "mcp-servers/everything" } } },
    });
  });

  it("runs per-user servers as the credential's principal", async () => {
    const res = await execute(
      {
        server: "memory",
        message: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "read_graph", arguments: {} } },
      },
      undefined,
      "memory",
    );
    expect(res).toMatchObject({ status: 200, body: { id: 1, result: { content: [{ type: "text" }] } } });
  });
});

describe("POST /execute bypass attempts (CVE-2025-49596 class: a request must never name a process)", () => {
  it.each(["command", "args", "env", "cwd", "shell"])("a `%s` field → 400, nothing runs", async (field) => {
    const res = await execute({
      server: "everything",
      message: ECHO,
      [field]: field === "args" ? ["-e", "x"] : "/bin/sh",
    });
    expect(res).toEqual({
      status: 400,
      body: { error: { code: "field_not_allowed", message: `field not allowed: ${field}` } },
    });
  });

  it("an unknown field → 400", async () => {
    expect(await execute({ server: "everything", message: ECHO, extra: 1 })).toMatchObject({
      status: 400,
      body: { error: { code: "field_not_allowed" } },
    });
  });

  it.each(["nope", "Everything", "constructor", 5])("unknown server %s → 404", async (server) => {
    expect((await execute({ server, message: ECHO })).status).toBe(404);
  });

  it("a notification or response instead of one request → 400", async () => {
    for (const message of [
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } },
      { jsonrpc: "2.0", id: 1, result: {} },
      [ECHO],
    ]) {
      expect((await execute({ server: "everything", message })).status).toBe(400);
    }
  });

  it("without a credential → 401 before the body is considered", async () => {
    expect(await execute({ server: "everything", message: ECHO, command: "x" }, null)).toMatchObject({
      status: 401,
      body: { error: { code: "credential_missing" } },
    });
  });

  it("a credential for another server → 403; an /mcp credential → 403", async () => {
    expect(
      (await execute({ server: "everything", message: ECHO }, await bridge.mint("github:alice", "memory", "execute")))
        .body,
    ).toMatchObject({
      error: { code: "credential_wrong_server" },
    });
    expect(
      (await execute({ server: "everything", message: ECHO }, await bridge.mint("github:alice", "everything", "mcp")))
        .body,
    ).toMatchObject({
      error: { code: "credential_wrong_use" },
    });
  });

  it("logging/setLevel and subscriptions (shared per-process state) are refused with a JSON-RPC error", async () => {
    const res = await execute({
      server: "everything",
      message: { jsonrpc: "2.0", id: 2, method: "logging/setLevel", params: { level: "debug" } },
    });
    expect(res).toMatchObject({ status: 200, body: { id: 2, error: { code: -32601 } } });
  });
});
