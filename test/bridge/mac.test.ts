import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  importBridgeKey,
  mintBridgeCredential,
  ReplayCache,
  type VerifyOptions,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";
import { importVerifyingKey } from "../../container/src/mac.ts";

const SECRET = "mac-test-secret-0123456789abcdef-xyz";
const NOW = 1_800_000_000;

async function setup() {
  const minting = await importBridgeKey(SECRET); // what the Worker holds (WebCrypto only)
  const verifying = await importVerifyingKey(SECRET); // what the bridge holds (node:crypto check)
  const opts = (): VerifyOptions => ({
    key: verifying,
    replay: new ReplayCache(100),
    server: "memory",
    use: "mcp",
    sessionId: undefined,
    now: NOW,
  });
  const mint = (key = minting) =>
    mintBridgeCredential(key, { principal: "github:alice", server: "memory", use: "mcp", now: NOW });
  return { minting, verifying, opts, mint };
}

describe("bridge credential: the node:crypto tag check accepts exactly what WebCrypto accepts (HMAC-SHA-256)", () => {
  it("a credential minted with WebCrypto (as the Worker mints it) verifies with the bridge's key", async () => {
    const { opts, mint } = await setup();
    expect(await verifyBridgeCredential(await mint(), opts())).toMatchObject({
      ok: true,
      claims: { sub: "github:alice" },
    });
  });

  it("agrees with crypto.subtle.verify on valid, bit-flipped and foreign tags over random data", async () => {
    const { minting, verifying } = await setup();
    const other = await importBridgeKey("another-secret-that-is-long-enough-000");
    const verifyTag = verifying.verifyTag;
    if (!verifyTag) throw new Error("the bridge key has no synchronous tag check");
    for (let i = 0; i < 200; i++) {
      const data = new Uint8Array(randomBytes(1 + (i % 97)));
      const good = new Uint8Array(await crypto.subtle.sign("HMAC", minting.hmac, data));
      const flipped = good.slice();
      flipped[i % 32] = (flipped[i % 32] ?? 0) ^ (1 << (i % 8));
      const foreign = new Uint8Array(await crypto.subtle.sign("HMAC", other.hmac, data));
      for (const tag of [good, flipped, foreign, good.slice(0, 31)]) {
        expect(verifyTag(tag, data)).toBe(await crypto.subtle.verify("HMAC", minting.hmac, tag, data));
      }
    }
  });
});

describe("bridge credential: bypass attempts against the node:crypto tag check", () => {
  it("claims changed under a kept tag (principal swapped) → 401 bad_signature", async () => {
    const { opts, mint } = await setup();
    const [v, payload = "", tag] = (await mint()).split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = `${v}.${Buffer.from(JSON.stringify({ ...claims, sub: "github:mallory" })).toString("base64url")}.${tag}`;
    expect(await verifyBridgeCredential(forged, opts())).toMatchObject({ ok: false, reason: "bad_signature" });
  });

  it("minted with another secret → 401 bad_signature", async () => {
    const { opts, mint } = await setup();
    const other = await importBridgeKey("another-secret-that-is-long-enough-000");
    expect(await verifyBridgeCredential(await mint(other), opts())).toMatchObject({
      ok: false,
      reason: "bad_signature",
      status: 401,
    });
  });

  it("a secret shorter than 32 bytes is still refused (no weak key through the bridge's import)", async () => {
    await expect(importVerifyingKey("short")).rejects.toThrow(/at least 32 bytes/);
  });
});
