// State that survives (issue 13): the Worker's state store, in workerd with the real R2 simulation and the
// real BRIDGE Durable Object namespace (ids only: containers cannot run here). Each directory is reached by
// exactly one (server, principal), named by a `state` credential and, deployed, bound to the requesting
// container.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeKey,
  bridgeStatePath,
  DEFAULT_STATE_MAX_BYTES,
  importBridgeKey,
  mintBridgeCredential,
  ReplayCache,
  STATE_DIGEST_HEADER,
  stateArchiveBoundBytes,
  stateDigest,
} from "../../container/src/contract.ts";
import type { ServerId } from "../../policies/catalog.ts";
import { containerSecretEnv } from "../../worker/bridge/container.ts";
import { containerName } from "../../worker/bridge/router.ts";
import { handleBridgeStateRequest, STATE_KEY_PREFIX, stateObjectKey } from "../../worker/bridge/state.ts";
import { workerWith } from "./oauth/harness/workers.ts";

const SECRET = "test-only-bridge-secret-0123456789abcdef";
const ORIGIN = "http://bridge-state.hatago.internal";

let key: BridgeKey;
let replay: ReplayCache;

beforeEach(async () => {
  key = await importBridgeKey(SECRET);
  replay = new ReplayCache(1_000);
  const listed = await env.BRIDGE_STATE.list({ prefix: STATE_KEY_PREFIX });
  if (listed.objects.length > 0) await env.BRIDGE_STATE.delete(listed.objects.map((o) => o.key));
});

function containerIdOf(server: ServerId, principal: string): string {
  if (!env.BRIDGE) throw new Error("the BRIDGE namespace is bound in wrangler.jsonc");
  return env.BRIDGE.idFromName(containerName(server, principal)).toString();
}

/** Sends one state request the way a bridge does, from inside `container` (null: the local dev route). */
async function send(
  request: Request,
  container: { server: ServerId; principal: string } | null = null,
): Promise<Response> {
  return handleBridgeStateRequest(request, {
    key,
    replay,
    bucket: env.BRIDGE_STATE,
    containerId: container === null ? null : containerIdOf(container.server, container.principal),
    containers: env.BRIDGE,
  });
}

async function saveRequest(server: ServerId, principal: string, bytes: Uint8Array<ArrayBuffer>): Promise<Request> {
  const digest = await stateDigest(bytes);
  const credential = await mintBridgeCredential(key, { principal, server, use: "state", bodyDigest: digest });
  return new Request(`${ORIGIN}${bridgeStatePath(server)}`, {
    method: "PUT",
    headers: { [BRIDGE_CREDENTIAL_HEADER]: credential, [STATE_DIGEST_HEADER]: digest },
    body: bytes,
  });
}

async function loadRequest(server: ServerId, principal: string): Promise<Request> {
  const credential = await mintBridgeCredential(key, { principal, server, use: "state" });
  return new Request(`${ORIGIN}${bridgeStatePath(server)}`, { headers: { [BRIDGE_CREDENTIAL_HEADER]: credential } });
}

const bytes = (text: string): Uint8Array<ArrayBuffer> => new Uint8Array(new TextEncoder().encode(text));

async function load(server: ServerId, principal: string, container = { server, principal }): Promise<string | number> {
  const response = await send(await loadRequest(server, principal), container);
  if (response.status !== 200) return response.status;
  return new TextDecoder().decode(await response.arrayBuffer());
}

describe("a directory is saved and restored whole, under its (server, principal)", () => {
  it("bob's save comes back to bob, with the digest it was checked against", async () => {
    const archive = bytes("bob's graph v1");
    expect(
      (await send(await saveRequest("memory", "mock:bob", archive), { server: "memory", principal: "mock:bob" }))
        .status,
    ).toBe(204);
    const response = await send(await loadRequest("memory", "mock:bob"), { server: "memory", principal: "mock:bob" });
    expect(response.status).toBe(200);
    expect(response.headers.get(STATE_DIGEST_HEADER)).toBe(await stateDigest(archive));
    expect(new TextDecoder().decode(await response.arrayBuffer())).toBe("bob's graph v1");
  });

  it("nothing saved yet is a 404 `no_state` (a fresh directory), not an error", async () => {
    const response = await send(await loadRequest("memory", "mock:dave"), { server: "memory", principal: "mock:dave" });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "no_state", message: "nothing saved yet" } });
  });
});

