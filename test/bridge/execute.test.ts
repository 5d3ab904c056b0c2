import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_ROUTES,
  bridgeMcpPath,
  MAX_JSON_DEPTH,
} from "../../container/src/contract.ts";
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
  return executeText(JSON.stringify(body), credential, server);
}

/** `execute` with the body as written: JSON.stringify itself overflows on the deep bodies below. */
async function executeText(body: string, credential?: string | null, server = "everything") {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const cred = credential === undefined ? await bridge.mint("github:alice", server, "execute") : credential;
  if (cred !== null) headers[BRIDGE_CREDENTIAL_HEADER] = cred;
  const res = await fetch(`${bridge.base}${BRIDGE_ROUTES.execute}`, { method: "POST", headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A JSON array nested `depth` levels, as text. */
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

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

describe("/execute takes exactly one JSON-RPC request and refuses anything else at once (no child is left to time out)", () => {
  it.each([
    ["a top-level `command` member", { ...ECHO, command: "sh" }],
    ["a top-level `args` member", { ...ECHO, args: ["-c", "id"] }],
    ["params that are a string", { ...ECHO, params: "echo" }],
    // JSON-RPC allows array params; MCP never uses them, and the SDK's servers drop such a message unanswered.
    ["params that are an array", { jsonrpc: "2.0", id: 3, method: "ping", params: [] }],
    ["no id", { jsonrpc: "2.0", method: "tools/call", params: ECHO.params }],
    ["an id that is an object", { ...ECHO, id: { n: 1 } }],
  ])("%s → 400 invalid_message, answered at once", async (_label, message) => {
    const started = Date.now();
    const res = await execute({ server: "everything", message });
    expect(res).toMatchObject({ status: 400, body: { error: { code: "invalid_message" } } });
    // Before this rule, the first two reached the child, which never answered: 60 s per call.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("the refusal names the member at fault", async () => {
    const res = await execute({ server: "everything", message: { ...ECHO, command: "sh" } });
    expect(res.body).toEqual({
      error: { code: "invalid_message", message: "message must be one JSON-RPC request: member not allowed: command" },
    });
  });
});

describe(`the bridge bounds JSON nesting at ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), with an iterative check`, () => {
  const deepMessage = (depth: number) =>
    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":${nested(depth)}}}}`;

  it("/execute: a body nested 5,000 levels (10 KB) → 400 too_deep, never a 500", async () => {
    const res = await executeText(`{"server":"everything","message":${deepMessage(5_000)}}`);
    expect(res).toEqual({
      status: 400,
      body: { error: { code: "too_deep", message: `request body nests more than ${MAX_JSON_DEPTH} levels` } },
    });
  });

  it("/execute: 1,000,000 levels (the whole 4 MiB) → 400 too_deep, and the bridge still answers", async () => {
    const res = await executeText(`{"server":"everything","message":${deepMessage(1_000_000)}}`);
    expect(res.status).toBe(400);
    expect((await execute({ server: "everything", message: ECHO })).status).toBe(200);
  });

  it("/servers/<id>/mcp: a body nested 5,000 levels → 400 too_deep", async () => {
    const res = await fetch(`${bridge.base}${bridgeMcpPath("everything")}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint("github:alice", "everything", "mcp"),
      },
      body: deepMessage(5_000),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "too_deep" } });
  });

  it("exactly at the limit is accepted: the bound is on nesting, not on ordinary messages", async () => {
    // The body is {server, message:{params:{arguments:{message: …}}}}: 4 levels before the array.
    const res = await executeText(`{"server":"everything","message":${deepMessage(MAX_JSON_DEPTH - 4)}}`);
    expect(res.status).toBe(200);
    expect((await executeText(`{"server":"everything","message":${deepMessage(MAX_JSON_DEPTH - 3)}}`)).status).toBe(
      400,
    );
  });
});
