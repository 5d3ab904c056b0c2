import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { shipAuditRows } from "./audit/ledgers.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * "A client sees what it can use" (issue 14), in workerd with real D1, KV and Durable Objects, in both
 * eras: a tool the server offers only to clients that can answer its sampling, elicitation or roots
 * requests (policies/catalog.snapshot.ts, `needs`) does not exist for a client that declared none of
 * them: calling it is audited as a denial (`client_capability_missing`) and nothing is sent. A legacy call
 * reads like a missing tool; a modern one is MissingRequiredClientCapability (-32021, MCP 2026-07-28
 * basic/index), since the caller may use the tool. No bridge runs here; the listing is checked against the real servers in
 * test/e2e/gateway-policy.test.ts.
 *
 * People (policies/environments/dev.ts): bob (writer) may call everything__trigger-sampling-request.
 */
const send = viaDefaultExport;
const SAMPLING_TOOL = "everything__trigger-sampling-request";

async function tokenFor(person: string): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

interface Row {
  action: string;
  server: string | null;
  tool: string | null;
  decision: string;
  reason: string;
}

async function auditRows(principal: string): Promise<Row[]> {
  await shipAuditRows();
  const { results } = await env.DB.prepare(
    "SELECT action, server, tool, decision, reason FROM audit_log WHERE principal = ? ORDER BY id",
  )
    .bind(principal)
    .all<Row>();
  return results;
}

const MISSING_ROW: Row = {
  action: "tools/call",
  server: "everything",
  tool: "trigger-sampling-request",
  decision: "deny",
  reason: "client_capability_missing",
};

/** A 2026-07-28 tools/call with `capabilities` in its `_meta`. */
function modernCall(token: string, name: string, capabilities: Record<string, unknown>): Promise<Response> {
  const body = {
    jsonrpc: "2.0",
    id: 7,
    method: "tools/call",
    params: {
      name,
      arguments: { prompt: "hi" },
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { name: "workers-test", version: "1.0.0" },
        "io.modelcontextprotocol/clientCapabilities": capabilities,
      },
    },
  };
  return send(
    new Request(`${ORIGIN}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": name,
      },
      body: JSON.stringify(body),
    }),
  );
}

const legacyHeaders = (token: string, session?: string) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
  ...(session ? { "mcp-session-id": session } : {}),
});

function legacy(token: string, session: string | undefined, body: unknown): Promise<Response> {
  return send(
    new Request(`${ORIGIN}/mcp`, {
      method: "POST",
      headers: legacyHeaders(token, session),
      body: JSON.stringify(body),
    }),
  );
}

async function openSession(token: string, capabilities: Record<string, unknown>): Promise<string> {
  const init = await legacy(token, undefined, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "workers-test", version: "1" } },
  });
  expect(init.status).toBe(200);
  const session = init.headers.get("mcp-session-id") ?? "";
  expect(session).not.toBe("");
  await init.text();
  expect((await legacy(token, session, { jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
  return session;
}

/** The JSON-RPC message answering a legacy request (JSON or one SSE event). */
async function answerOf(res: Response): Promise<{ error?: { code: number; message: string }; result?: unknown }> {
  const text = await res.text();
  if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) return JSON.parse(text);
  const data = text.split("\n").filter((l) => l.startsWith("data: "));
  return JSON.parse(data.at(-1)?.slice(6) ?? "{}");
}

let bob: string;
beforeEach(async () => {
  const compiled = await compilePolicy(POLICIES.dev);
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
  bob = await tokenFor("bob");
});

describe("a client sees what it can use: modern requests (the request's _meta client capabilities)", () => {
  it("a capability-gated tool called without the capability is -32021 (400) naming it, audited as a denial", async () => {
    const res = await modernCall(bob, SAMPLING_TOOL, {});
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      id: 7,
      error: { code: -32021, data: { requiredCapabilities: { sampling: {} } } },
    });
    expect(await auditRows("mock:bob")).toEqual([MISSING_ROW]);
  });

  it("another capability does not stand in for the one the tool needs (roots is not sampling)", async () => {
    const res = await modernCall(bob, SAMPLING_TOOL, { roots: {}, elicitation: {} });
    expect(await res.json()).toMatchObject({ error: { code: -32021 } });
    expect(await auditRows("mock:bob")).toEqual([MISSING_ROW]);
  });

  it("with the capability declared the call is decided as granted and sent (no bridge here: not available)", async () => {
    const res = await modernCall(bob, SAMPLING_TOOL, { sampling: {} });
    const body = (await res.json()) as { error?: { message: string }; result?: { isError?: boolean } };
    expect(JSON.stringify(body)).not.toContain("not found");
    const rows = await auditRows("mock:bob");
    expect(rows).not.toContainEqual(MISSING_ROW);
    expect(rows).toContainEqual(expect.objectContaining({ tool: "trigger-sampling-request", reason: "granted" }));
  });

  it("an invalid call of a gated tool without the capability is still refused as missing, not as invalid", async () => {
    const res = await send(
      new Request(`${ORIGIN}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${bob}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": "tools/call",
          "mcp-name": SAMPLING_TOOL,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 8,
          method: "tools/call",
          params: {
            name: SAMPLING_TOOL,
            arguments: "not an object",
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        }),
      }),
    );
    expect(await res.json()).toMatchObject({ id: 8, error: { message: `Tool ${SAMPLING_TOOL} not found` } });
    expect(await auditRows("mock:bob")).toEqual([MISSING_ROW]);
  });
});

describe("a client sees what it can use: legacy sessions (the client's initialize capabilities)", () => {
  it("a capability-gated tool called on a session that declared none reads like a missing tool, audited as a denial", async () => {
    const session = await openSession(bob, {});
    const res = await legacy(bob, session, {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: SAMPLING_TOOL, arguments: { prompt: "hi" } },
    });
    expect(await answerOf(res)).toMatchObject({ error: { message: `Tool ${SAMPLING_TOOL} not found` } });
    expect(await auditRows("mock:bob")).toEqual([MISSING_ROW]);
  });

  it("a session whose client declared sampling is not refused for it (no bridge here: not available)", async () => {
    const session = await openSession(bob, { sampling: {} });
    const res = await legacy(bob, session, {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: SAMPLING_TOOL, arguments: { prompt: "hi" } },
    });
    expect(JSON.stringify(await answerOf(res))).not.toContain("not found");
    const rows = await auditRows("mock:bob");
    expect(rows).not.toContainEqual(MISSING_ROW);
    expect(rows).toContainEqual(expect.objectContaining({ tool: "trigger-sampling-request", reason: "granted" }));
  });
});
