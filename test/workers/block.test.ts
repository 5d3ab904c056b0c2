import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { shipAuditRows } from "./audit/ledgers.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { approve, mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

const send = viaDefaultExport;

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
});

interface SignedInPerson {
  readonly access: string;
  readonly refresh: string;
  readonly client: OAuthTestClient;
}

async function signInAs(person: string): Promise<SignedInPerson> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  const t = await tokens(await client.exchange(code, pkce.verifier));
  return { access: t.access_token, refresh: t.refresh_token ?? "", client };
}

/** Walks a sign-in up to our callback and returns its answer (which may refuse the person). */
async function trySignIn(person: string): Promise<Response> {
  const client = await OAuthTestClient.register(send);
  const browser = new Browser(send);
  const { location } = await approve(browser, client);
  return mockUpstream(person)(browser, location);
}

const mcpHeaders = (token: string, session?: string) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
  ...(session ? { "mcp-session-id": session } : {}),
});

function mcp(token: string, body: unknown, session?: string): Promise<Response> {
  return send(
    new Request(`${ORIGIN}/mcp`, { method: "POST", headers: mcpHeaders(token, session), body: JSON.stringify(body) }),
  );
}

async function openSession(token: string): Promise<string> {
  const init = await mcp(token, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "block-test", version: "1" } },
  });
  expect(init.status).toBe(200);
  await init.text();
  const session = init.headers.get("mcp-session-id") ?? "";
  const ready = await mcp(token, { jsonrpc: "2.0", method: "notifications/initialized" }, session);
  expect(ready.status).toBe(202);
  return session;
}

