import { describe, expect, it } from "vitest";
import {
  type BridgeKey,
  CLOCK_SKEW_SECONDS,
  CREDENTIAL_TTL_SECONDS,
  importBridgeKey,
  jsonDepthExceeds,
  jsonRpcRequestProblem,
  MAX_CREDENTIAL_LIFETIME_SECONDS,
  MAX_JSON_DEPTH,
  mintBridgeCredential,
  ReplayCache,
  type VerifyOptions,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";

const SECRET = "contract-test-secret-0123456789abcdef";
const NOW = 1_800_000_000;

async function setup() {
  const key = await importBridgeKey(SECRET);
  const replay = new ReplayCache(1_000);
  const opts = (over: Partial<VerifyOptions> = {}): VerifyOptions => ({
    key,
    replay,
    server: "memory",
    use: "mcp",
    sessionId: undefined,
    now: NOW,
    ...over,
  });
  const mint = (over: Partial<Parameters<typeof mintBridgeCredential>[1]> = {}, k: BridgeKey = key) =>
    mintBridgeCredential(k, { principal: "github:alice", server: "memory", use: "mcp", now: NOW, ...over });
  return { key, replay, opts, mint };
}

function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

describe("bridge credential: mint and verify (HMAC-SHA-256, WebCrypto)", () => {
  it("a freshly minted credential verifies and names the principal, server and session", async () => {
    const { opts, mint } = await setup();
    const token = await mint({ sessionId: "s-1" });
    const result = await verifyBridgeCredential(token, opts({ sessionId: "s-1" }));
    expect(result).toMatchObject({ ok: true, claims: { sub: "github:alice", srv: "memory", use: "mcp", sid: "s-1" } });
    if (result.ok) expect(result.claims.exp - result.claims.iat).toBe(CREDENTIAL_TTL_SECONDS);
  });

  it("refuses a secret shorter than 32 bytes (no weak or default secret)", async () => {
    await expect(importBridgeKey("short")).rejects.toThrow(/at least 32 bytes/);
    await expect(importBridgeKey("")).rejects.toThrow();
  });
});

describe("bridge credential: bypass attempts", () => {
  it("missing → 401 missing", async () => {
    const { opts } = await setup();
    for (const token of [undefined, null, ""]) {
      expect(await verifyBridgeCredential(token, opts())).toEqual({ ok: false, reason: "missing", status: 401 });
    }
  });

  it("malformed shapes → 401 malformed", async () => {
    const { opts, mint } = await setup();
    const good = await mint();
    const [, payload, sig] = good.split(".");
    for (const token of [
      "x",
      "v1.a",
      `v2.${payload}.${sig}`,
      `v1.${payload}.${sig}.x`,
      `v1.${payload}.!!`,
      "a".repeat(5000),
    ]) {
      expect(await verifyBridgeCredential(token, opts())).toMatchObject({
        ok: false,
        reason: "malformed",
        status: 401,
      });
    }
  });

  it("tampered claims (principal swapped, signature kept) → 401 bad_signature", async () => {
    const { opts, mint } = await setup();
    const token = await mint();
    const [v, payload = "", sig] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = `${v}.${b64urlJson({ ...claims, sub: "github:mallory" })}.${sig}`;
    expect(await verifyBridgeCredential(forged, opts())).toMatchObject({ ok: false, reason: "bad_signature" });
  });

  it("signed with another secret (forged) → 401 bad_signature", async () => {
    const { opts, mint } = await setup();
    const other = await importBridgeKey("another-secret-that-is-long-enough-000");
    expect(await verifyBridgeCredential(await mint({}, other), opts())).toMatchObject({
      ok: false,
      reason: "bad_signature",
      status: 401,
    });
  });

  it("expired (past exp + skew) → 401 expired; within the skew it still verifies", async () => {
    const { opts, mint } = await setup();
    const late = NOW + CREDENTIAL_TTL_SECONDS + CLOCK_SKEW_SECONDS + 1;
    expect(await verifyBridgeCredential(await mint(), opts({ now: late }))).toMatchObject({
      reason: "expired",
      status: 401,
    });
    const edge = NOW + CREDENTIAL_TTL_SECONDS + CLOCK_SKEW_SECONDS;
    expect(await verifyBridgeCredential(await mint(), opts({ now: edge }))).toMatchObject({ ok: true });
  });

  it("issued in the future → 401 not_yet_valid", async () => {
    const { opts, mint } = await setup();
    const token = await mint({ now: NOW + CLOCK_SKEW_SECONDS + 10 });
    expect(await verifyBridgeCredential(token, opts())).toMatchObject({ reason: "not_yet_valid", status: 401 });
  });

  it("a lifetime over the maximum (long-lived credential) → 401 lifetime_too_long", async () => {
    const { opts, mint } = await setup();
    const token = await mint({ ttlSeconds: MAX_CREDENTIAL_LIFETIME_SECONDS + 1 });
    expect(await verifyBridgeCredential(token, opts())).toMatchObject({ reason: "lifetime_too_long", status: 401 });
  });

  it("for another server → 403 wrong_server", async () => {
    const { opts, mint } = await setup();
    expect(await verifyBridgeCredential(await mint({ server: "everything" }), opts())).toMatchObject({
      ok: false,
      reason: "wrong_server",
      status: 403,
    });
  });

  it("minted for /mcp used on /execute → 403 wrong_use", async () => {
    const { opts, mint } = await setup();
    expect(await verifyBridgeCredential(await mint(), opts({ use: "execute" }))).toMatchObject({
      reason: "wrong_use",
      status: 403,
    });
  });

  it("the Mcp-Session-Id header must equal the credential's sid (both ways) → 403 wrong_session", async () => {
    const { opts, mint } = await setup();
    expect(await verifyBridgeCredential(await mint(), opts({ sessionId: "s-9" }))).toMatchObject({
      reason: "wrong_session",
      status: 403,
    });
    expect(await verifyBridgeCredential(await mint({ sessionId: "s-1" }), opts({ sessionId: "s-2" }))).toMatchObject({
      reason: "wrong_session",
    });
    expect(await verifyBridgeCredential(await mint({ sessionId: "s-1" }), opts())).toMatchObject({
      reason: "wrong_session",
    });
  });

  it("replayed within its lifetime → 401 replayed (single use, CVE-2026-110278 class)", async () => {
    const { opts, mint } = await setup();
    const token = await mint();
    expect(await verifyBridgeCredential(token, opts())).toMatchObject({ ok: true });
    expect(await verifyBridgeCredential(token, opts({ now: NOW + 1 }))).toMatchObject({
      reason: "replayed",
      status: 401,
    });
  });

  it("a refused credential does not spend its nonce (wrong server first, then the right one)", async () => {
    const { opts, mint } = await setup();
    const token = await mint();
    expect(await verifyBridgeCredential(token, opts({ server: "everything" }))).toMatchObject({ ok: false });
    expect(await verifyBridgeCredential(token, opts())).toMatchObject({ ok: true });
  });
});

describe("replay cache: bounded memory, fails closed", () => {
  it("forgets expired nonces and refuses (503) rather than evicting live ones when full", () => {
    const cache = new ReplayCache(2);
    expect(cache.claim("a".repeat(22), NOW + 30, NOW)).toBe("fresh");
    expect(cache.claim("b".repeat(22), NOW + 30, NOW)).toBe("fresh");
    expect(cache.claim("c".repeat(22), NOW + 30, NOW)).toBe("replay_cache_full");
    expect(cache.claim("a".repeat(22), NOW + 30, NOW)).toBe("replayed");
    // Past expiry + skew both are forgotten and there is room again.
    const later = NOW + 30 + CLOCK_SKEW_SECONDS + 1;
    expect(cache.claim("c".repeat(22), later + 30, later)).toBe("fresh");
    expect(cache.size).toBe(1);
  });
});

describe("contract module runs in workerd too", () => {
  it("imports nothing from node: (WebCrypto and standard globals only)", async () => {
    const { readFile } = await import("node:fs/promises");
    const source = await readFile(new URL("../../container/src/contract.ts", import.meta.url), "utf8");
    expect(source).not.toMatch(/from\s+["']node:/);
    expect(source).not.toMatch(/^import\s/m);
  });
});

describe("JSON nesting bound (MAX_JSON_DEPTH): one iterative check for the Worker and the bridge", () => {
  const nest = (depth: number): unknown => JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);

  it("counts objects and arrays: a scalar is 0 deep, {} and [] are 1", () => {
    expect(jsonDepthExceeds("x", 0)).toBe(false);
    expect(jsonDepthExceeds({}, 0)).toBe(true);
    expect(jsonDepthExceeds({}, 1)).toBe(false);
    expect(jsonDepthExceeds({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(jsonDepthExceeds({ a: [{ b: [] }] }, 3)).toBe(true);
    expect(jsonDepthExceeds(nest(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonDepthExceeds(nest(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it("is iterative: 1,000,000 levels (what a 2 MB body holds) are measured without overflowing the stack", () => {
    const deep = nest(1_000_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(jsonDepthExceeds(deep)).toBe(true);
  });

  it("finds the deep branch among wide, shallow ones", () => {
    const wide = Array.from({ length: 10_000 }, (_, i) => (i === 9_999 ? nest(MAX_JSON_DEPTH) : { a: [1] }));
    expect(jsonDepthExceeds(wide)).toBe(true);
    expect(jsonDepthExceeds(wide.slice(0, 9_999))).toBe(false);
  });
});

describe("exactly one JSON-RPC request (jsonRpcRequestProblem): execute_stdio and /execute", () => {
  it("accepts a request with or without object params", () => {
    expect(jsonRpcRequestProblem({ jsonrpc: "2.0", id: 1, method: "ping" })).toBeNull();
    expect(jsonRpcRequestProblem({ jsonrpc: "2.0", id: "a", method: "tools/list", params: {} })).toBeNull();
  });

  it.each([
    [{ jsonrpc: "2.0", id: 1, method: "ping", command: "sh" }, "member not allowed: command"],
    [{ jsonrpc: "2.0", id: 1, method: "ping", params: [] }, "params must be an object"],
    [{ jsonrpc: "2.0", id: 1, method: "ping", params: null }, "params must be an object"],
    [{ jsonrpc: "2.0", method: "ping" }, "id must be a string or a number"],
    [{ jsonrpc: "2.0", id: null, method: "ping" }, "id must be a string or a number"],
    [{ jsonrpc: "2.0", id: 1, method: "" }, "method must be a non-empty string"],
    [{ jsonrpc: "1.0", id: 1, method: "ping" }, 'jsonrpc must be "2.0"'],
    [{ jsonrpc: "2.0", id: 1, result: {} }, "member not allowed: result"],
    [[{ jsonrpc: "2.0", id: 1, method: "ping" }], "must be one JSON object"],
  ])("%j → %s", (message, problem) => {
    expect(jsonRpcRequestProblem(message)).toBe(problem);
  });
});
