import type { Selectable } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditLogTable } from "../../worker/db/audit-log.table.ts";
import { d1Execute, d1Query, d1QuerySettled, d1QueryUntil } from "./helpers/d1.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

// Ports 18515–18517.
let stack: TestStack;
const opened: Connected[] = [];

async function open(person: Parameters<typeof connectAs>[1]): Promise<Connected> {
  const c = await connectAs(stack.url, person);
  opened.push(c);
  return c;
}

/** A row of the audit log as the admin API returns it (the table's own type). */
type AuditRow = Selectable<AuditLogTable>;

/**
 * A principal's audit rows through the admin API. Rows reach D1 from the callers' ledgers just after the
 * answers (worker/audit/ledger.ts): this asks again, for up to 5 s, until `ready` holds for them.
 */
async function audit(
  admin: Connected,
  principal: string,
  ready: (rows: AuditRow[]) => boolean = () => true,
): Promise<AuditRow[]> {
  const until = Date.now() + 5_000;
  for (;;) {
    const res = await fetch(`${stack.url}/admin/audit?principal=${encodeURIComponent(principal)}&limit=100`, {
      headers: { authorization: `Bearer ${admin.token()}` },
    });
    expect(res.status).toBe(200);
    const rows = ((await res.json()) as { rows: AuditRow[] }).rows;
    if (ready(rows) || Date.now() > until) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rawHeaders = (token: string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  ...extra,
});
const initialize = (version = "2025-11-25") =>
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: version, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });

beforeAll(async () => {
  // The bridge is not restarted here: the last test checks how the Worker answers while it is down
  // (supervision itself is test/e2e/supervision.test.ts).
  stack = await startTestStack(18515, { maxBridgeRestarts: 0 });
});

afterAll(async () => {
  for (const c of opened) await c.client.close().catch(() => {});
  await stack?.dispose();
});

describe("audit: every call and every denial has its row before the response", () => {
  it("records allowed, denied, tool-error and JSON-RPC-error calls with who, what, outcome and a digest", async () => {
    const alice = await open("alice");
    const bob = await open("bob");
    const secret = "s3cr3t-argument-value-that-must-not-be-stored";
    await bob.client.callTool({ name: "everything__echo", arguments: { message: secret } });
    expect(await callError(bob.client, "everything__get-env", { message: secret })).not.toBeNull();
    const badArgs = await bob.client
      .callTool({ name: "everything__get-sum", arguments: { a: "one", b: 2 } })
      .catch((e: unknown) => e);

    const rows = await audit(alice, "mock:bob", (r) =>
      ["echo", "get-env", "get-sum"].every((t) => r.some((x) => x.tool === t)),
    );
    const sessionId = (bob.transport as { sessionId?: string }).sessionId;
    const echo = rows.find((r) => r.tool === "echo");
    expect(echo).toMatchObject({
      principal: "mock:bob",
      session_id: sessionId,
      action: "tools/call",
      server: "everything",
      decision: "allow",
      reason: "granted",
      outcome: "ok",
    });
    expect(echo?.client_id).toBeTruthy();
    expect(echo?.duration_ms).toBeGreaterThanOrEqual(0);
    expect(echo?.args_digest).toMatch(/^[0-9a-f]{64}$/);
    expect(echo?.policy_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows.find((r) => r.tool === "get-env")).toMatchObject({
      decision: "deny",
      reason: "tool_not_granted",
      outcome: null,
      server: "everything",
    });
    const sum = rows.find((r) => r.tool === "get-sum");
    // Invalid arguments come back from the server as a tool error or a JSON-RPC error; either is recorded as such.
    expect(["tool_error", "jsonrpc_error"]).toContain(sum?.outcome);
    if (sum?.outcome === "jsonrpc_error") expect(badArgs).toBeInstanceOf(Error);
    // Arguments are never stored in clear.
    expect(JSON.stringify(rows)).not.toContain(secret);
    // The same arguments give the same digest (an investigator can match a known input).
    await bob.client.callTool({ name: "everything__echo", arguments: { message: secret } });
    const again = (await audit(alice, "mock:bob", (r) => r.filter((x) => x.tool === "echo").length >= 2)).filter(
      (r) => r.tool === "echo",
    );
    expect(again[0]?.args_digest).toBe(again[1]?.args_digest);
  });

  it("a denial for a name that parses to nothing is recorded with the name as sent", async () => {
    const alice = await open("alice");
    const dave = await open("dave");
    await callError(dave.client, "no-prefix-at-all");
    const row = (await audit(alice, "mock:dave", (r) => r.some((x) => x.tool === "no-prefix-at-all"))).find(
      (r) => r.tool === "no-prefix-at-all",
    );
    expect(row).toMatchObject({ decision: "deny", reason: "unknown_tool", server: null });
  });

  it("the audit log is for admins only", async () => {
    const bob = await open("bob");
    const res = await fetch(`${stack.url}/admin/audit`, { headers: { authorization: `Bearer ${bob.token()}` } });
    expect(res.status).toBe(403);
    const anonymous = await fetch(`${stack.url}/admin/audit`);
    expect(anonymous.status).toBe(401);
  });
});