describe("isolation: no path, key or request of another principal reaches a directory", () => {
  it("carol, asking with her own credential from her own container, does not get bob's directory", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("bob's secret graph")), {
      server: "memory",
      principal: "mock:bob",
    });
    expect(await load("memory", "mock:carol")).toBe(404);
    await send(await saveRequest("memory", "mock:carol", bytes("carol's graph")), {
      server: "memory",
      principal: "mock:carol",
    });
    expect(await load("memory", "mock:bob")).toBe("bob's secret graph");
    expect(await load("memory", "mock:carol")).toBe("carol's graph");
  });

  it("storage keys: one per (server, owner), the principal hashed, never in the key", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("b")), { server: "memory", principal: "mock:bob" });
    await send(await saveRequest("memory", "mock:carol", bytes("c")), { server: "memory", principal: "mock:carol" });
    const keys = (await env.BRIDGE_STATE.list({ prefix: STATE_KEY_PREFIX })).objects.map((o) => o.key).sort();
    expect(keys).toEqual(
      [await stateObjectKey("memory", "mock:bob"), await stateObjectKey("memory", "mock:carol")].sort(),
    );
    for (const k of keys) {
      expect(k).toMatch(/^bridge-state\/v1\/memory\/u-[0-9a-f]{64}$/);
      expect(k).not.toContain("bob");
      expect(k).not.toContain("carol");
    }
    // A principal that looks like a path cannot move its key anywhere else.
    expect(await stateObjectKey("memory", "../../everything/shared")).toMatch(
      /^bridge-state\/v1\/memory\/u-[0-9a-f]{64}$/,
    );
    // A shared server has one directory, whoever names it.
    expect(await stateObjectKey("everything", "mock:bob")).toBe("bridge-state/v1/everything/shared");
  });

  it("the path names only a server; a principal in the path or the query changes nothing", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("bob's")), { server: "memory", principal: "mock:bob" });
    const credential = await mintBridgeCredential(key, { principal: "mock:carol", server: "memory", use: "state" });
    for (const target of [
      `${bridgeStatePath("memory")}/mock:bob`,
      `${bridgeStatePath("memory")}%2Fmock:bob`,
      `${bridgeStatePath("Memory")}`,
    ]) {
      const response = await send(
        new Request(`${ORIGIN}${target}`, { headers: { [BRIDGE_CREDENTIAL_HEADER]: credential } }),
      );
      expect(response.status, target).toBe(404);
    }
    const withQuery = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}?principal=mock:bob`, {
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential },
      }),
    );
    expect(withQuery.status).toBe(404); // carol's own (empty) directory, not bob's
    expect(await withQuery.json()).toMatchObject({ error: { code: "no_state" } });
  });
});

describe("the credential binds exactly one (server, principal), and, deployed, the container", () => {
  it("no credential, another secret's, or one for another use is refused before storage is touched", async () => {
    const bare = await send(new Request(`${ORIGIN}${bridgeStatePath("memory")}`));
    expect(bare.status).toBe(401);
    const otherKey = await importBridgeKey("another-secret-that-is-long-enough-0123456789");
    const forged = await mintBridgeCredential(otherKey, { principal: "mock:bob", server: "memory", use: "state" });
    const forgedResponse = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}`, { headers: { [BRIDGE_CREDENTIAL_HEADER]: forged } }),
    );
    expect(forgedResponse.status).toBe(401);
    const mcp = await mintBridgeCredential(key, { principal: "mock:bob", server: "memory", use: "mcp" });
    const mcpResponse = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}`, { headers: { [BRIDGE_CREDENTIAL_HEADER]: mcp } }),
    );
    expect(mcpResponse.status).toBe(403);
    expect(await mcpResponse.json()).toMatchObject({ error: { code: "credential_wrong_use" } });
  });

  it("a credential for one server does not open another server's directory", async () => {
    const credential = await mintBridgeCredential(key, { principal: "mock:bob", server: "memory", use: "state" });
    const response = await send(
      new Request(`${ORIGIN}${bridgeStatePath("everything")}`, { headers: { [BRIDGE_CREDENTIAL_HEADER]: credential } }),
    );
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: "credential_wrong_server" } });
  });

  it("a credential is single use", async () => {
    const request = await loadRequest("memory", "mock:bob");
    expect((await send(request.clone(), { server: "memory", principal: "mock:bob" })).status).toBe(404);
    const again = await send(request, { server: "memory", principal: "mock:bob" });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: { code: "credential_replayed" } });
  });

  it("a save's credential carries its body's digest: another body (with a matching header) is refused", async () => {
    const digest = await stateDigest(bytes("the body bob's bridge signed"));
    const credential = await mintBridgeCredential(key, {
      principal: "mock:bob",
      server: "memory",
      use: "state",
      bodyDigest: digest,
    });
    const swapped = bytes("a body someone else chose");
    const response = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}`, {
        method: "PUT",
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential, [STATE_DIGEST_HEADER]: await stateDigest(swapped) },
        body: swapped,
      }),
    );
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: "credential_wrong_body" } });
  });

  describe("bypass attempts: a container with the bridge secret mints for someone else", () => {
    it("carol's container cannot read or write bob's directory, even with a valid credential for bob", async () => {
      await send(await saveRequest("memory", "mock:bob", bytes("bob's")), { server: "memory", principal: "mock:bob" });
      const read = await send(await loadRequest("memory", "mock:bob"), { server: "memory", principal: "mock:carol" });
      expect(read.status).toBe(403);
      expect(await read.json()).toMatchObject({ error: { code: "wrong_container" } });
      const write = await send(await saveRequest("memory", "mock:bob", bytes("overwritten by carol")), {
        server: "memory",
        principal: "mock:carol",
      });
      expect(write.status).toBe(403);
      expect(await load("memory", "mock:bob")).toBe("bob's");
    });

    it("the shared server's container cannot reach a per-user directory, nor a user's container the shared one", async () => {
      const fromShared = await send(await loadRequest("memory", "mock:bob"), {
        server: "everything",
        principal: "mock:bob",
      });
      expect(fromShared.status).toBe(403);
      const fromUser = await send(await loadRequest("everything", "shared"), {
        server: "memory",
        principal: "mock:bob",
      });
      expect(fromUser.status).toBe(403);
      const own = await send(await loadRequest("everything", "shared"), { server: "everything", principal: "shared" });
      expect(own.status).toBe(404); // its own directory, empty so far
    });
  });
});

