import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../../container/src/contract.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { DIRECT_SESSION_PREFIX } from "../../worker/mcp/direct-call.ts";
import { shipAuditRows } from "./audit/ledgers.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * What the gateway accepts from a client, on every path (direct `d-` sessions, sessions through the
 * session object, HTTP+SSE), and the audit rows it writes for it: the Worker in workerd with real D1, KV
 * and Durable Objects. No bridge is configured here, so nothing below may need one: every case is decided
 * and answered before a server would be asked (a call that reached for the bridge would come back as a
 * transport error, which the row counts below would show).
 *
 * People (policies/environments/dev.ts): frank may use execute_stdio and every tool on `memory` only;
 * dave holds nothing.
 */

const send = viaDefaultExport;

async function seedDev(): Promise<void> {
  const compiled = await compilePolicy(POLICIES.dev);
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
}

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const headers = (token: string, session?: string, version = "2025-11-25") => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": version,
  ...(session ? { "mcp-session-id": session } : {}),
});

/** POSTs a body to /mcp: a value (serialised here) or text as written (deep bodies: JSON.stringify overflows). */
async function post(token: string, session: string | undefined, body: unknown): Promise<Response> {
  return send(
    new Request(`${ORIGIN}/mcp`, {
      method: "POST",
      headers: headers(token, session),
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

interface Reply {
  id?: unknown;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** The JSON-RPC messages of an SSE or JSON response. */
async function replies(res: Response): Promise<Reply[]> {
  const text = await res.text();
  if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) return [JSON.parse(text)];
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)));
}

async function reply(res: Response): Promise<Reply> {
  const [first] = await replies(res);
  if (!first) throw new Error("no JSON-RPC message in the response");
  return first;
}

async function openSession(token: string, capabilities: Record<string, unknown> = {}): Promise<string> {
  const init = await post(token, undefined, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities, clientInfo: { name: "workers-test", version: "1" } },
  });
  expect(init.status).toBe(200);
  const session = init.headers.get("mcp-session-id") ?? "";
  await init.text();
  expect((await post(token, session, { jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
  return session;
}

/** The two session kinds of /mcp: `d-` (calls may go straight to a container) and one through the session object. */
const SESSION_KINDS = [
  ["a direct (d-) session", {}],
  ["a session through the session object (the client declares sampling)", { sampling: {} }],
] as const;

async function sessionOfKind(token: string, capabilities: Record<string, unknown>): Promise<string> {
  const session = await openSession(token, capabilities);
  expect(session.startsWith(DIRECT_SESSION_PREFIX)).toBe(Object.keys(capabilities).length === 0);
  if (session.startsWith(DIRECT_SESSION_PREFIX)) {
    // As after a first call there: the session holds a bridge session for memory, so a valid call to it
    // would take the direct path. Refusals must not.
    await env.DB.prepare("INSERT INTO mcp_session_backends VALUES ('mock:frank', ?, 'memory', 'b-1', '2025-11-25')")
      .bind(session)
      .run();
  }
  return session;
}

interface Row {
  action: string;
  server: string | null;
  tool: string | null;
  decision: string;
  reason: string;
  outcome: string | null;
  args_digest: string | null;
}

async function auditRows(principal: string): Promise<Row[]> {
  await shipAuditRows();
  const { results } = await env.DB.prepare(
    "SELECT action, server, tool, decision, reason, outcome, args_digest FROM audit_log WHERE principal = ? ORDER BY id",
  )
    .bind(principal)
    .all<Row>();
  return results;
}

/** `"[[…]]"` nested `depth` levels, as text. */
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

/** A tools/call whose arguments nest `depth` levels below `arguments.a`, as text (10 KB at 5,000). */
const deepCall = (name: string, depth: number, id = 9) =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${name}","arguments":{"a":${nested(depth)}}}}`;

describe(`JSON nesting is bounded at ${MAX_JSON_DEPTH} levels at the boundary, on every path (MAX_JSON_DEPTH)`, () => {
  for (const [kind, capabilities] of SESSION_KINDS) {
    describe(kind, () => {
      it("a tools/call nested 5,000 levels on a tool the caller may use → 400, -32602, a plain message, one audit row", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const res = await post(frank, session, deepCall("memory__read_graph", 5_000));
        expect(res.status).toBe(400);
        const answer = await reply(res);
        expect(answer).toEqual({
          jsonrpc: "2.0",
          id: 9,
          error: {
            code: -32602,
            message: `Invalid tools/call request: nested more than ${MAX_JSON_DEPTH} levels deep.`,
          },
        });
        expect(await auditRows("mock:frank")).toEqual([
          {
            action: "tools/call",
            server: "memory",
            tool: "read_graph",
            decision: "deny",
            reason: "invalid_params",
            outcome: null,
            args_digest: expect.stringMatching(/^[0-9a-f]{64}$/),
          },
        ]);
      });

      it("the same on a tool the caller may not use → 400 and exactly `Tool <name> not found`, one denial row", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const res = await post(frank, session, deepCall("everything__echo", 5_000));
        expect(res.status).toBe(400);
        expect((await reply(res)).error).toEqual({ code: -32602, message: "Tool everything__echo not found" });
        expect(await auditRows("mock:frank")).toMatchObject([
          { action: "tools/call", server: "everything", tool: "echo", decision: "deny", reason: "tool_not_granted" },
        ]);
      });

      it("params nested 20,000 levels beside the arguments → 400 -32602, one row, never `server not available`", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const body = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"memory__read_graph","arguments":{},"x":${nested(20_000)}}}`;
        const res = await post(frank, session, body);
        expect(res.status).toBe(400);
        expect((await reply(res)).error?.code).toBe(-32602);
        const rows = await auditRows("mock:frank");
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ decision: "deny", reason: "invalid_params", outcome: null });
      });

      it("execute_stdio with a message nested 5,000 levels: frank (execute on memory) → -32602; dave → not found; a row each", async () => {
        await seedDev();
        for (const [person, expected] of [
          [
            "frank",
            { code: -32602, message: `Invalid tools/call request: nested more than ${MAX_JSON_DEPTH} levels deep.` },
          ],
          ["dave", { code: -32602, message: "Tool execute_stdio not found" }],
        ] as const) {
          const token = await tokenFor(person);
          const session = await openSession(token, capabilities);
          const body = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"execute_stdio","arguments":{"server":"memory","message":{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":${nested(5_000)}}}}}}`;
          const res = await post(token, session, body);
          expect(res.status).toBe(400);
          expect((await reply(res)).error).toEqual(expected);
          expect(await auditRows(`mock:${person}`)).toMatchObject([
            {
              action: "execute_stdio",
              decision: "deny",
              reason: person === "frank" ? "invalid_params" : "needs_execute",
            },
          ]);
        }
      });
    });
  }

  it("over HTTP+SSE: a deep tools/call to /sse/message → 400 -32602 and one row", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const sse = await openSse(frank);
    try {
      const res = await send(
        new Request(`${ORIGIN}${sse.endpoint}`, {
          method: "POST",
          headers: { authorization: `Bearer ${frank}`, "content-type": "application/json" },
          body: deepCall("memory__read_graph", 5_000),
        }),
      );
      expect(res.status).toBe(400);
      expect(((await res.json()) as Reply).error?.code).toBe(-32602);
      expect(await auditRows("mock:frank")).toMatchObject([{ action: "tools/call", reason: "invalid_params" }]);
    } finally {
      await sse.close();
    }
  });

  it("messages that decide nothing (a notification, a response, tools/list) nested too deep → 400, no row", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await openSession(frank);
    const cases = [
      [`{"jsonrpc":"2.0","method":"notifications/progress","params":{"a":${nested(5_000)}}}`, -32600],
      [`{"jsonrpc":"2.0","id":3,"result":{"a":${nested(5_000)}}}`, -32600],
      [`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"a":${nested(5_000)}}}`, -32602],
      [`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":${nested(5_000)}}`, -32600],
    ] as const;
    for (const [body, code] of cases) {
      const res = await post(frank, session, body);
      expect(res.status).toBe(400);
      const answer = (await res.json()) as Reply;
      expect(answer.error?.code).toBe(code);
      expect(answer.error?.message).not.toMatch(/stack|Maximum call|at /);
    }
    expect(await auditRows("mock:frank")).toEqual([]);
  });

  it("a body that is nothing but nesting, up to the 4 MiB cap → 400, never a 500", async () => {
    const frank = await tokenFor("frank");
    const session = await openSession(frank);
    const res = await post(frank, session, nested(2_000_000));
    expect(res.status).toBe(400);
    expect(((await res.json()) as Reply).error?.code).toBe(-32600);
  });

  it("exactly at the limit a call is valid: the bound is on nesting, not on ordinary arguments", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await openSession(frank, { sampling: {} });
    // message → params → arguments: 3 levels above the array, so this message nests exactly MAX_JSON_DEPTH.
    const res = await post(frank, session, deepCall("everything__echo", MAX_JSON_DEPTH - 3));
    // Valid, so it is decided (denied: frank holds nothing on everything) with HTTP 200, not refused for its depth.
    expect(res.status).toBe(200);
    expect((await reply(res)).error?.message).toBe("Tool everything__echo not found");
    expect((await post(frank, session, deepCall("everything__echo", MAX_JSON_DEPTH - 2))).status).toBe(400);
  });
});

