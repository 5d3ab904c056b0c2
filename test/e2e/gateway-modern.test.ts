import { fileURLToPath } from "node:url";
import type { Client as ModernClient } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CLIENT_CAPABILITIES } from "../../policies/client-capabilities.ts";
import { listServerTools } from "../../scripts/lib/server-tools.ts";
import { d1Query, d1QuerySettled, d1QueryUntil } from "./helpers/d1.ts";
import { type Connected, callError, connectAs, connectModernAs } from "./helpers/mcp-client.ts";
import type { DemoOAuthProvider, DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

/**
 * Both MCP eras on the same /mcp at the same time (MCP 2026-07-28, versioning: a dual-era server): a real
 * modern client (@modelcontextprotocol/client 2.4, `versionNegotiation: auto`: probes with server/discover
 * and stays modern only on definitive modern evidence) and a real legacy client (@modelcontextprotocol/sdk
 * 1.32), each through the full OAuth flow (discovery → registration → consent → mock login → token), on
 * the local stack with the real bridge and the real `everything` server.
 *
 * The stack is `npm start`'s, with the real bridge started through test/e2e/fixtures/modern-bridge.ts: an
 * 8 s call timeout (so a call waiting for its client's input times out within a test) and debug logs (so
 * the bridge's cancellation of a call toward its server can be seen).
 *
 * Ports 18700–18702 (the stack takes base, base+1, base+2).
 */
const BASE = 18700;
const MODERN_BRIDGE = fileURLToPath(new URL("./fixtures/modern-bridge.ts", import.meta.url));
/** The fixture bridge's call timeout (HATAGO_BRIDGE_CALL_TIMEOUT_MS). */
const CALL_TIMEOUT_MS = 8_000;
let stack: TestStack;
const closers: (() => Promise<void>)[] = [];

interface ModernConnected {
  readonly client: ModernClient;
  readonly provider: DemoOAuthProvider;
}

/** The modern client, signed in with the same OAuth helper the legacy tests use. */
async function connectModern(
  person: DemoPerson,
  capabilities: Record<string, unknown> = {},
  setup: (client: ModernClient) => void = () => {},
): Promise<ModernConnected> {
  const { client, provider } = await connectModernAs(stack.url, person, { capabilities, setup });
  closers.push(() => client.close());
  return { client, provider };
}

async function connectLegacy(person: DemoPerson, capabilities: Record<string, unknown> = {}): Promise<Connected> {
  const c = await connectAs(stack.url, person, { clientOptions: { capabilities } });
  closers.push(() => c.client.close());
  return c;
}

async function modernCallError(client: ModernClient, name: string, args: Record<string, unknown> = {}) {
  try {
    const result = await client.callTool({ name, arguments: args });
    return { result };
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    return { code: e.code, message: String(e.message) };
  }
}

beforeAll(async () => {
  stack = await startTestStack(BASE, { bridgeEntry: MODERN_BRIDGE });
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => {});
  await stack?.dispose();
});

