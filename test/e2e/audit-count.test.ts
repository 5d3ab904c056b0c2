import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../../container/src/contract.ts";
import { d1QueryUntil } from "./helpers/d1.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

// Ports 18565–18567.
const BASE = 18565;
let stack: TestStack;
const opened: Connected[] = [];

beforeAll(async () => {
  stack = await startTestStack(BASE);
});

afterAll(async () => {
  for (const c of opened) await c.client.close().catch(() => {});
  await stack?.dispose();
});

/**
 * One path to the gateway: the real SDK client over a session of one kind, plus raw POSTs on the same
 * session for what the SDK client cannot send (its own JSON.stringify overflows on a 5,000-deep value,
 * and it only sends well-formed requests).
 */
interface Path {
  readonly connected: Connected;
  /** The gateway session's id: what the audit rows carry. */
  readonly sessionId: string;
  /** POSTs a body as written, on this session; the answer when it came on the POST itself. */
  raw(body: string): Promise<{ status: number; body: { error?: { code: number; message: string } } }>;
}

async function streamablePath(capabilities: Record<string, unknown>): Promise<Path> {
  const connected = await connectAs(stack.url, "frank", { clientOptions: { capabilities } });
  opened.push(connected);
  const transport = connected.transport;
  if (!(transport instanceof StreamableHTTPClientTransport)) throw new Error("a Streamable HTTP connection");
  const sessionId = transport.sessionId ?? "";
  return {
    connected,
    sessionId,
    async raw(body) {
      const res = await fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${connected.token()}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": sessionId,
          "mcp-protocol-version": transport.protocolVersion ?? "2025-11-25",
        },
        body,
      });
      return { status: res.status, body: JSON.parse(await res.text()) };
    },
  };
}