describe("bypass attempts: nesting smuggled past the boundary", () => {
  it("a batch with one deep member is refused whole, before anything in it is decided (no row)", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await openSession(frank);
    const body = `[{"jsonrpc":"2.0","id":1,"method":"ping"},${deepCall("memory__read_graph", 5_000, 2)}]`;
    const res = await post(frank, session, body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as Reply).error?.code).toBe(-32602);
    expect(await auditRows("mock:frank")).toEqual([]);
  });

  it("a deep call on a `d-` session whose bridge session is on record is refused, not sent straight to a container", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await sessionOfKind(frank, {});
    const res = await post(frank, session, deepCall("memory__create_entities", 20_000));
    expect(res.status).toBe(400);
    // One row, and it is the refusal: no transport_error from an attempt to reach the (absent) bridge.
    expect(await auditRows("mock:frank")).toMatchObject([{ decision: "deny", reason: "invalid_params" }]);
  });

  it("a too-deep initialize, or one in a batch, is refused before it can start a session", async () => {
    const frank = await tokenFor("frank");
    const res = await post(
      frank,
      undefined,
      `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"x":${nested(5_000)}},"clientInfo":{"name":"x","version":"1"}}}`,
    );
    expect(res.status).toBe(400);
    expect(res.headers.get("mcp-session-id")).toBeNull();
  });
});