describe("a modern client (SDK 2.4) and a legacy client (SDK 1.32) on the same /mcp, at the same time", () => {
  it("the modern client stays modern (no initialize fallback) and needs no session", async () => {
    const modern = await connectModern("erin");
    expect(modern.client.getProtocolEra()).toBe("modern");
    expect(modern.client.getNegotiatedProtocolVersion()).toBe("2026-07-28");
    expect(modern.client.getServerVersion()).toMatchObject({ name: "hatago-auth" });
  });

  it("list and call, in both eras at once, with the same answers", async () => {
    const [modern, legacy] = await Promise.all([connectModern("erin"), connectLegacy("erin")]);
    const [modernTools, legacyTools] = await Promise.all([modern.client.listTools(), legacy.client.listTools()]);
    const names = (l: { tools: { name: string }[] }) => l.tools.map((t) => t.name).sort();
    expect(names(modernTools)).toEqual(names(legacyTools));
    expect(names(modernTools)).toEqual([
      "everything__echo",
      "everything__get-sum",
      "everything__simulate-research-query",
    ]);
    const [m, l] = await Promise.all([
      modern.client.callTool({ name: "everything__echo", arguments: { message: "modern" } }),
      legacy.client.callTool({ name: "everything__echo", arguments: { message: "legacy" } }),
    ]);
    expect(JSON.stringify(m.content)).toContain("Echo: modern");
    expect(JSON.stringify(l.content)).toContain("Echo: legacy");
    const sum = await modern.client.callTool({ name: "everything__get-sum", arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain("5");
  });

  it("a modern tools/call is one decision and one audit row, with no session id", async () => {
    const modern = await connectModern("erin");
    const countSql = "SELECT COUNT(*) AS n FROM audit_log WHERE principal = 'mock:erin'";
    const count = (rows: Row[]) => Number(rows[0]?.n);
    const before = count(await d1QuerySettled(stack.stateDir, countSql));
    await modern.client.callTool({ name: "everything__echo", arguments: { message: "row" } });
    // Every row of the call in D1 (the count grew, then held still), before counting them.
    const after = count(await d1QuerySettled(stack.stateDir, countSql, (r) => count(r) > before));
    const rows = await d1Query(
      stack.stateDir,
      "SELECT session_id, outcome FROM audit_log WHERE principal = 'mock:erin' ORDER BY id DESC LIMIT 1",
    );
    expect(after - before).toBe(1);
    expect(rows[0]).toMatchObject({ session_id: null, outcome: "ok" });
  });
});

describe("the permission matrix in both eras: what one era may not do, the other may not either", () => {
  for (const person of ["alice", "bob", "carol", "dave", "erin", "frank"] as const) {
    it(`${person}: the same tool list in both eras, and the same answer to everything__get-env (admins only)`, async () => {
      const [modern, legacy] = await Promise.all([connectModern(person), connectLegacy(person)]);
      const names = (l: { tools: { name: string }[] }) => l.tools.map((t) => t.name).sort();
      const listed = names(await legacy.client.listTools());
      expect(names(await modern.client.listTools())).toEqual(listed);
      // get-env is admins only: a denial must read the same in both eras.
      const legacyDenied = await callError(legacy.client, "everything__get-env");
      const modernDenied = await modernCallError(modern.client, "everything__get-env");
      if (legacyDenied === null) expect("result" in modernDenied).toBe(true);
      else expect(modernDenied.message).toContain("Tool everything__get-env not found");
    });
  }
});

describe("a client sees what it can use, in both eras (modern: the request's _meta client capabilities)", () => {
  const PROBES: Record<string, Record<string, unknown>> = {
    none: {},
    sampling: { sampling: {} },
    "elicitation (url)": { elicitation: { url: {} } },
    roots: { roots: {} },
    "all of them": ALL_CLIENT_CAPABILITIES,
  };
  for (const [label, capabilities] of Object.entries(PROBES)) {
    it(`bob declaring ${label}: the same list in both eras, what the server lists to such a client less what the policy refuses`, async () => {
      const [modern, legacy] = await Promise.all([
        connectModern("bob", capabilities),
        connectLegacy("bob", capabilities),
      ]);
      const everything = (l: { tools: { name: string }[] }) =>
        l.tools
          .map((t) => t.name)
          .filter((n) => n.startsWith("everything__"))
          .sort();
      const direct = await listServerTools("everything", capabilities);
      // bob may use every everything tool but get-env and gzip-file-as-resource (policies/environments/dev.ts).
      const expected = Object.keys(direct.tools)
        .filter((t) => t !== "get-env" && t !== "gzip-file-as-resource")
        .map((t) => `everything__${t}`)
        .sort();
      expect(everything(await modern.client.listTools())).toEqual(expected);
      expect(everything(await legacy.client.listTools())).toEqual(expected);
      if (!("sampling" in capabilities)) {
        // bob may call it: the modern answer names what is missing (-32021); the legacy one reads "not found".
        const refused = await modernCallError(modern.client, "everything__trigger-sampling-request", { prompt: "x" });
        expect(refused).toMatchObject({ code: -32021, message: expect.stringContaining("sampling") });
        expect(
          (await callError(legacy.client, "everything__trigger-sampling-request", { prompt: "x" }))?.message,
        ).toContain("Tool everything__trigger-sampling-request not found");
      }
    });
  }

  it("a modern call of a tool the request's capabilities cannot use is audited as a denial", async () => {
    const modern = await connectModern("bob");
    const since = await lastRowId("mock:bob");
    await modernCallError(modern.client, "everything__get-roots-list", {});
    const rows = await d1QueryUntil(
      stack.stateDir,
      `SELECT tool, decision, reason, session_id FROM audit_log WHERE principal = 'mock:bob' AND id > ${since} ORDER BY id DESC LIMIT 1`,
      (r) => r.length > 0,
    );
    expect(rows[0]).toMatchObject({
      tool: "get-roots-list",
      decision: "deny",
      reason: "client_capability_missing",
      session_id: null,
    });
  });
});

describe("modern resources, prompts and completion: the same answers, decision and audit as the legacy path", () => {
  it("carol (a server-wide read): lists, a read, a prompt and a completion answer the same in both eras", async () => {
    const [modern, legacy] = await Promise.all([connectModern("carol"), connectLegacy("carol")]);
    const uris = (l: { resources: { uri: string }[] }) => l.resources.map((r) => r.uri).sort();
    const modernResources = await modern.client.listResources();
    expect(modernResources.resources.length).toBeGreaterThan(0);
    expect(uris(modernResources)).toEqual(uris(await legacy.client.listResources()));
    const templates = (l: { resourceTemplates: { uriTemplate: string }[] }) =>
      l.resourceTemplates.map((t) => t.uriTemplate).sort();
    expect(templates(await modern.client.listResourceTemplates())).toEqual(
      templates(await legacy.client.listResourceTemplates()),
    );

    const uri = modernResources.resources.find((r) => r.uri.startsWith("hatago:everything:"))?.uri ?? "";
    const [m, l] = await Promise.all([modern.client.readResource({ uri }), legacy.client.readResource({ uri })]);
    expect(m.contents[0]?.uri).toBe(uri);
    expect(m.contents).toEqual(l.contents);

    const names = (l: { prompts: { name: string }[] }) => l.prompts.map((p) => p.name).sort();
    const modernPrompts = await modern.client.listPrompts();
    expect(names(modernPrompts)).toContain("everything__simple-prompt");
    expect(names(modernPrompts)).toEqual(names(await legacy.client.listPrompts()));
    const [mp, lp] = await Promise.all([
      modern.client.getPrompt({ name: "everything__simple-prompt" }),
      legacy.client.getPrompt({ name: "everything__simple-prompt" }),
    ]);
    expect(mp.messages).toEqual(lp.messages);

    const completion = {
      ref: { type: "ref/prompt" as const, name: "everything__completable-prompt" },
      argument: { name: "department", value: "E" },
    };
    const [mc, lc] = await Promise.all([modern.client.complete(completion), legacy.client.complete(completion)]);
    expect(mc.completion.values).toEqual(["Engineering"]);
    expect(mc.completion.values).toEqual(lc.completion.values);
  });

  it("a modern read is one decision and one audit row, with no session id; a refused one reads as missing", async () => {
    const carol = await connectModern("carol");
    const uri = (await carol.client.listResources()).resources[0]?.uri ?? "";
    const since = await lastRowId("mock:carol");
    await carol.client.readResource({ uri });
    const rows = await d1QueryUntil(
      stack.stateDir,
      `SELECT action, decision, outcome, session_id FROM audit_log WHERE principal = 'mock:carol' AND id > ${since} ORDER BY id DESC LIMIT 1`,
      (r) => r.length > 0,
    );
    expect(rows[0]).toMatchObject({ action: "resources/read", decision: "allow", outcome: "ok", session_id: null });

    const erin = await connectModern("erin");
    expect((await erin.client.listResources()).resources).toEqual([]);
    await expect(erin.client.readResource({ uri })).rejects.toThrow(/not found/);
    await expect(erin.client.getPrompt({ name: "everything__simple-prompt" })).rejects.toThrow(/not found/);
  });
});

type Row = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The highest audit row id of a principal so far, every earlier answer's row in (rows after it are the next requests'). */
async function lastRowId(principal: string): Promise<number> {
  const rows = await d1QuerySettled(
    stack.stateDir,
    `SELECT COALESCE(MAX(id), 0) AS n FROM audit_log WHERE principal = '${principal}'`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** The principal's rows after `afterId`, once `expected` of them are in D1 (the audit log ships them there). */
function rowsAfter(principal: string, afterId: number, expected: number): Promise<Row[]> {
  return d1QueryUntil(
    stack.stateDir,
    `SELECT tool, decision, reason, outcome, session_id FROM audit_log WHERE principal = '${principal}' AND id > ${afterId} ORDER BY id`,
    (rows) => rows.length >= expected,
  );
}

/** Bob's client, able to answer what its capabilities say, recording what it was asked. */
async function bobAnswering(capabilities: Record<string, unknown>) {
  const asked: { method: string; params: unknown }[] = [];
  const logs: Record<string, unknown>[] = [];
  const bob = await connectModern("bob", capabilities, (client) => {
    if ("elicitation" in capabilities) {
      client.setRequestHandler("elicitation/create", async (request) => {
        asked.push({ method: request.method, params: request.params });
        return { action: "accept", content: { name: "Ada Lovelace" } };
      });
    }
    if ("sampling" in capabilities) {
      client.setRequestHandler("sampling/createMessage", async (request) => {
        asked.push({ method: request.method, params: request.params });
        return { role: "assistant", content: { type: "text", text: "sampled by the modern client" }, model: "e2e" };
      });
    }
    if ("roots" in capabilities) {
      client.setRequestHandler("roots/list", async (request) => {
        asked.push({ method: request.method, params: request.params });
        return { roots: [{ uri: "file:///home/bob/secret-project", name: "secret" }] };
      });
    }
    client.setNotificationHandler("notifications/message", (n) => {
      logs.push(n.params as Record<string, unknown>);
    });
  });
  return { ...bob, asked, logs };
}

const textOf = (result: { content?: unknown }) => JSON.stringify(result.content ?? result);

describe("MRTR: a stdio server's questions reach a modern client as input requests (basic/patterns/mrtr)", () => {
  it("elicitation: the client's own handler answers, the same call completes; rows: input_required, then the call's", async () => {
    const bob = await bobAnswering({ elicitation: { form: {} } });
    const since = await lastRowId("mock:bob");
    const result = await bob.client.callTool({ name: "everything__trigger-elicitation-request", arguments: {} });
    expect(bob.asked.map((a) => a.method)).toEqual(["elicitation/create"]);
    expect(JSON.stringify(bob.asked[0]?.params)).toContain("requestedSchema");
    expect(textOf(result)).toContain("Name: Ada Lovelace");
    const rows = await rowsAfter("mock:bob", since, 2);
    expect(rows).toEqual([
      {
        tool: "trigger-elicitation-request",
        decision: "allow",
        reason: "input_required",
        outcome: null,
        session_id: null,
      },
      { tool: "trigger-elicitation-request", decision: "allow", reason: "granted", outcome: "ok", session_id: null },
    ]);
  });

  it("sampling: the client's model answers the server's sampling request through the retry", async () => {
    const bob = await bobAnswering({ sampling: {} });
    const result = await bob.client.callTool({
      name: "everything__trigger-sampling-request",
      arguments: { prompt: "say hi to the gateway" },
    });
    expect(bob.asked.map((a) => a.method)).toEqual(["sampling/createMessage"]);
    expect(JSON.stringify(bob.asked[0]?.params)).toContain("say hi to the gateway");
    expect(textOf(result)).toContain("sampled by the modern client");
  });

  it("roots: `everything` is shared, so the bridge never gives it roots: the client is not asked, the call completes", async () => {
    // Roots through MRTR themselves are proven on a per-user server in test/bridge/modern-execute.test.ts.
    const bob = await bobAnswering({ roots: {} });
    const result = await bob.client.callTool({ name: "everything__get-roots-list", arguments: {} });
    expect(bob.asked).toEqual([]);
    expect(textOf(result)).not.toContain("secret-project");
    expect(textOf(result)).toContain("no roots");
  });

  it("a tool whose capability the request did not declare: -32021 naming it (basic/index, MissingRequiredClientCapability)", async () => {
    const bob = await bobAnswering({});
    const refused = await modernCallError(bob.client, "everything__trigger-elicitation-request");
    expect(refused.code).toBe(-32021);
    expect(refused.message).toContain("elicitation.form");
  });
});

describe("progress, log lines and cancellation of a modern call, on its own response stream", () => {
  it("progress arrives in order on the call's stream, then the result", async () => {
    const bob = await bobAnswering({});
    const progress: number[] = [];
    const result = await bob.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 1.5, steps: 5 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(textOf(result)).toContain("completed");
  });

  it("log lines arrive only for a request that set io.modelcontextprotocol/logLevel, named after their server", async () => {
    const bob = await bobAnswering({});
    // toggle-simulated-logging logs once at once when it starts (then every 5 s, process-wide: it is turned off).
    const on = await bob.client.callTool({ name: "everything__toggle-simulated-logging", arguments: {} });
    expect(textOf(on)).toContain("Started");
    expect(bob.logs).toEqual([]);
    await bob.client.callTool({ name: "everything__toggle-simulated-logging", arguments: {} });
    const again = await bob.client.callTool({
      name: "everything__toggle-simulated-logging",
      arguments: {},
      _meta: { "io.modelcontextprotocol/logLevel": "debug" },
    });
    expect(textOf(again)).toContain("Started");
    await bob.client.callTool({ name: "everything__toggle-simulated-logging", arguments: {} });
    expect(bob.logs.length).toBeGreaterThan(0);
    expect(bob.logs[0]?.logger).toBe("everything");
  });

  it("closing the stream cancels the call toward its server: the bridge sends notifications/cancelled", async () => {
    const bob = await bobAnswering({});
    const controller = new AbortController();
    const since = await lastRowId("mock:bob");
    const seen = stack.output.length;
    const started = Date.now();
    const call = bob.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 30, steps: 60 } },
      { signal: controller.signal, onprogress: () => controller.abort("e2e cancel") },
    );
    await expect(call).rejects.toThrow();
    // The bridge logs `call.cancelled` right after writing notifications/cancelled to the child (multiplexer.ts).
    const deadline = Date.now() + 10_000;
    let line: string | undefined;
    while (!line && Date.now() < deadline) {
      line = stack.output
        .slice(seen)
        .find((l) => l.includes('"event":"call.cancelled"') && l.includes('"reason":"client disconnected"'));
      if (!line) await sleep(100);
    }
    expect(line).toBeDefined();
    expect(Date.now() - started).toBeLessThan(10_000);
    // The call's row says how it ended: never completed.
    const rows = await rowsAfter("mock:bob", since, 1);
    expect(rows[0]).toMatchObject({
      tool: "trigger-long-running-operation",
      decision: "allow",
      outcome: "transport_error",
    });
    // And bob can go on calling.
    expect(textOf(await bob.client.callTool({ name: "everything__echo", arguments: { message: "after" } }))).toContain(
      "Echo: after",
    );
  });
});