async function ssePath(): Promise<Path> {
  const connected = await connectAs(stack.url, "frank", { transport: "sse" });
  opened.push(connected);
  if (!(connected.transport instanceof SSEClientTransport)) throw new Error("an SSE connection");
  // The message endpoint the server named in its `endpoint` event (the SDK keeps it private).
  const endpoint = (connected.transport as unknown as { _endpoint?: URL })._endpoint;
  if (!endpoint) throw new Error("no SSE endpoint");
  return {
    connected,
    sessionId: endpoint.searchParams.get("sessionId") ?? "",
    async raw(body) {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${connected.token()}`, "content-type": "application/json" },
        body,
      });
      const text = await res.text();
      return { status: res.status, body: text.startsWith("{") ? JSON.parse(text) : {} };
    },
  };
}

/** `"[[…]]"` nested `depth` levels, as text. */
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

const PING = { jsonrpc: "2.0", id: 1, method: "ping" };

interface Step {
  readonly label: string;
  /** What the gateway must record for it, in order; `null`: not a decision, no row. */
  readonly row: readonly [decision: "allow" | "deny", reason: string, outcome: string | null] | null;
  run(path: Path): Promise<void>;
}

/** The error a call ends with (an McpError from the SDK client, or the HTTP error of a refused POST). */
async function failure(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    return String((error as { message?: unknown }).message);
  }
  throw new Error("expected the call to fail");
}

const call = (path: Path, name: string, args: unknown) =>
  // `arguments` as sent: some steps send what the SDK's types do not allow, on purpose.
  path.connected.client.callTool({ name, arguments: args as Record<string, unknown> });

/**
 * frank (policies/environments/dev.ts) may use every tool of `memory` and execute_stdio on `memory`, and
 * nothing on `everything`: one person gives allowed calls, denied calls and every execute_stdio case.
 */
const STEPS: readonly Step[] = [
  {
    label: "an allowed tool",
    row: ["allow", "granted", "ok"],
    run: async (p) => expect(JSON.stringify((await call(p, "memory__read_graph", {})).content)).toContain("entities"),
  },
  {
    label: "a denied tool",
    row: ["deny", "tool_not_granted", null],
    run: async (p) =>
      expect(await failure(() => call(p, "everything__echo", { message: "x" }))).toContain(
        "Tool everything__echo not found",
      ),
  },
  {
    label: "a tool that does not exist",
    row: ["deny", "unknown_tool", null],
    run: async (p) => expect(await failure(() => call(p, "nope__tool", {}))).toContain("Tool nope__tool not found"),
  },
  {
    label: "an allowed tool with arguments that are not an object",
    row: ["deny", "invalid_params", null],
    run: async (p) =>
      expect(await failure(() => call(p, "memory__read_graph", "notanobject"))).toContain(
        "Invalid tools/call request: params.arguments",
      ),
  },
  {
    label: "a denied tool with arguments that are not an object",
    row: ["deny", "tool_not_granted", null],
    run: async (p) =>
      expect(await failure(() => call(p, "everything__echo", "notanobject"))).toContain(
        "Tool everything__echo not found",
      ),
  },
  {
    label: "an allowed tool, arguments nested 5,000 levels",
    row: ["deny", "invalid_params", null],
    run: async (p) => {
      const res = await p.raw(
        `{"jsonrpc":"2.0","id":"deep-1","method":"tools/call","params":{"name":"memory__read_graph","arguments":{"a":${nested(5_000)}}}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.error).toEqual({
        code: -32602,
        message: `Invalid tools/call request: nested more than ${MAX_JSON_DEPTH} levels deep.`,
      });
    },
  },
  {
    label: "a denied tool, arguments nested 5,000 levels",
    row: ["deny", "tool_not_granted", null],
    run: async (p) => {
      const res = await p.raw(
        `{"jsonrpc":"2.0","id":"deep-2","method":"tools/call","params":{"name":"everything__echo","arguments":{"a":${nested(5_000)}}}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.error).toEqual({ code: -32602, message: "Tool everything__echo not found" });
    },
  },
  {
    label: "params nested 20,000 levels beside the arguments",
    row: ["deny", "invalid_params", null],
    run: async (p) => {
      const res = await p.raw(
        `{"jsonrpc":"2.0","id":"deep-3","method":"tools/call","params":{"name":"memory__create_entities","arguments":{"entities":[]},"x":${nested(20_000)}}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe(-32602);
    },
  },
  {
    label: "a prompt its granted server does not have (the server's JSON-RPC error)",
    row: ["allow", "granted", "jsonrpc_error"],
    run: async (p) => {
      await expect(p.connected.client.getPrompt({ name: "memory__no-such-prompt" })).rejects.toThrow();
    },
  },
  {
    label: "a prompt of a server not granted",
    row: ["deny", "server_not_granted", null],
    run: async (p) =>
      expect(await failure(() => p.connected.client.getPrompt({ name: "everything__simple-prompt" }))).toContain(
        "Prompt everything__simple-prompt not found",
      ),
  },
  {
    label: "execute_stdio on memory",
    row: ["allow", "granted", "ok"],
    run: async (p) =>
      expect(JSON.stringify(await call(p, "execute_stdio", { server: "memory", message: PING }))).toContain("result"),
  },
  {
    label: "execute_stdio with a top-level `command` in its message: refused at once",
    row: ["deny", "invalid_params", null],
    run: async (p) => {
      const started = Date.now();
      expect(
        await failure(() => call(p, "execute_stdio", { server: "memory", message: { ...PING, command: "sh" } })),
      ).toContain("Invalid arguments for execute_stdio: message: member not allowed: command");
      // It once reached the child, which never answered: 60 s.
      expect(Date.now() - started).toBeLessThan(5_000);
    },
  },
  {
    label: "execute_stdio on a server without execute",
    row: ["deny", "needs_execute", null],
    run: async (p) =>
      expect(await failure(() => call(p, "execute_stdio", { server: "everything", message: PING }))).toContain(
        "Tool execute_stdio not found",
      ),
  },
  {
    label: "execute_stdio without arguments",
    row: ["deny", "unknown_server", null],
    run: async (p) =>
      expect(await failure(() => call(p, "execute_stdio", undefined))).toContain("Tool execute_stdio not found"),
  },
  {
    label: "execute_stdio on a server that does not exist, with an unknown key",
    row: ["deny", "unknown_server", null],
    run: async (p) =>
      expect(await failure(() => call(p, "execute_stdio", { server: "nope", message: PING, env: {} }))).toContain(
        "Tool execute_stdio not found",
      ),
  },
  {
    label: "not a request: params that are not an object",
    row: null,
    run: async (p) => {
      const res = await p.raw(`{"jsonrpc":"2.0","id":"np-1","method":"tools/call","params":"memory__read_graph"}`);
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe(-32600);
    },
  },
  {
    label: "not a request: a tools/call without an id",
    row: null,
    run: async (p) => {
      const res = await p.raw(
        `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"memory__read_graph","arguments":{}}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe(-32600);
    },
  },
  {
    label: "not audited: tools/list",
    row: null,
    run: async (p) => expect((await p.connected.client.listTools()).tools.length).toBeGreaterThan(0),
  },
];

const PATHS: readonly [string, () => Promise<Path>][] = [
  ["a direct session (d-…)", () => streamablePath({})],
  ["a session through the session object (the client declares sampling)", () => streamablePath({ sampling: {} })],
  ["HTTP+SSE", ssePath],
];

describe("audit rows = decided requests exactly (one row per tools/call, resources/read, prompts/get, execute_stdio decision)", () => {
  for (const [label, open] of PATHS) {
    it(`${label}: ${STEPS.length} requests, ${STEPS.filter((s) => s.row).length} decided, as many rows`, async () => {
      const path = await open();
      expect(path.sessionId).not.toBe("");
      if (label.startsWith("a direct")) expect(path.sessionId.startsWith("d-")).toBe(true);
      if (label.startsWith("a session through")) expect(path.sessionId.startsWith("d-")).toBe(false);
      for (const step of STEPS) {
        await step.run(path).catch((error: unknown) => {
          throw new Error(`${step.label}: ${error instanceof Error ? error.message : String(error)}`);
        });
      }
      const expected = STEPS.flatMap((s) => (s.row ? [s.row] : []));
      // Rows reach D1 from the caller's ledger just after each answer (worker/audit/ledger.ts): wait until
      // as many as expected are there; more, fewer or others still fail below.
      const rows = await d1QueryUntil(
        stack.stateDir,
        `SELECT decision, reason, outcome FROM audit_log WHERE session_id = '${path.sessionId}' ORDER BY id`,
        (r) => r.length >= expected.length,
      );
      expect(rows.map((r) => [r.decision, r.reason, r.outcome])).toEqual(expected);
    }, 120_000);
  }
});
