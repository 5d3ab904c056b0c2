import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { withoutHeaderMirroring } from "../../worker/mcp/modern/headers.ts";
import { decodeSentinel } from "../../worker/mcp/modern/request.ts";
import {
  type CallIdentity,
  callBinding,
  REQUEST_STATE_TTL_SECONDS,
  requestStateKeyFrom,
  type StateOrigin,
  sealRequestState,
} from "../../worker/mcp/modern/request-state.ts";
import { shipAuditRows } from "./audit/ledgers.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * The stateless 2026-07-28 path on /mcp (basic/transports/streamable-http, "Request Metadata" and "Server
 * Validation"; basic/versioning), in workerd with real D1, KV and Durable Objects. No bridge runs here, so
 * every case is answered before a server would be asked; the e2e file (test/e2e/gateway-modern.test.ts)
 * runs real clients against real servers.
 *
 * People (policies/environments/dev.ts): erin may call everything__echo (researcher), not
 * everything__get-env (admins only); dave holds nothing.
 */
const send = viaDefaultExport;
const VERSION = "2026-07-28";

async function tokenFor(person: string): Promise<string> {
  return (await signedIn(person)).token;
}

/** A person's token and the OAuth client it was issued to (a requestState names both). */
async function signedIn(person: string): Promise<{ token: string; clientId: string }> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return { token: (await tokens(await client.exchange(code, pkce.verifier))).access_token, clientId: client.clientId };
}

const meta = (version = VERSION) => ({
  "io.modelcontextprotocol/protocolVersion": version,
  "io.modelcontextprotocol/clientInfo": { name: "workers-test", version: "1.0.0" },
  "io.modelcontextprotocol/clientCapabilities": {},
});

interface Sent {
  readonly method: string;
  readonly params?: Record<string, unknown>;
  readonly id?: number | null;
  /** Headers as sent; `null` removes one of the defaults. */
  readonly headers?: Record<string, string | null>;
  readonly version?: string;
  /** `_meta` members added to (or, as `undefined`, removed from) the defaults. */
  readonly meta?: Record<string, unknown>;
}

/** A modern POST: the mirrored headers from the body unless overridden. */
async function modern(token: string, sent: Sent): Promise<Response> {
  const params: Record<string, unknown> = { ...sent.params, _meta: { ...meta(sent.version), ...sent.meta } };
  const name = typeof params.name === "string" ? params.name : typeof params.uri === "string" ? params.uri : null;
  const defaults: Record<string, string | null> = {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": sent.version ?? VERSION,
    "mcp-method": sent.method,
    "mcp-name": name,
  };
  const headers = new Headers();
  for (const [k, v] of Object.entries({ ...defaults, ...sent.headers })) if (v !== null) headers.set(k, v);
  const id = sent.id === undefined ? 1 : sent.id;
  const body =
    id === null ? { jsonrpc: "2.0", method: sent.method, params } : { jsonrpc: "2.0", id, method: sent.method, params };
  return send(new Request(`${ORIGIN}/mcp`, { method: "POST", headers, body: JSON.stringify(body) }));
}

interface Row {
  action: string;
  server: string | null;
  tool: string | null;
  decision: string;
  reason: string;
  session_id: string | null;
}

async function auditRows(principal: string): Promise<Row[]> {
  await shipAuditRows();
  const { results } = await env.DB.prepare(
    "SELECT action, server, tool, decision, reason, session_id FROM audit_log WHERE principal = ? ORDER BY id",
  )
    .bind(principal)
    .all<Row>();
  return results;
}

let erin: string;
let dave: string;
beforeEach(async () => {
  const compiled = await compilePolicy(POLICIES.dev);
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
  erin = await tokenFor("erin");
  dave = await tokenFor("dave");
});