describe("exactly one audit row per decision, whatever the params (tools/call, resources/read, prompts/get, execute_stdio)", () => {
  for (const [kind, capabilities] of SESSION_KINDS) {
    describe(kind, () => {
      it("arguments that are not an object: a tool the caller may not use → exactly `Tool <name> not found`; one it may → -32602; a row each", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const call = (id: number, name: string) =>
          post(frank, session, {
            jsonrpc: "2.0",
            id,
            method: "tools/call",
            params: { name, arguments: "notanobject" },
          });
        const denied = await call(1, "everything__get-env");
        expect(denied.status).toBe(200);
        expect((await reply(denied)).error).toEqual({ code: -32602, message: "Tool everything__get-env not found" });
        const allowed = await call(2, "memory__read_graph");
        expect(allowed.status).toBe(200);
        const answer = await reply(allowed);
        expect(answer.id).toBe(2);
        expect(answer.error?.code).toBe(-32602);
        expect(answer.error?.message).toMatch(/^Invalid tools\/call request: params\.arguments: /);
        expect(await auditRows("mock:frank")).toMatchObject([
          { tool: "get-env", decision: "deny", reason: "tool_not_granted" },
          { tool: "read_graph", decision: "deny", reason: "invalid_params" },
        ]);
      });

      it("what the SDK would refuse before any handler (a task, a bad _meta, a name that is not a string) is decided and recorded", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const params = [
          { name: "memory__read_graph", arguments: {}, task: { ttl: 1000 } },
          { name: "memory__read_graph", arguments: {}, _meta: 5 },
          { name: "everything__echo", arguments: {}, task: {} },
          { name: 42, arguments: {} },
        ];
        const answers: Reply[] = [];
        for (const [i, p] of params.entries()) {
          answers.push(
            await reply(await post(frank, session, { jsonrpc: "2.0", id: i, method: "tools/call", params: p })),
          );
        }
        expect(answers.map((a) => a.error?.code)).toEqual([-32602, -32602, -32602, -32602]);
        expect(answers[2]?.error?.message).toBe("Tool everything__echo not found");
        expect(await auditRows("mock:frank")).toMatchObject([
          { tool: "read_graph", reason: "invalid_params" },
          { tool: "read_graph", reason: "invalid_params" },
          { tool: "echo", reason: "tool_not_granted" },
          { tool: null, reason: "invalid_params" },
        ]);
      });

      it("resources/read and prompts/get with bad params: decided first, one row each", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const cases = [
          [
            "prompts/get",
            { name: "everything__simple-prompt", arguments: "x" },
            "Prompt everything__simple-prompt not found",
          ],
          [
            "resources/read",
            { uri: "hatago:everything:demo://resource/static/1", task: {} },
            "Resource hatago:everything:demo://resource/static/1 not found",
          ],
          ["prompts/get", { name: "memory__anything", arguments: "x" }, null],
          ["prompts/get", { name: ["memory__anything"] }, null],
        ] as const;
        for (const [i, [method, params, notFound]] of cases.entries()) {
          const answer = await reply(await post(frank, session, { jsonrpc: "2.0", id: i, method, params }));
          expect(answer.error?.code).toBe(-32602);
          if (notFound) expect(answer.error?.message).toBe(notFound);
          else expect(answer.error?.message).toMatch(/^Invalid prompts\/get request: /);
        }
        expect(await auditRows("mock:frank")).toMatchObject([
          { action: "prompts/get", server: "everything", reason: "server_not_granted" },
          { action: "resources/read", server: "everything", reason: "server_not_granted" },
          { action: "prompts/get", server: "memory", reason: "invalid_params" },
          { action: "prompts/get", server: null, reason: "invalid_params" },
        ]);
      });

      it("messages that are not JSON-RPC requests decide nothing: -32600, HTTP 400, no row", async () => {
        await seedDev();
        const frank = await tokenFor("frank");
        const session = await sessionOfKind(frank, capabilities);
        const bodies = [
          // params that are not an object
          { jsonrpc: "2.0", id: 1, method: "tools/call", params: "memory__read_graph" },
          { jsonrpc: "2.0", id: 1, method: "tools/call", params: ["memory__read_graph"] },
          // no id: a notification, which MCP's tools/call is not
          { jsonrpc: "2.0", method: "tools/call", params: { name: "memory__read_graph", arguments: {} } },
          // a member JSON-RPC does not have
          { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "memory__read_graph" }, command: "sh" },
          // an id JSON-RPC does not allow
          { jsonrpc: "2.0", id: { a: 1 }, method: "tools/call", params: { name: "memory__read_graph" } },
          { jsonrpc: "1.0", id: 1, method: "tools/call", params: { name: "memory__read_graph" } },
        ];
        for (const body of bodies) {
          const res = await post(frank, session, body);
          expect(res.status, JSON.stringify(body)).toBe(400);
          expect(((await res.json()) as Reply).error?.code, JSON.stringify(body)).toBe(-32600);
        }
        expect(await auditRows("mock:frank")).toEqual([]);
      });
    });
  }

  it("over HTTP+SSE: a call with bad arguments is answered on the stream and recorded once", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const sse = await openSse(frank);
    try {
      const res = await send(
        new Request(`${ORIGIN}${sse.endpoint}`, {
          method: "POST",
          headers: { authorization: `Bearer ${frank}`, "content-type": "application/json" },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 7,
            method: "tools/call",
            params: { name: "everything__echo", arguments: "notanobject" },
          }),
        }),
      );
      expect(res.status).toBe(202);
      expect(await sse.next()).toEqual({
        jsonrpc: "2.0",
        id: 7,
        error: { code: -32602, message: "Tool everything__echo not found" },
      });
      expect(await auditRows("mock:frank")).toMatchObject([{ tool: "echo", reason: "tool_not_granted" }]);
    } finally {
      await sse.close();
    }
  });
});