function admin(token: string, method: string, path: string, body?: unknown, extra: Record<string, string> = {}) {
  return send(
    new Request(`${ORIGIN}/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...extra,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

function whoami(token: string, extra: Record<string, string> = {}) {
  return send(new Request(`${ORIGIN}/api/whoami`, { headers: { authorization: `Bearer ${token}`, ...extra } }));
}

async function expectInvalidToken(response: Response, what: string): Promise<void> {
  expect(response.status, what).toBe(401);
  const challenge = response.headers.get("www-authenticate") ?? "";
  expect(challenge, what).toMatch(/^Bearer /);
  expect(challenge, what).toContain('error="invalid_token"');
  expect(challenge, what).toContain(`resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`);
  expect((await response.text()).length, `${what}: a body`).toBeGreaterThan(0);
}

async function auditRows(action: string) {
  await shipAuditRows();
  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE action = ? ORDER BY id").bind(action).all();
  return results;
}

describe("a block holds: a blocked subject is refused everywhere until the block is lifted", () => {
  it("a blocked principal gets 401 invalid_token on every endpoint, cannot sign in again, and is back once lifted", async () => {
    const alice = await signInAs("alice");
    const bob = await signInAs("bob");
    const session = await openSession(bob.access);

    const blocked = await admin(alice.access, "POST", "/block", { subject: "mock:bob", reason: "laptop stolen" });
    expect(blocked.status).toBe(200);
    const result = (await blocked.json()) as Record<string, unknown>;
    expect(result).toMatchObject({ subject: "mock:bob", reason: "laptop stolen", blockedBy: "mock:alice" });
    expect(result.warning).toBeUndefined();
    expect(result.sessionsClosed).toBe(1);

    // Every path, every kind of request: requests, notifications, DELETE, the GET stream, /api, /admin.
    await expectInvalidToken(
      await mcp(bob.access, { jsonrpc: "2.0", id: 5, method: "tools/list" }, session),
      "tools/list",
    );
    await expectInvalidToken(
      await mcp(bob.access, { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } }, session),
      "a notification",
    );
    await expectInvalidToken(
      await send(new Request(`${ORIGIN}/mcp`, { method: "DELETE", headers: mcpHeaders(bob.access, session) })),
      "DELETE",
    );
    await expectInvalidToken(
      await send(
        new Request(`${ORIGIN}/mcp`, {
          method: "GET",
          headers: { ...mcpHeaders(bob.access, session), accept: "text/event-stream" },
        }),
      ),
      "the GET stream",
    );
    await expectInvalidToken(
      await mcp(bob.access, {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "again", version: "1" } },
      }),
      "a new session",
    );
    await expectInvalidToken(
      await send(new Request(`${ORIGIN}/sse`, { headers: { authorization: `Bearer ${bob.access}` } })),
      "/sse",
    );
    await expectInvalidToken(await whoami(bob.access), "/api/whoami");
    await expectInvalidToken(await admin(bob.access, "GET", "/audit"), "/admin/audit");

    // Signing in again is refused by our callback, with a page that says why, and audited.
    const again = await trySignIn("bob");
    expect(again.status).toBe(403);
    expect(await again.text()).toContain("blocked by an administrator");
    expect(await auditRows("login:refused")).toMatchObject([
      { principal: "mock:bob", subject: "mock:bob", decision: "deny", reason: "blocked" },
    ]);

    const list = (await (await admin(alice.access, "GET", "/blocks")).json()) as { blocks: { subject: string }[] };
    expect(list.blocks.map((b) => b.subject)).toEqual(["mock:bob"]);

    const lifted = await admin(alice.access, "DELETE", `/block/${encodeURIComponent("mock:bob")}`);
    expect(lifted.status).toBe(200);
    const back = await signInAs("bob");
    expect((await whoami(back.access)).status).toBe(200);
    expect((await admin(alice.access, "DELETE", "/block/mock:bob")).status, "lifting twice").toBe(404);
  });

  it("the block itself refuses a principal's tokens, even where its grants could not be revoked", async () => {
    const bob = await signInAs("bob");
    const session = await openSession(bob.access);
    // Written as if the grant revocation after it had failed: the standing check alone must hold.
    await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
      .bind("mock:bob", "test", "mock:alice", Date.now())
      .run();
    await expectInvalidToken(
      await mcp(bob.access, { jsonrpc: "2.0", id: 2, method: "tools/list" }, session),
      "tools/list",
    );
    await expectInvalidToken(
      await mcp(bob.access, { jsonrpc: "2.0", method: "notifications/initialized" }, session),
      "a notification",
    );
    await expectInvalidToken(await whoami(bob.access), "/api/whoami");
  });

  it("an open GET stream of a blocked person is closed when the block is made", async () => {
    const alice = await signInAs("alice");
    const bob = await signInAs("bob");
    const session = await openSession(bob.access);
    const stream = await send(
      new Request(`${ORIGIN}/mcp`, {
        method: "GET",
        headers: { ...mcpHeaders(bob.access, session), accept: "text/event-stream" },
      }),
    );
    expect(stream.status).toBe(200);
    const reading = stream.text();
    await admin(alice.access, "POST", "/block", { subject: "mock:bob", reason: "incident" });
    // The stream ends (text() resolves) instead of staying open.
    await expect(reading).resolves.toBeTypeOf("string");
  });

  it("block and lift are audited with the subject in its own column and the reason as the admin wrote it", async () => {
    const alice = await signInAs("alice");
    await admin(alice.access, "POST", "/block", { subject: "mock:bob", reason: "left the company" });
    await admin(alice.access, "DELETE", "/block/mock:bob");
    expect(await auditRows("admin:block")).toMatchObject([
      {
        principal: "mock:alice",
        subject: "mock:bob",
        note: "left the company",
        tool: null,
        decision: "allow",
        reason: "granted",
      },
    ]);
    expect(await auditRows("admin:unblock")).toMatchObject([{ principal: "mock:alice", subject: "mock:bob" }]);
  });

  it("a group block covers its members (their old tokens and a new sign-in), an email block its owner", async () => {
    const alice = await signInAs("alice");
    const erin = await signInAs("erin");
    const carol = await signInAs("carol");
    const session = await openSession(erin.access);
    expect((await admin(alice.access, "POST", "/block", { subject: "group:mock:staff", reason: "audit" })).status).toBe(
      200,
    );
    expect(
      (await admin(alice.access, "POST", "/block", { subject: "email:carol@example.com", reason: "x" })).status,
    ).toBe(200);
    await expectInvalidToken(
      await mcp(erin.access, { jsonrpc: "2.0", method: "notifications/initialized" }, session),
      "a member's notification",
    );
    await expectInvalidToken(await whoami(erin.access), "a member's /api/whoami");
    await expectInvalidToken(await whoami(carol.access), "the email's owner");
    expect((await trySignIn("erin")).status).toBe(403);
    expect((await trySignIn("carol")).status).toBe(403);
    // Others are untouched.
    expect((await whoami(alice.access)).status).toBe(200);
  });

  it("blocking a subject nothing has ever named answers with a warning, not a silent 200", async () => {
    const alice = await signInAs("alice");
    const response = await admin(alice.access, "POST", "/block", { subject: "mock:nobody", reason: "typo?" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { warning?: string }).warning).toMatch(/never named|No binding/);
  });

  it("an admin cannot block themselves or a group they belong to (no lock-out)", async () => {
    const alice = await signInAs("alice");
    const response = await admin(alice.access, "POST", "/block", { subject: "mock:alice", reason: "oops" });
    expect(response.status).toBe(400);
    expect((await whoami(alice.access)).status).toBe(200);
  });

  it("a malformed block request is a 400 naming what is expected, and audited", async () => {
    const alice = await signInAs("alice");
    for (const body of [
      { subject: "bob" },
      { subject: "not a subject", reason: "x" },
      { subject: "mock:bob", reason: "x", extra: 1 },
    ]) {
      const response = await admin(alice.access, "POST", "/block", body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe("invalid_request");
    }
    const deep = await send(
      new Request(`${ORIGIN}/admin/block`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.access}`, "content-type": "application/json" },
        body: `{"subject":"mock:bob","reason":${"[".repeat(5_000)}${"]".repeat(5_000)}}`,
      }),
    );
    expect(deep.status, "nesting beyond the bound").toBe(400);
    expect(await deep.text()).not.toMatch(/stack|RangeError/i);
    expect(await auditRows("admin:request"), "the unreadable body is one row too").toMatchObject([
      { decision: "deny", reason: "invalid_request" },
    ]);
    expect((await auditRows("admin:block")).every((r) => r.decision === "deny")).toBe(true);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(0);
  });
});