describe("modern requests are served statelessly (versioning: a dual-era server selects by how the client opens)", () => {
  it("server/discover answers the supported versions (modern and legacy), tools, serverInfo; no session id", async () => {
    const res = await modern(erin, { method: "server/discover" });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toBeNull();
    const body = (await res.json()) as { result: Record<string, unknown> };
    expect(body.result).toMatchObject({
      resultType: "complete",
      capabilities: { tools: {} },
      _meta: { "io.modelcontextprotocol/serverInfo": { name: "hatago-auth" } },
      cacheScope: "public",
    });
    expect(body.result.supportedVersions).toEqual(expect.arrayContaining([VERSION, "2025-11-25", "2024-11-05"]));
  });

  it("a modern notification is accepted with 202 and nothing else", async () => {
    const res = await modern(erin, { method: "notifications/cancelled", id: null, params: { requestId: 1 } });
    expect(res.status).toBe(202);
  });

  it("an unknown method is 404 with -32601 (streamable-http, Protocol Version Header)", async () => {
    const res = await modern(erin, { method: "no/such-method" });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ id: 1, error: { code: -32601 } });
  });

  it("an unsupported version is 400 with -32022 listing what is supported (versioning, negotiation)", async () => {
    const res = await modern(erin, { method: "tools/list", version: "1900-01-01" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; data: { supported: string[]; requested: string } } };
    expect(body.error.code).toBe(-32022);
    expect(body.error.data.requested).toBe("1900-01-01");
    expect(body.error.data.supported).toContain(VERSION);
  });

  it("GET and DELETE naming the modern revision are 405: it has no GET stream and no sessions", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await send(
        new Request(`${ORIGIN}/mcp`, {
          method,
          headers: { authorization: `Bearer ${erin}`, accept: "text/event-stream", "mcp-protocol-version": VERSION },
        }),
      );
      expect(res.status, method).toBe(405);
    }
  });

  it("a denied modern tools/call reads like a missing tool and is audited as a denial, with no session", async () => {
    const res = await modern(dave, { method: "tools/call", params: { name: "everything__echo", arguments: {} } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id: 1,
      error: { code: -32602, message: "Tool everything__echo not found" },
    });
    expect(await auditRows("mock:dave")).toContainEqual({
      action: "tools/call",
      server: "everything",
      tool: "echo",
      decision: "deny",
      reason: "tool_not_granted",
      session_id: null,
    });
  });

  it("tools/list for a caller with nothing is empty (nothing asked of any server)", async () => {
    const res = await modern(dave, { method: "tools/list" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ result: { resultType: "complete", tools: [], cacheScope: "private" } });
  });
});

describe("hostile: header/body mismatch is refused before any decision (streamable-http, Server Validation, -32020)", () => {
  const refusedBeforeDeciding = async (res: Response, principal: string, rowsBefore: number) => {
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: -32020 } });
    expect((await auditRows(principal)).length).toBe(rowsBefore);
  };

  it("MCP-Protocol-Version differs from the body's _meta", async () => {
    const before = (await auditRows("mock:erin")).length;
    const res = await modern(erin, { method: "tools/list", headers: { "mcp-protocol-version": "2025-11-25" } });
    await refusedBeforeDeciding(res, "mock:erin", before);
  });

  it("Mcp-Method differs from the body's method", async () => {
    const before = (await auditRows("mock:erin")).length;
    const res = await modern(erin, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: { message: "x" } },
      headers: { "mcp-method": "tools/list" },
    });
    await refusedBeforeDeciding(res, "mock:erin", before);
  });

  it("a forbidden tool in Mcp-Name with an allowed one in the body", async () => {
    const before = (await auditRows("mock:erin")).length;
    const res = await modern(erin, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: { message: "x" } },
      headers: { "mcp-name": "everything__get-env" },
    });
    await refusedBeforeDeciding(res, "mock:erin", before);
  });

  it("an allowed tool in Mcp-Name with a forbidden one in the body", async () => {
    const before = (await auditRows("mock:erin")).length;
    const res = await modern(erin, {
      method: "tools/call",
      params: { name: "everything__get-env", arguments: {} },
      headers: { "mcp-name": "everything__echo" },
    });
    await refusedBeforeDeciding(res, "mock:erin", before);
  });

  for (const missing of ["mcp-protocol-version", "mcp-method", "mcp-name"]) {
    it(`missing ${missing} on a tools/call`, async () => {
      const before = (await auditRows("mock:erin")).length;
      const res = await modern(erin, {
        method: "tools/call",
        params: { name: "everything__echo", arguments: { message: "x" } },
        headers: { [missing]: null },
      });
      await refusedBeforeDeciding(res, "mock:erin", before);
    });
  }

  it("a header saying modern over a body without _meta is refused, not sent to a session", async () => {
    const res = await send(
      new Request(`${ORIGIN}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${erin}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": VERSION,
          "mcp-method": "tools/list",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      }),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: -32020 } });
  });

  it("Mcp-Name as a Base64 sentinel is decoded before comparing: equal passes, different is refused", async () => {
    const encode = (s: string) => `=?base64?${btoa(String.fromCharCode(...new TextEncoder().encode(s)))}?=`;
    const same = await modern(dave, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: {} },
      headers: { "mcp-name": encode("everything__echo") },
    });
    expect(same.status).toBe(200);
    expect(await same.json()).toMatchObject({ error: { message: "Tool everything__echo not found" } });
    const other = await modern(dave, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: {} },
      headers: { "mcp-name": encode("everything__get-env") },
    });
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: { code: -32020 } });
  });

  it("a modern request carrying a legacy session id is served statelessly: the id is ignored and not echoed", async () => {
    // Open a real legacy session for erin, then send a modern request naming it.
    const init = await send(
      new Request(`${ORIGIN}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${erin}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "legacy", version: "1" } },
        }),
      }),
    );
    const session = init.headers.get("mcp-session-id");
    await init.text();
    expect(session).toBeTruthy();
    const res = await modern(dave, { method: "tools/list", headers: { "mcp-session-id": session } });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toBeNull();
    // dave, who holds nothing, sees nothing through erin's session id.
    expect(await res.json()).toMatchObject({ result: { tools: [] } });
    const rows = await auditRows("mock:dave");
    expect(rows.every((r) => r.session_id === null)).toBe(true);
  });
});