describe("request hygiene at the MCP endpoint", () => {
  it("an Origin that is not allowed is refused with 403 (DNS rebinding)", async () => {
    const carol = await open("carol");
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token(), { origin: "https://evil.example" }),
      body: initialize(),
    });
    expect(res.status).toBe(403);
    const own = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token(), { origin: stack.url }),
      body: initialize(),
    });
    expect(own.status).toBe(200);
    await own.body?.cancel();
  });

  it("an oversized body is refused with 413, a wrong Content-Type with 415, broken JSON with 400", async () => {
    const carol = await open("carol");
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(4 * 1024 * 1024) } });
    const tooBig = await fetch(`${stack.url}/mcp`, { method: "POST", headers: rawHeaders(carol.token()), body: big });
    expect(tooBig.status).toBe(413);
    const wrongType = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token(), { "content-type": "text/plain" }),
      body: initialize(),
    });
    expect(wrongType.status).toBe(415);
    const broken = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token()),
      body: "{not json",
    });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: number } }).error.code).toBe(-32700);
  });

  it("a token in the query string is not accepted (401 with resource metadata)", async () => {
    const carol = await open("carol");
    const res = await fetch(`${stack.url}/mcp?access_token=${encodeURIComponent(carol.token())}`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: initialize(),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("resource_metadata=");
  });

  it("an unsupported MCP-Protocol-Version is refused with 400", async () => {
    const carol = await open("carol");
    const sessionId = (carol.transport as { sessionId?: string }).sessionId ?? "";
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token(), { "mcp-session-id": sessionId, "mcp-protocol-version": "1999-01-01" }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
    });
    expect(res.status).toBe(400);
  });
});

describe("tokens: refresh, revocation, and the admin kill switch", () => {
  it("a refreshed token works, and a revoked one stops working (RFC 7009)", async () => {
    const erin = await open("erin");
    const tokens = erin.provider.tokens();
    const client = erin.provider.clientInformation();
    expect(tokens?.refresh_token).toBeTruthy();
    const refreshed = await fetch(`${stack.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: tokens?.refresh_token ?? "",
        client_id: client?.client_id ?? "",
        resource: stack.url,
      }),
    });
    expect(refreshed.status).toBe(200);
    const fresh = ((await refreshed.json()) as { access_token: string }).access_token;
    const init = await fetch(`${stack.url}/mcp`, { method: "POST", headers: rawHeaders(fresh), body: initialize() });
    expect(init.status).toBe(200);
    await init.body?.cancel();

    const revoke = await fetch(`${stack.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: fresh, client_id: client?.client_id ?? "" }),
    });
    expect(revoke.status).toBe(200);
    const after = await fetch(`${stack.url}/mcp`, { method: "POST", headers: rawHeaders(fresh), body: initialize() });
    expect(after.status).toBe(401);
  });

  it("the kill switch: an admin revokes a principal, whose next call fails and whose grants are gone", async () => {
    const alice = await open("alice");
    const frank = await open("frank");
    expect(await callError(frank.client, "memory__read_graph")).toBeNull();
    const res = await fetch(`${stack.url}/admin/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token()}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: "mock:frank", reason: "e2e: lost laptop" }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { grantsRevoked: number }).grantsRevoked).toBeGreaterThanOrEqual(1);
    const denied = await callError(frank.client, "memory__read_graph");
    expect(denied).not.toBeNull();
    const row = (await audit(alice, "mock:alice", (r) => r.some((x) => x.action === "admin:revoke"))).find(
      (r) => r.action === "admin:revoke",
    );
    expect(row).toMatchObject({ subject: "mock:frank", note: "e2e: lost laptop", tool: null, decision: "allow" });
    // A new sign-in after the cut-off works again: revocation ends sessions, it does not change the policy.
    const again = await open("frank");
    expect(await callError(again.client, "memory__read_graph")).toBeNull();
  });

  it("only admins may revoke", async () => {
    const bob = await open("bob");
    const res = await fetch(`${stack.url}/admin/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${bob.token()}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: "mock:alice", reason: "coup" }),
    });
    expect(res.status).toBe(403);
  });
});