describe("cancellation of a quiet call (no progress): the stream's heartbeat finds the client gone", () => {
  it("a call that sends nothing is still cancelled toward its server when its client closes the stream", async () => {
    const bob = await bobAnswering({});
    const controller = new AbortController();
    const seen = stack.output.length;
    const call = bob.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 30, steps: 2 } },
      { signal: controller.signal },
    );
    // Past STREAM_AFTER_MS (call-stream.ts): the answer is a stream by then, with a heartbeat.
    setTimeout(() => controller.abort("e2e cancel"), 1_500);
    await expect(call).rejects.toThrow();
    const deadline = Date.now() + 10_000;
    let line: string | undefined;
    while (!line && Date.now() < deadline) {
      line = stack.output
        .slice(seen)
        .find((l) => l.includes('"event":"call.cancelled"') && l.includes('"reason":"client disconnected"'));
      if (!line) await sleep(100);
    }
    expect(line).toBeDefined();
  });
});

describe("hostile: a waiting call is continued by its caller alone, with its own state, before its deadline", () => {
  const ELICIT = { name: "everything__trigger-elicitation-request", arguments: {} };
  type InputRequired = { resultType: string; inputRequests: Record<string, unknown>; requestState: string };

  /** Bob's first leg in manual mode: the InputRequiredResult itself (the SDK would otherwise answer it). */
  const bobWaiting = async () => {
    const bob = await bobAnswering({ elicitation: { form: {} } });
    const first = (await bob.client.callTool(ELICIT, { allowInputRequired: true })) as unknown as InputRequired;
    expect(first.resultType).toBe("input_required");
    const key = Object.keys(first.inputRequests)[0] ?? "";
    return { bob, first, key };
  };
  const retryAs = (client: ModernClient, first: InputRequired, key: string, name: string) =>
    client.callTool({
      ...ELICIT,
      inputResponses: { [key]: { action: "accept", content: { name } } },
      requestState: first.requestState,
    } as Parameters<ModernClient["callTool"]>[0]);

  // Each test answers within the bridge's call timeout: slow checks (D1 reads that wait for rows) come after.
  it("alice presenting bob's requestState is refused and learns nothing; bob's own retry still completes", async () => {
    const alice = await connectModern("alice", { elicitation: { form: {} } });
    const since = await lastRowId("mock:alice");
    const { bob, first, key } = await bobWaiting();
    await expect(retryAs(alice.client, first, key, "Mallory")).rejects.toThrow(/requestState is not valid/);
    const own = await retryAs(bob.client, first, key, "Bob Himself");
    expect(textOf(own)).toContain("Name: Bob Himself");
    expect(textOf(own)).not.toContain("Mallory");
    expect(await rowsAfter("mock:alice", since, 1)).toEqual([
      {
        tool: "trigger-elicitation-request",
        decision: "deny",
        reason: "request_state_invalid",
        outcome: null,
        session_id: null,
      },
    ]);
  });

  it("a garbled or forged requestState is refused with its own denial row", async () => {
    const since = await lastRowId("mock:bob");
    const { bob, first, key } = await bobWaiting();
    await expect(retryAs(bob.client, { ...first, requestState: "garbage" }, key, "x")).rejects.toThrow(
      /requestState is not valid/,
    );
    const [v, payload = "", mac = ""] = first.requestState.split(".");
    const forged = `${v}.${payload}.${mac.startsWith("A") ? "B" : "A"}${mac.slice(1)}`;
    await expect(retryAs(bob.client, { ...first, requestState: forged }, key, "x")).rejects.toThrow(
      /requestState is not valid/,
    );
    // The real state still works, once.
    expect(textOf(await retryAs(bob.client, first, key, "Real"))).toContain("Name: Real");
    await expect(retryAs(bob.client, first, key, "Replayed")).rejects.toThrow(/no longer waiting/);
    const rows = await rowsAfter("mock:bob", since, 5);
    expect(rows.map((r) => [r.decision, r.reason, r.outcome])).toEqual([
      ["allow", "input_required", null],
      ["deny", "request_state_invalid", null],
      ["deny", "request_state_invalid", null],
      ["allow", "granted", "ok"],
      ["deny", "call_not_waiting", null],
    ]);
  });

  it(`a retry after the bridge's call timeout (${CALL_TIMEOUT_MS} ms): the child was answered and the call is gone`, async () => {
    const { bob, first, key } = await bobWaiting();
    const seen = stack.output.length;
    // Until the bridge gave up on the call (it logs that as it drops the call), not a fixed wait.
    await expect
      .poll(() => stack.output.slice(seen).some((l) => l.includes('"event":"modern.input_timed_out"')), {
        timeout: CALL_TIMEOUT_MS + 5_000,
        interval: 100,
      })
      .toBe(true);
    const since = await lastRowId("mock:bob");
    await expect(retryAs(bob.client, first, key, "too late")).rejects.toThrow(/no longer waiting/);
    expect(await rowsAfter("mock:bob", since, 1)).toEqual([
      expect.objectContaining({ decision: "deny", reason: "call_not_waiting" }),
    ]);
  }, 30_000);

  it("a modern request carrying a legacy session id is served statelessly: the session is not used or echoed", async () => {
    const legacy = await connectLegacy("alice");
    const sessionId = (legacy.transport as { sessionId?: string }).sessionId;
    expect(sessionId).toBeTruthy();
    const bob = await connectModern("bob");
    const token = bob.provider.tokens()?.access_token ?? "";
    const since = await lastRowId("mock:bob");
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "everything__echo",
        "mcp-session-id": String(sessionId),
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "everything__echo",
          arguments: { message: "stateless" },
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toBeNull();
    expect(JSON.stringify(await res.json())).toContain("Echo: stateless");
    expect(await rowsAfter("mock:bob", since, 1)).toEqual([
      expect.objectContaining({ session_id: null, outcome: "ok" }),
    ]);
  });
});