describe("Mcp-Name Base64 sentinel decoding (streamable-http, Value Encoding)", () => {
  it("decodes the revision's examples and refuses what is not validly encoded", () => {
    expect(decodeSentinel("us-west1")).toBe("us-west1");
    expect(decodeSentinel("=?base64?SGVsbG8sIOS4lueVjA==?=")).toBe("Hello, 世界");
    expect(decodeSentinel("=?base64?IHBhZGRlZCA=?=")).toBe(" padded ");
    expect(decodeSentinel("=?base64?bGluZTEKbGluZTI=?=")).toBe("line1\nline2");
    expect(decodeSentinel("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=")).toBe("=?base64?literal?=");
    expect(decodeSentinel("=?base64?not base64?=")).toBeNull();
    expect(decodeSentinel("=?base64?/w==?=")).toBeNull(); // not UTF-8
    expect(decodeSentinel("héllo")).toBeNull();
  });
});

/**
 * Modern resources/*, prompts/* and completion/complete go through the session path's functions
 * (worker/mcp/content.ts): the same decision (a server-wide read), the same audit row, the same answer for
 * a target the caller may not use as for one that does not exist. No bridge runs here: an allowed request
 * ends as "not available"; the e2e file reads real resources and prompts of `everything`.
 *
 * carol (reader) holds a server-wide read on everything; erin holds only three tools, so no content.
 */