describe("a revoked or blocked admin gets 401 invalid_token from the admin API (not temporarily_unavailable)", () => {
  it("after revoking their own sign-ins, an admin's old token is invalid_token on /admin", async () => {
    const alice = await signInAs("alice");
    expect((await admin(alice.access, "POST", "/revoke", { subject: "mock:alice", reason: "rotate" })).status).toBe(
      200,
    );
    await expectInvalidToken(await admin(alice.access, "GET", "/audit"), "/admin/audit after revocation");
  });
});

describe("the admin audit vocabulary is fixed: nothing a caller types becomes an action", () => {
  it("a non-admin request to any /admin path is recorded as admin:request, without the path", async () => {
    const dave = await signInAs("dave");
    const response = await admin(dave.access, "GET", "/%3Cscript%3E-anything");
    expect(response.status).toBe(403);
    const rows = await auditRows("admin:request");
    expect(rows).toMatchObject([{ principal: "mock:dave", decision: "deny", reason: "needs_admin", tool: null }]);
    const all = await env.DB.prepare("SELECT DISTINCT action FROM audit_log").all<{ action: string }>();
    expect(all.results.map((r) => r.action)).toEqual(["admin:request"]);
  });

  it("an admin's request to an unknown admin path is a 404 and one admin:request row", async () => {
    const alice = await signInAs("alice");
    expect((await admin(alice.access, "GET", "/nope")).status).toBe(404);
    expect(await auditRows("admin:request")).toMatchObject([{ decision: "deny", reason: "unknown_path" }]);
  });
});

describe("Origin rule on /api and /admin (DNS rebinding, cross-site reads): same as /mcp", () => {
  it("a foreign browser Origin gets 403 and no CORS allowance; the gateway's own origin is served", async () => {
    const alice = await signInAs("alice");
    for (const response of [
      await whoami(alice.access, { origin: "https://evil.example" }),
      await admin(alice.access, "GET", "/audit", undefined, { origin: "https://evil.example" }),
      await send(
        new Request(`${ORIGIN}/admin/audit`, {
          method: "OPTIONS",
          headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
        }),
      ),
    ]) {
      expect(response.status).toBe(403);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    }
    const own = await whoami(alice.access, { origin: ORIGIN });
    expect(own.status).toBe(200);
    expect(own.headers.get("access-control-allow-origin")).toBe(ORIGIN);
  });
});

describe("401 answers carry WWW-Authenticate: Bearer with resource_metadata and a JSON body (RFC 6750 §3, RFC 9728 §5.1)", () => {
  it("no token on /mcp: the challenge and a short JSON body (not an empty one)", async () => {
    const response = await send(
      new Request(`${ORIGIN}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain("resource_metadata=");
    expect(((await response.json()) as { error: string }).error).toBe("unauthorized");
  });

  it("a revoked token on /mcp: invalid_token with the challenge", async () => {
    const alice = await signInAs("alice");
    const bob = await signInAs("bob");
    await admin(alice.access, "POST", "/revoke", { subject: "mock:bob", reason: "x" });
    await expectInvalidToken(
      await mcp(bob.access, {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
      "revoked",
    );
  });
});