describe("execute_stdio reveals nothing to a caller who may not use it on that server", () => {
  const call = (token: string, session: string, id: number, args: unknown) =>
    post(token, session, {
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "execute_stdio", ...(args === undefined ? {} : { arguments: args }) },
    });
  const PING = { jsonrpc: "2.0", id: 1, method: "ping" };

  it("dave (no execute anywhere): whatever he sends, exactly `Tool execute_stdio not found`, and a denial row each", async () => {
    await seedDev();
    const dave = await tokenFor("dave");
    const session = await openSession(dave);
    const sent = [
      undefined,
      {},
      { server: "memory" },
      { server: "memory", message: PING, command: "sh" },
      { server: "nope", message: PING },
      { server: "memory", message: { ...PING, command: "sh" } },
      { server: "memory", message: PING },
    ];
    for (const [i, args] of sent.entries()) {
      const answer = await reply(await call(dave, session, i, args));
      expect(answer.error, JSON.stringify(args)).toEqual({ code: -32602, message: "Tool execute_stdio not found" });
    }
    const rows = await auditRows("mock:dave");
    expect(rows).toHaveLength(sent.length);
    expect(rows.every((r) => r.action === "execute_stdio" && r.decision === "deny")).toBe(true);
  });

  it("frank (execute on memory only): another server, an unknown one or none → not found; on memory, what is wrong is said", async () => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await openSession(frank);
    for (const [i, args] of [
      { server: "everything", message: PING },
      { server: "nope", message: PING, extra: 1 },
      { message: PING },
    ].entries()) {
      expect((await reply(await call(frank, session, i, args))).error?.message).toBe("Tool execute_stdio not found");
    }
    const answer = await reply(await call(frank, session, 9, { server: "memory", message: PING, command: "sh" }));
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toMatch(/^Invalid arguments for execute_stdio: /);
    expect((await auditRows("mock:frank")).map((r) => [r.server, r.reason])).toEqual([
      ["everything", "needs_execute"],
      [null, "unknown_server"],
      [null, "unknown_server"],
      ["memory", "invalid_params"],
    ]);
  });
});