describe("modern resources, prompts and completion: the same decision and audit as the legacy path", () => {
  const RESOURCE = "hatago:everything:demo://resource/static/document/architecture.md";

  it("server/discover advertises tools, resources, prompts, completions and logging (a call's log lines)", async () => {
    const res = await modern(erin, { method: "server/discover" });
    const body = (await res.json()) as { result: { capabilities: Record<string, unknown> } };
    expect(body.result.capabilities).toMatchObject({
      tools: {},
      resources: {},
      prompts: {},
      completions: {},
      logging: {},
    });
  });

  it("resources/read of a server the caller may not read reads like a missing resource, audited as a denial", async () => {
    const res = await modern(erin, { method: "resources/read", params: { uri: RESOURCE } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 1, error: { message: `Resource ${RESOURCE} not found` } });
    expect(await auditRows("mock:erin")).toEqual([
      {
        action: "resources/read",
        server: "everything",
        tool: RESOURCE,
        decision: "deny",
        reason: "server_not_granted",
        session_id: null,
      },
    ]);
  });

  it("prompts/get of a server the caller may not read reads like a missing prompt, audited as a denial", async () => {
    const res = await modern(dave, { method: "prompts/get", params: { name: "everything__simple-prompt" } });
    expect(await res.json()).toMatchObject({ error: { message: "Prompt everything__simple-prompt not found" } });
    expect(await auditRows("mock:dave")).toEqual([
      expect.objectContaining({ action: "prompts/get", server: "everything", decision: "deny" }),
    ]);
  });

  it("a name that names no server is refused the same way (unknown_target), for reads and prompts", async () => {
    const carol = await tokenFor("carol");
    const read = await modern(carol, { method: "resources/read", params: { uri: "file:///etc/passwd" } });
    expect(await read.json()).toMatchObject({ error: { message: "Resource file:///etc/passwd not found" } });
    const prompt = await modern(carol, { method: "prompts/get", params: { name: "nosuch__prompt" } });
    expect(await prompt.json()).toMatchObject({ error: { message: "Prompt nosuch__prompt not found" } });
    const rows = await auditRows("mock:carol");
    expect(rows.map((r) => [r.action, r.decision, r.reason])).toEqual([
      ["resources/read", "deny", "unknown_target"],
      ["prompts/get", "deny", "unknown_target"],
    ]);
  });

  it("completion/complete for a prompt the caller may not read is refused as missing, audited", async () => {
    const res = await modern(erin, {
      method: "completion/complete",
      params: { ref: { type: "ref/prompt", name: "everything__args-prompt" }, argument: { name: "city", value: "P" } },
    });
    expect(await res.json()).toMatchObject({ error: { message: "Prompt everything__args-prompt not found" } });
    expect(await auditRows("mock:erin")).toEqual([
      expect.objectContaining({ action: "completion/complete", decision: "deny", reason: "server_not_granted" }),
    ]);
  });

  it("an invalid prompts/get of a readable server is -32602, after its decision and with its row", async () => {
    const carol = await tokenFor("carol");
    const res = await modern(carol, {
      method: "prompts/get",
      params: { name: "everything__args-prompt", arguments: "not an object" },
    });
    expect(await res.json()).toMatchObject({ error: { code: -32602 } });
    expect(await auditRows("mock:carol")).toEqual([
      expect.objectContaining({ action: "prompts/get", decision: "deny", reason: "invalid_params" }),
    ]);
  });

  it("an allowed resources/read is sent and recorded however it ends (no bridge here: not available)", async () => {
    const carol = await tokenFor("carol");
    const res = await modern(carol, { method: "resources/read", params: { uri: RESOURCE } });
    const body = (await res.json()) as { error?: { message: string } };
    expect(body.error?.message).toContain('"everything" server is not available');
    const rows = await auditRows("mock:carol");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: "resources/read", decision: "allow", session_id: null });
  });

  it("lists for a caller who may read nothing are empty (nothing asked of any server)", async () => {
    for (const method of ["resources/list", "resources/templates/list", "prompts/list"] as const) {
      const res = await modern(dave, { method });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { result: Record<string, unknown> };
      const field = {
        "resources/list": "resources",
        "resources/templates/list": "resourceTemplates",
        "prompts/list": "prompts",
      }[method];
      expect(body.result).toMatchObject({ resultType: "complete", [field]: [], cacheScope: "private" });
    }
    expect(await auditRows("mock:dave")).toEqual([]);
  });
});

describe("a block holds on the modern path too: every request checks standing, as legacy sessions do", () => {
  it("a blocked caller's notification, ping, discover and tools/list all get 401 invalid_token", async () => {
    await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
      .bind("mock:erin", "test", "mock:alice", Date.now())
      .run();
    for (const sent of [
      { method: "notifications/cancelled", id: null },
      { method: "ping" },
      { method: "server/discover" },
      { method: "tools/list" },
    ] as const) {
      const res = await modern(erin, sent);
      expect(res.status, sent.method).toBe(401);
      expect(res.headers.get("www-authenticate") ?? "", sent.method).toContain('error="invalid_token"');
    }
  });
});

