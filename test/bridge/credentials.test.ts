import { spawn } from "node:child_process";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  importBridgeKey,
  MCP_SESSION_HEADER,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { BRIDGE_ENTRY } from "../../container/src/entry.ts";
import { type BridgeProcess, REPO_ROOT, rawPost, rawSession, startBridge, TEST_SECRET } from "./harness.ts";

let bridge: BridgeProcess;
beforeAll(async () => {
  bridge = await startBridge();
});
afterAll(async () => {
  await bridge?.stop();
});

const LIST = { jsonrpc: "2.0", id: 1, method: "tools/list" };
const INIT = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
};

async function post(credential: string | undefined, body: unknown, sessionId?: string, server = "everything") {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  if (credential !== undefined) headers[BRIDGE_CREDENTIAL_HEADER] = credential;
  if (sessionId) headers[MCP_SESSION_HEADER] = sessionId;
  const res = await fetch(bridge.url(server), { method: "POST", headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

describe("bridge credential on every request (BR-01..06)", () => {
  it("a valid credential opens a session", async () => {
    expect((await post(await bridge.mint("github:alice", "everything"), INIT)).status).toBe(200);
  });

  it("missing → 401 with a JSON reason", async () => {
    const res = await post(undefined, INIT);
    expect(res).toEqual({
      status: 401,
      body: { error: { code: "credential_missing", message: "a bridge credential is required" } },
    });
  });

  it("forged (signed with another secret) → 401", async () => {
    const otherKey = await importBridgeKey("not-the-bridge-secret-but-long-enough-0000");
    const forged = await mintBridgeCredential(otherKey, {
      principal: "github:alice",
      server: "everything",
      use: "mcp",
    });
    expect(await post(forged, INIT)).toMatchObject({
      status: 401,
      body: { error: { code: "credential_bad_signature" } },
    });
  });

  it("malformed → 401", async () => {
    expect(await post("Bearer something", INIT)).toMatchObject({
      status: 401,
      body: { error: { code: "credential_malformed" } },
    });
  });

  it("expired → 401", async () => {
    const expired = await mintBridgeCredential(bridge.key, {
      principal: "github:alice",
      server: "everything",
      use: "mcp",
      now: Math.floor(Date.now() / 1000) - 120,
    });
    expect(await post(expired, INIT)).toMatchObject({ status: 401, body: { error: { code: "credential_expired" } } });
  });

  it("for another server → 403", async () => {
    expect(await post(await bridge.mint("github:alice", "memory"), INIT)).toMatchObject({
      status: 403,
      body: { error: { code: "credential_wrong_server" } },
    });
  });

  it("replayed → 401 on the second use", async () => {
    const once = await bridge.mint("github:alice", "everything");
    expect((await post(once, INIT)).status).toBe(200);
    expect(await post(once, INIT)).toMatchObject({ status: 401, body: { error: { code: "credential_replayed" } } });
  });

  it("an /execute credential on the MCP route → 403", async () => {
    expect(await post(await bridge.mint("github:alice", "everything", "execute"), INIT)).toMatchObject({
      status: 403,
      body: { error: { code: "credential_wrong_use" } },
    });
  });
});

describe("session ids are bound to principals (session hijacking)", () => {
  it("another principal's session id → 404, the same as an unknown id", async () => {
    const aliceSession = await rawSession(bridge, "github:alice", "everything");
    // Bob's credential even names Alice's session (as a confused Worker might): still unknown to Bob.
    const asBob = await post(await bridge.mint("github:bob", "everything", "mcp", aliceSession), LIST, aliceSession);
    expect(asBob).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    const unknown = await post(await bridge.mint("github:bob", "everything", "mcp", "no-such"), LIST, "no-such");
    expect(unknown.status).toBe(404);
    // Alice still reaches it.
    const res = await rawPost(bridge, "github:alice", "everything", aliceSession, LIST);
    expect(res.status).toBe(200);
    await res.text();
  });

  it("a session header the credential does not name → 403 (the session is trusted only via the credential)", async () => {
    const aliceSession = await rawSession(bridge, "github:alice", "everything");
    expect(await post(await bridge.mint("github:alice", "everything"), LIST, aliceSession)).toMatchObject({
      status: 403,
      body: { error: { code: "credential_wrong_session" } },
    });
  });

  it("a session of one server is unknown on another server's route", async () => {
    const session = await rawSession(bridge, "github:alice", "everything");
    const res = await rawPost(bridge, "github:alice", "memory", session, LIST);
    expect(res.status).toBe(404);
    await res.text();
  });

  it("DELETE ends the session; it is then unknown", async () => {
    const session = await rawSession(bridge, "github:alice", "everything");
    const del = await fetch(bridge.url("everything"), {
      method: "DELETE",
      headers: {
        [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint("github:alice", "everything", "mcp", session),
        [MCP_SESSION_HEADER]: session,
      },
    });
    expect(del.status).toBe(200);
    const res = await rawPost(bridge, "github:alice", "everything", session, LIST);
    expect(res.status).toBe(404);
    await res.text();
  });
});

/** A request with the exact target given (fetch would normalise dot segments and escapes). */
function rawTarget(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: bridge.port, path, method: "POST" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end("{}");
  });
}

describe("server id routing bypass attempts (exact match, no decoding)", () => {
  it.each([
    "/servers/Memory/mcp",
    "/servers/%6Demory/mcp",
    "/servers/memory%2F/mcp",
    "/servers/../servers/memory/mcp",
    "/servers/constructor/mcp",
    "/servers/__proto__/mcp",
    "/servers/memory/mcp/",
    "/servers//mcp",
    "/servers/memory%00/mcp",
  ])("%s → 404", async (path) => {
    expect(await rawTarget(path)).toBe(404);
  });
});

describe("browser requests (DNS rebinding, CVE-2025-49596 class)", () => {
  it("a request carrying Origin is refused 403 even with a valid credential", async () => {
    const res = await fetch(bridge.url("everything"), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        origin: "https://evil.example",
        [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint("github:alice", "everything"),
      },
      body: JSON.stringify(INIT),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "origin_refused" } });
  });
});

describe("/health", () => {
  it("needs no credential and reveals no principal, session or secret", async () => {
    const session = await rawSession(bridge, "github:health-probe-user", "everything");
    const res = await fetch(`${bridge.base}/health`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("health-probe-user");
    expect(text).not.toContain(session);
    expect(text).not.toContain(TEST_SECRET);
    expect(JSON.parse(text)).toMatchObject({ status: "ok", servers: { everything: { available: true } } });
  });
});

describe("start-up refuses an unsafe configuration (no default secret, AS-70)", () => {
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const proc = spawn(process.execPath, [BRIDGE_ENTRY], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? "", PORT: "0", ...env },
      });
      let out = "";
      proc.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      proc.on("exit", (code) => resolve({ code, out }));
    });

  it("without HATAGO_BRIDGE_SECRET it exits 1 with a JSON log line saying why", async () => {
    const { code, out } = await run({});
    expect(code).toBe(1);
    expect(JSON.parse(out.trim())).toMatchObject({ level: "error", event: "bridge.config_invalid" });
  });

  it("with a secret shorter than 32 bytes it exits 1", async () => {
    const { code, out } = await run({ HATAGO_BRIDGE_SECRET: "too-short" });
    expect(code).toBe(1);
    expect(out).toContain("at least 32 bytes");
  });
});