describe("bypass attempts: naming a server execute_stdio's decision does not know", () => {
  it.each(["Memory", "memory ", "constructor", "__proto__", ["memory"], { toString: "memory" }])(
    "server %j → exactly `Tool execute_stdio not found`, even for frank",
    async (server) => {
      await seedDev();
      const frank = await tokenFor("frank");
      const session = await openSession(frank);
      const res = await post(frank, session, {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "execute_stdio", arguments: { server, message: { jsonrpc: "2.0", id: 1, method: "ping" } } },
      });
      expect((await reply(res)).error).toEqual({ code: -32602, message: "Tool execute_stdio not found" });
      expect(await auditRows("mock:frank")).toMatchObject([{ decision: "deny", reason: "unknown_server" }]);
    },
  );
});

describe("execute_stdio's message is exactly one JSON-RPC request, refused at once otherwise (no 60 s wait)", () => {
  it.each([
    ["a top-level command", { jsonrpc: "2.0", id: 1, method: "ping", command: "sh" }, "member not allowed: command"],
    ["top-level args", { jsonrpc: "2.0", id: 1, method: "ping", args: ["-c", "id"] }, "member not allowed: args"],
    ["params that are an array", { jsonrpc: "2.0", id: 1, method: "ping", params: [] }, "params must be an object"],
    ["no id", { jsonrpc: "2.0", method: "ping" }, "id must be a string or a number"],
    ["a response", { jsonrpc: "2.0", id: 1, result: {} }, "member not allowed: result"],
  ])("%s → -32602 from the gateway, recorded, nothing sent to the bridge", async (_label, message, problem) => {
    await seedDev();
    const frank = await tokenFor("frank");
    const session = await openSession(frank);
    const started = Date.now();
    const res = await post(frank, session, {
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "execute_stdio", arguments: { server: "memory", message } },
    });
    const answer = await reply(res);
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toBe(`Invalid arguments for execute_stdio: message: ${problem}`);
    expect(Date.now() - started).toBeLessThan(5_000);
    // invalid_params, not a transport_error from a request the (absent) bridge was asked to run.
    expect(await auditRows("mock:frank")).toMatchObject([
      { action: "execute_stdio", server: "memory", decision: "deny", reason: "invalid_params", outcome: null },
    ]);
  });
});

describe("the server assigns every session id (MCP transports, session management)", () => {
  const initialize = (id = 1) => ({
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "workers-test", version: "1" } },
  });

  it("an initialize carrying a chosen Mcp-Session-Id → 400 -32600, and no session exists under that id", async () => {
    const dave = await tokenFor("dave");
    const res = await post(dave, "rt-chosen-session-id-1", initialize());
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: { code: -32600, message: "initialize must not carry Mcp-Session-Id." },
    });
    expect((await post(dave, "rt-chosen-session-id-1", { jsonrpc: "2.0", id: 2, method: "tools/list" })).status).toBe(
      404,
    );
    const recorded = await env.DB.prepare("SELECT count(*) AS n FROM mcp_sessions WHERE session_id = ?")
      .bind("rt-chosen-session-id-1")
      .first<{ n: number }>();
    expect(recorded?.n).toBe(0);
  });

  it("a DELETEd session's id cannot be initialized again (with new capabilities or any)", async () => {
    const dave = await tokenFor("dave");
    const session = await openSession(dave);
    expect(session.startsWith(DIRECT_SESSION_PREFIX)).toBe(true);
    const deleted = await send(new Request(`${ORIGIN}/mcp`, { method: "DELETE", headers: headers(dave, session) }));
    expect(deleted.status).toBe(200);
    const again = await post(dave, session, {
      ...initialize(),
      params: { ...initialize().params, capabilities: { sampling: {}, roots: {} } },
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as Reply).error?.message).toBe("initialize must not carry Mcp-Session-Id.");
    expect((await post(dave, session, { jsonrpc: "2.0", id: 2, method: "tools/list" })).status).toBe(404);
  });

  it("a fresh initialize gets a server-made id: never the one a client would like", async () => {
    const dave = await tokenFor("dave");
    const a = await openSession(dave);
    const b = await openSession(dave);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^d-[0-9a-f-]{36}$/);
  });
});