describe('the request\'s _meta (basic/index, "_meta"; server/utilities/logging)', () => {
  it("a request without io.modelcontextprotocol/clientCapabilities is malformed: 400 with -32602, nothing decided", async () => {
    const res = await modern(erin, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: { message: "x" } },
      meta: { "io.modelcontextprotocol/clientCapabilities": undefined },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ id: 1, error: { code: -32602 } });
    expect(await auditRows("mock:erin")).toEqual([]);
  });

  it("an unknown io.modelcontextprotocol/logLevel is refused with -32602 (logging, Error Handling)", async () => {
    const res = await modern(erin, { method: "tools/list", meta: { "io.modelcontextprotocol/logLevel": "loud" } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; message: string } };
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toContain("debug, info, notice");
  });
});

describe("MissingRequiredClientCapability (-32021): a usable tool whose capability the request did not declare", () => {
  it("bob (may call it) without sampling: 400, -32021, data.requiredCapabilities; audited as a denial", async () => {
    const bob = await tokenFor("bob");
    const res = await modern(bob, {
      method: "tools/call",
      params: { name: "everything__trigger-sampling-request", arguments: { prompt: "x" } },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      id: 1,
      error: { code: -32021, data: { requiredCapabilities: { sampling: {} } } },
    });
    expect(await auditRows("mock:bob")).toEqual([
      expect.objectContaining({
        tool: "trigger-sampling-request",
        decision: "deny",
        reason: "client_capability_missing",
      }),
    ]);
  });

  it("a caller who may not use the tool learns nothing from it: the same 'not found' as a missing tool", async () => {
    const res = await modern(dave, {
      method: "tools/call",
      params: { name: "everything__trigger-sampling-request", arguments: { prompt: "x" } },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      error: { code: -32602, message: "Tool everything__trigger-sampling-request not found" },
    });
  });
});

/**
 * A retry's `requestState` (mrtr, "Server Requirements" 4–5): attacker-controlled, so MACed and bound to the
 * principal, the OAuth client, the call and an expiry. Every refusal here is before anything is sent: one
 * denial row with its reason, and the answer -32602. States are sealed here with the test deployment's
 * secret, as the Worker seals them (request-state.ts); the e2e file gets real ones from a real server.
 */