describe("a save is atomic: an interrupted or torn upload leaves the previous version", () => {
  it("a body that breaks off mid-way (the bridge killed mid-save) stores nothing", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("version 1")), {
      server: "memory",
      principal: "mock:bob",
    });
    const full = bytes("version 2, which never arrives whole");
    const digest = await stateDigest(full);
    const credential = await mintBridgeCredential(key, {
      principal: "mock:bob",
      server: "memory",
      use: "state",
      bodyDigest: digest,
    });
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(full.slice(0, 10));
        controller.error(new Error("connection reset"));
      },
    });
    const response = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}`, {
        method: "PUT",
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential, [STATE_DIGEST_HEADER]: digest },
        body: broken,
      }),
      { server: "memory", principal: "mock:bob" },
    );
    expect(response.status).toBe(400);
    expect(await load("memory", "mock:bob")).toBe("version 1");
  });

  it("a body cut short that ends cleanly does not match its digest, and stores nothing", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("version 1")), {
      server: "memory",
      principal: "mock:bob",
    });
    const full = bytes("version 2, cut short");
    const digest = await stateDigest(full);
    const credential = await mintBridgeCredential(key, {
      principal: "mock:bob",
      server: "memory",
      use: "state",
      bodyDigest: digest,
    });
    const response = await send(
      new Request(`${ORIGIN}${bridgeStatePath("memory")}`, {
        method: "PUT",
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential, [STATE_DIGEST_HEADER]: digest },
        body: full.slice(0, 12),
      }),
      { server: "memory", principal: "mock:bob" },
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "digest_mismatch" } });
    expect(await load("memory", "mock:bob")).toBe("version 1");
  });
});

describe("size limit per directory (catalog `stateMaxBytes`, default 16 MiB)", () => {
  it("an archive over the bound is refused with 413 and the last good version is kept", async () => {
    await send(await saveRequest("memory", "mock:bob", bytes("good version")), {
      server: "memory",
      principal: "mock:bob",
    });
    const tooBig = new Uint8Array(stateArchiveBoundBytes(DEFAULT_STATE_MAX_BYTES) + 1);
    const response = await send(await saveRequest("memory", "mock:bob", tooBig), {
      server: "memory",
      principal: "mock:bob",
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "state_too_large" } });
    expect(await load("memory", "mock:bob")).toBe("good version");
  });
});

describe("the local dev route exists only in HATAGO_INSECURE_DEV_BRIDGE_URL mode", () => {
  it("without the dev setting the Worker has no state route; with it, the same handler answers", async () => {
    const request = async () =>
      new Request(`http://127.0.0.1:8787${bridgeStatePath("memory")}`, {
        headers: {
          [BRIDGE_CREDENTIAL_HEADER]: await mintBridgeCredential(key, {
            principal: "mock:bob",
            server: "memory",
            use: "state",
          }),
        },
      });
    const deployed = workerWith({ HATAGO_PUBLIC_URL: "http://127.0.0.1:8787" });
    expect((await deployed(await request())).status).toBe(404);
    const local = workerWith({
      HATAGO_PUBLIC_URL: "http://127.0.0.1:8787",
      HATAGO_INSECURE_DEV_BRIDGE_URL: "http://127.0.0.1:8790",
    });
    const response = await local(await request());
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "no_state" } });
  });
});

describe("a server's secrets reach only that server's containers (issue 13)", () => {
  const secrets = {
    HATAGO_SECRET_EVERYTHING__HATAGO_DEMO_SECRET: "for-everything",
    HATAGO_SECRET_MEMORY__SOMETHING: "not-declared-by-memory",
    HATAGO_BRIDGE_SECRET: "x",
  };
  it("the container of a server gets its declared secrets; other servers' and the health probe's get none", () => {
    expect(containerSecretEnv("shared:everything", secrets)).toEqual({
      HATAGO_SECRET_EVERYTHING__HATAGO_DEMO_SECRET: "for-everything",
    });
    expect(containerSecretEnv("user:memory:mock:bob", secrets)).toEqual({});
    expect(containerSecretEnv("user:notes:mock:bob", secrets)).toEqual({});
    expect(containerSecretEnv("health", secrets)).toEqual({});
    expect(containerSecretEnv(undefined, secrets)).toEqual({});
  });
});