describe("bypass attempts: choosing a session id another way", () => {
  it("an initialize inside a batch, with a chosen id → 400, no session", async () => {
    const dave = await tokenFor("dave");
    const res = await post(dave, "d-chosen", [
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "x", version: "1" } },
      },
    ]);
    expect(res.status).toBe(400);
    expect((await post(dave, "d-chosen", { jsonrpc: "2.0", id: 2, method: "ping" })).status).toBe(404);
  });

  it("a live session's own id in a second initialize → 400, and the session is unchanged", async () => {
    const dave = await tokenFor("dave");
    const session = await openSession(dave);
    const res = await post(dave, session, {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: { sampling: {} },
        clientInfo: { name: "x", version: "1" },
      },
    });
    expect(res.status).toBe(400);
    expect((await post(dave, session, { jsonrpc: "2.0", id: 2, method: "ping" })).status).toBe(200);
  });
});

/** An HTTP+SSE session: the GET /sse stream, its message endpoint, and the messages it carries. */
async function openSse(token: string) {
  const res = await send(
    new Request(`${ORIGIN}/sse`, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } }),
  );
  expect(res.status).toBe(200);
  const reader = res.body?.getReader();
  if (!reader) throw new Error("no SSE body");
  const decoder = new TextDecoder();
  let buffered = "";
  const nextEvent = async (): Promise<{ event: string; data: string }> => {
    for (;;) {
      const end = buffered.indexOf("\n\n");
      if (end !== -1) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (block.startsWith(":")) continue;
        const event = block.match(/^event: (.*)$/m)?.[1] ?? "message";
        const data = block.match(/^data: (.*)$/m)?.[1] ?? "";
        return { event, data };
      }
      const { done, value } = await reader.read();
      if (done) throw new Error("SSE stream ended");
      buffered += decoder.decode(value, { stream: true });
    }
  };
  const endpoint = (await nextEvent()).data;
  const postMessage = (message: unknown) =>
    send(
      new Request(`${ORIGIN}${endpoint}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(message),
      }),
    );
  const init = await postMessage({
    jsonrpc: "2.0",
    id: "init",
    method: "initialize",
    params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "workers-sse", version: "1" } },
  });
  expect(init.status).toBe(202);
  expect(JSON.parse((await nextEvent()).data)).toMatchObject({ id: "init" });
  expect((await postMessage({ jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
  return {
    endpoint,
    next: async () => JSON.parse((await nextEvent()).data) as unknown,
    close: () => reader.cancel(),
  };
}

describe("one audit row per decision even when the server cannot be reached (found by the fuzz test)", () => {
  it.each(SESSION_KINDS)(
    "on %s, an allowed call to a server that cannot start is one allow row with transport_error",
    async (_kind, capabilities) => {
      await seedDev();
      const token = await tokenFor("bob");
      const session = await openSession(token, capabilities);
      // No bridge can run in this test runtime, so the call's server connection fails (503 or an error answer).
      const res = await post(token, session, {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "everything__echo", arguments: { message: "x" } },
      });
      expect(res.status === 200 || res.status === 503).toBe(true);
      expect((await reply(res)).error?.message).toContain('"everything" server is not available');
      expect(await auditRows("mock:bob")).toMatchObject([
        { action: "tools/call", server: "everything", tool: "echo", decision: "allow", outcome: "transport_error" },
      ]);
    },
  );

  it("a tool outside the snapshot on a granted server that cannot list its tools is refused (fail closed), one row", async () => {
    await seedDev();
    const token = await tokenFor("bob");
    const session = await openSession(token, { sampling: {} });
    const res = await post(token, session, {
      jsonrpc: "2.0",
      id: 8,
      method: "tools/call",
      params: { name: "memory__added_since_the_snapshot", arguments: {} },
    });
    expect((await reply(res)).error?.message).toBe("Tool memory__added_since_the_snapshot not found");
    expect(await auditRows("mock:bob")).toMatchObject([
      { action: "tools/call", server: "memory", decision: "deny", reason: "server_unavailable" },
    ]);
  });
});