describe("hostile: a forged, garbled, borrowed, stale or misapplied requestState is refused (mrtr, Security Considerations)", () => {
  const ECHO = { name: "everything__echo", arguments: { message: "again" } };
  const key = () => requestStateKeyFrom(env.HATAGO_BRIDGE_SECRET);
  const bridgeOrigin: StateOrigin = { kind: "bridge", pending: "A".repeat(22), round: 1 };
  const stateFor = async (
    who: { clientId: string },
    principal: string,
    args: Record<string, unknown> = ECHO.arguments,
    origin: StateOrigin = bridgeOrigin,
    nowMs?: number,
  ) => {
    const call: CallIdentity = {
      principal,
      clientId: who.clientId,
      server: "everything",
      tool: "echo",
      binding: await callBinding("everything", "echo", args),
    };
    return sealRequestState(await key(), call, origin, nowMs);
  };
  const refused = async (res: Response, principal: string, reason: string, message: string) => {
    expect(res.status).toBe(200);
    const body = (await res.json()) as { error: { code: number; message: string } };
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toContain(message);
    expect(await auditRows(principal)).toEqual([
      { action: "tools/call", server: "everything", tool: "echo", decision: "deny", reason, session_id: null },
    ]);
  };
  const retry = (token: string, requestState: unknown, extra: Record<string, unknown> = {}) =>
    modern(token, { method: "tools/call", params: { ...ECHO, requestState, ...extra } });

  it("garbled: not a state at all", async () => {
    await refused(await retry(erin, "not-a-state"), "mock:erin", "request_state_invalid", "requestState is not valid");
  });

  it("forged: a state whose MAC is not ours (one byte of the payload changed)", async () => {
    const me = await signedIn("erin");
    const state = await stateFor(me, "mock:erin");
    const [v, payload = "", mac] = state.split(".");
    const altered = `${v}.${payload.slice(0, -2)}${payload.endsWith("A") ? "B" : "A"}${payload.slice(-1)}.${mac}`;
    await refused(await retry(me.token, altered), "mock:erin", "request_state_invalid", "requestState is not valid");
  });

  it("borrowed: erin's valid state presented by carol (another principal) tells carol nothing", async () => {
    const erinSignedIn = await signedIn("erin");
    const carol = await signedIn("carol");
    const state = await stateFor(erinSignedIn, "mock:erin");
    await refused(await retry(carol.token, state), "mock:carol", "request_state_invalid", "requestState is not valid");
  });

  it("borrowed by another OAuth client of the same person", async () => {
    const first = await signedIn("erin");
    const second = await signedIn("erin");
    await refused(
      await retry(second.token, await stateFor(first, "mock:erin")),
      "mock:erin",
      "request_state_invalid",
      "requestState is not valid",
    );
  });

  it("misapplied: a state for other arguments (the call's binding)", async () => {
    const me = await signedIn("erin");
    const state = await stateFor(me, "mock:erin", { message: "the first call" });
    await refused(await retry(me.token, state), "mock:erin", "request_state_invalid", "requestState is not valid");
  });

  it("stale: past its expiry", async () => {
    const me = await signedIn("erin");
    const past = Date.now() - (REQUEST_STATE_TTL_SECONDS + 60) * 1000;
    const state = await stateFor(me, "mock:erin", ECHO.arguments, bridgeOrigin, past);
    await refused(await retry(me.token, state), "mock:erin", "request_state_expired", "no longer waiting");
  });

  it("a gateway-originated state nobody asked for is not continued", async () => {
    const me = await signedIn("erin");
    const state = await stateFor(me, "mock:erin", ECHO.arguments, { kind: "gateway", purpose: "nothing", data: {} });
    await refused(await retry(me.token, state), "mock:erin", "request_state_invalid", "requestState is not valid");
  });

  it("inputResponses that are not an InputResponses object: -32602, with a valid state", async () => {
    const me = await signedIn("erin");
    const state = await stateFor(me, "mock:erin");
    await refused(
      await retry(me.token, state, { inputResponses: { a: "not a result" } }),
      "mock:erin",
      "invalid_params",
      "inputResponses must be an object",
    );
  });

  it("a forbidden tool with a state is refused by the decision first: 'not found', like any other", async () => {
    const res = await modern(dave, {
      method: "tools/call",
      params: { name: "everything__get-env", arguments: {}, requestState: "anything" },
    });
    expect(await res.json()).toMatchObject({ error: { message: "Tool everything__get-env not found" } });
    expect(await auditRows("mock:dave")).toEqual([expect.objectContaining({ reason: "tool_not_granted" })]);
  });
});

describe("Mcp-Param-* headers (streamable-http, Custom Headers from Tool Parameters)", () => {
  it("the modern tools/list offers no mirrored parameter: x-mcp-header annotations are removed, nothing else", () => {
    const tool = {
      name: "execute_sql",
      inputSchema: {
        type: "object" as const,
        properties: {
          region: { type: "string", "x-mcp-header": "Region" },
          nested: { type: "object", properties: { zone: { type: "string", "x-mcp-header": "Zone" } } },
          "x-mcp-header": { type: "string", description: "a parameter that happens to have this name" },
        },
      },
    };
    const [listed] = withoutHeaderMirroring([tool]);
    expect(listed?.inputSchema).toEqual({
      type: "object",
      properties: {
        region: { type: "string" },
        nested: { type: "object", properties: { zone: { type: "string" } } },
        "x-mcp-header": { type: "string", description: "a parameter that happens to have this name" },
      },
    });
    const plain = {
      name: "echo",
      inputSchema: { type: "object" as const, properties: { message: { type: "string" } } },
    };
    expect(withoutHeaderMirroring([plain])[0]).toBe(plain);
  });

  it("an Mcp-Param header no listed tool declares is not recognised: ignored, not a reason to refuse", async () => {
    const res = await modern(dave, {
      method: "tools/call",
      params: { name: "everything__echo", arguments: { message: "x" } },
      headers: { "mcp-param-region": "=?base64?not base64?=", "mcp-param-message": "something else" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ error: { message: "Tool everything__echo not found" } });
  });
});