describe("fail closed", () => {
  it("D1 unavailable for authorization: 503 with Retry-After, never an allow", async () => {
    const carol = await open("carol");
    await d1Execute(stack.stateDir, "ALTER TABLE role_tools RENAME TO role_tools_offline");
    try {
      const init = await fetch(`${stack.url}/mcp`, {
        method: "POST",
        headers: rawHeaders(carol.token()),
        body: initialize(),
      });
      expect(init.status).toBe(503);
      expect(init.headers.get("retry-after")).toBeTruthy();
      expect(((await init.json()) as { error: { message: string } }).error.message).toContain(
        "Authorization is temporarily unavailable",
      );
      expect(await callError(carol.client, "everything__echo", { message: "x" })).not.toBeNull();
    } finally {
      await d1Execute(stack.stateDir, "ALTER TABLE role_tools_offline RENAME TO role_tools");
    }
    expect(await callError(carol.client, "everything__echo", { message: "x" })).toBeNull();
  });

  it("D1 refusing audit rows: the call is answered, its row waits in the caller's ledger and reaches D1 once", async () => {
    // Since issue 18 the row is durable in the caller's audit ledger before the answer, and shipped to D1
    // after it: D1 refusing writes no longer fails the call. A ledger that cannot write does, as the audit
    // log being down always did (test/workers/audit/no-row-no-result.test.ts).
    const carol = await open("carol");
    const rowsOfCarol = "SELECT id FROM audit_log WHERE principal = 'mock:carol'";
    const before = (await d1QuerySettled(stack.stateDir, rowsOfCarol)).length;
    await d1Execute(
      stack.stateDir,
      "CREATE TRIGGER e2e_audit_offline BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit offline'); END",
    );
    try {
      expect(await callError(carol.client, "everything__echo", { message: "x" })).toBeNull();
      expect((await d1Query(stack.stateDir, rowsOfCarol)).length).toBe(before);
    } finally {
      await d1Execute(stack.stateDir, "DROP TRIGGER e2e_audit_offline");
    }
    const after = await d1QueryUntil(stack.stateDir, rowsOfCarol, (r) => r.length >= before + 1, 60_000);
    expect(after.length).toBe(before + 1);
  });

  it("audit log table gone: calls still complete (authorization no longer reads it), and the rows wait in the ledger until it is back", async () => {
    // Since issue 18 the grants query does not read audit_log (the rate limit counts in the ledger) and the
    // row is durable in the caller's ledger before the answer: D1's audit table is only the shipment's target.
    const carol = await open("carol");
    const rowsOfCarol = "SELECT id FROM audit_log WHERE principal = 'mock:carol'";
    const before = (await d1QuerySettled(stack.stateDir, rowsOfCarol)).length;
    await d1Execute(stack.stateDir, "ALTER TABLE audit_log RENAME TO audit_log_offline");
    try {
      expect(await callError(carol.client, "everything__echo", { message: "x" })).toBeNull();
    } finally {
      await d1Execute(stack.stateDir, "ALTER TABLE audit_log_offline RENAME TO audit_log");
    }
    const after = await d1QueryUntil(stack.stateDir, rowsOfCarol, (r) => r.length >= before + 1, 90_000);
    expect(after.length).toBe(before + 1);
  });

  // Last: it stops the bridge for good.
  it("bridge down: a clear error at once, and 503 + Retry-After for a new server connection", async () => {
    const carol = await open("carol");
    await carol.client.callTool({ name: "everything__echo", arguments: { message: "warm" } });
    const bridge = stack.processes.find((p) => p.name === "bridge");
    bridge?.child.kill("SIGKILL");
    await bridge?.exited;
    const started = Date.now();
    const error = await callError(carol.client, "everything__echo", { message: "x" });
    expect(error?.message).toContain('The "everything" server is not available right now');
    expect(Date.now() - started).toBeLessThan(10_000);
    // A session that has not yet reached the server: the connection fails cleanly with 503 + Retry-After.
    const init = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token()),
      body: initialize(),
    });
    const sessionId = init.headers.get("mcp-session-id") ?? "";
    await init.body?.cancel();
    const call = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: rawHeaders(carol.token(), { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" }),
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "memory__read_graph", arguments: {} },
      }),
    });
    expect(call.status).toBe(503);
    expect(call.headers.get("retry-after")).toBeTruthy();
    const body = (await call.json()) as { id: number; error: { message: string } };
    expect(body.id).toBe(2);
    expect(body.error.message).toBe('The "memory" server is not available right now; try again shortly.');
  });
});
