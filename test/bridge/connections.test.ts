// Connections on the bridge (issue 17): a person's upstream token reaches that person's process only, a changed
// token restarts it, no token answers with the connect URL, and an eviction takes it away. The Worker's token
// endpoint and the upstream are local fakes; the bridge, its processes and servers/whoami-upstream are real.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CONNECTION_PATH_PREFIX,
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_EVICT_PREFIX,
  BRIDGE_ROUTES,
  type ConnectionAnswer,
  type CredentialUse,
  importBridgeKey,
  mintBridgeCredential,
  ReplayCache,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";
import { CONNECTION_FILE_NAME, launchSpec } from "../../container/src/launch.ts";
import { catalog } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import { type BridgeProcess, connect, type LogLine, startBridge, TEST_SECRET } from "./harness.ts";

const SERVER = "whoami-upstream";
const CONNECT_URL = "http://gateway.fake.test/connect/demo";

/**
 * FAKE of the Worker's connection-token endpoint (worker/connect/bridge-token.ts) and of the upstream's userinfo,
 * on 127.0.0.1. It verifies the bridge's `connection` credential with container/src/contract.ts exactly as the
 * Worker does (same key, a replay cache, the server of the path, no session), and answers from `tokens`.
 */
class FakeConnectionStore {
  readonly tokens = new Map<string, string>();
  /** Every token request the bridge made, verified: who and for which tool. */
  readonly requests: { principal: string; tool: string | null }[] = [];
  /** Requests the fake refused (a bad credential): none are expected. */
  readonly refused: string[] = [];
  /** The bearer tokens the fake upstream's userinfo was called with, in order. */
  readonly userinfoTokens: string[] = [];
  /** Answers for these principals are sent this much later (the token is read before the wait). */
  readonly delayMs = new Map<string, number>();
  readonly #replay = new ReplayCache(10_000);
  readonly #server: Server;
  origin = "";

  constructor() {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.origin = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Who the fake upstream says a token belongs to. */
  #ownerOf(token: string): string | undefined {
    return [...this.tokens].find(([, t]) => t === token)?.[0];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.origin);
    if (url.pathname === "/userinfo") {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
      this.userinfoTokens.push(token);
      const owner = this.#ownerOf(token);
      if (!owner) return void res.writeHead(401).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ login: owner }));
      return;
    }
    const server = url.pathname.slice(BRIDGE_CONNECTION_PATH_PREFIX.length);
    if (!url.pathname.startsWith(BRIDGE_CONNECTION_PATH_PREFIX) || req.method !== "GET") {
      return void res.writeHead(404).end();
    }
    const header = req.headers[BRIDGE_CREDENTIAL_HEADER.toLowerCase()];
    const verified = await verifyBridgeCredential(typeof header === "string" ? header : null, {
      key: await importBridgeKey(TEST_SECRET),
      replay: this.#replay,
      server,
      use: "connection",
      sessionId: undefined,
    });
    if (!verified.ok) {
      this.refused.push(verified.reason);
      res.writeHead(verified.status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: `credential_${verified.reason}`, message: verified.reason } }));
      return;
    }
    const principal = verified.claims.sub;
    this.requests.push({ principal, tool: url.searchParams.get("tool") });
    const token = this.tokens.get(principal);
    // A slow answer (read first, sent later), as from a Worker busy refreshing upstream.
    const delay = this.delayMs.get(principal) ?? 0;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const answer: ConnectionAnswer = token
      ? { status: "connected", token, fingerprint: createHash("sha256").update(token).digest("base64url") }
      : { status: "missing", connectUrl: CONNECT_URL, message: `Not connected. Open ${CONNECT_URL} to connect.` };
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(answer));
  }
}

/** A token as an upstream would issue one: random, never guessable from a name. */
const newToken = (who: string) => `fake-at-${who}-${crypto.randomUUID()}`;

/** The environment of a running process, as the kernel holds it. */
async function environOf(pid: number): Promise<Record<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, "utf8");
  return Object.fromEntries(
    raw
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

/** Every file under `dir` (recursively) whose contents include `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await readFile(file, "utf8").catch(() => "")).includes(needle)) found.push(file);
  }
  return found;
}

/** Whether a process runs (a zombie has exited). */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const textOf = (result: unknown): string =>
  ((result as { content?: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? "").join("\n");

/** The Worker's eviction request (worker/connect/evict.ts), with a credential of `use`. */
const evict = async (use: CredentialUse, principal = "mock:bob", server = SERVER) =>
  fetch(`${bridge.base}${BRIDGE_EVICT_PREFIX}${server}`, {
    method: "DELETE",
    headers: { [BRIDGE_CREDENTIAL_HEADER]: await mintBridgeCredential(bridge.key, { principal, server, use }) },
  });

let store: FakeConnectionStore;
let bridge: BridgeProcess;
let dataDir: string;
const clients: Client[] = [];

/** The bridge's data directory of one person's process of SERVER (the pool names it by a hash). */
const personDir = (principal: string) =>
  path.join(dataDir, SERVER, createHash("sha256").update(principal).digest("hex").slice(0, 32));

async function whoamiClient(principal: string): Promise<Client> {
  const { client } = await connect(bridge, principal, SERVER);
  clients.push(client);
  return client;
}

/** The pids of SERVER's processes whose environment includes `needle`. */
async function processesHolding(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await pids()) {
    const env = await environOf(pid).catch(() => ({}));
    if (Object.entries(env).some(([k, v]) => `${k}=${v}`.includes(needle))) found.push(pid);
  }
  return found;
}

/** The pids of SERVER's processes now, from /health. */
async function pids(): Promise<number[]> {
  const health = await bridge.health();
  return (health.servers[SERVER]?.children ?? []).flatMap((c) => (c.pid === null ? [] : [c.pid]));
}

beforeAll(async () => {
  store = new FakeConnectionStore();
  await store.start();
  dataDir = await mkdtemp(path.join(tmpdir(), "hatago-bridge-connections-"));
  bridge = await startBridge({
    HATAGO_BRIDGE_SERVERS: SERVER,
    HATAGO_BRIDGE_DATA_DIR: dataDir,
    HATAGO_BRIDGE_CONNECTIONS_URL: store.origin,
    WHOAMI_UPSTREAM_USERINFO_URL: `${store.origin}/userinfo`,
    HATAGO_BRIDGE_LOG_LEVEL: "debug",
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await bridge?.stop();
  await store?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Every token the fake ever issued, to look for where none may appear. */
const issued: string[] = [];
const connectPerson = (principal: string) => {
  const token = newToken(principal.replace(/\W/g, "-"));
  issued.push(token);
  store.tokens.set(principal, token);
  return token;
};

describe("connections on the bridge (issue 17)", () => {
  let bobPid = 0;
  let carolPid = 0;

  it("a per-user process gets its person's token in its environment; another person's process never does", async () => {
    const bobToken = connectPerson("mock:bob");
    const carolToken = connectPerson("mock:carol");
    const bob = await whoamiClient("mock:bob");
    const answer = await bob.callTool({ name: "whoami", arguments: {} });
    expect(answer.isError).toBeFalsy();
    expect(textOf(answer)).toBe("upstream account: mock:bob");
    expect(store.userinfoTokens).toEqual([bobToken]);
    bobPid = (await pids())[0] ?? 0;
    expect(bobPid).toBeGreaterThan(0);

    const carol = await whoamiClient("mock:carol");
    expect(textOf(await carol.callTool({ name: "whoami", arguments: {} }))).toBe("upstream account: mock:carol");
    carolPid = (await pids()).find((p) => p !== bobPid) ?? 0;
    expect(carolPid).toBeGreaterThan(0);

    const bobEnv = await environOf(bobPid);
    const carolEnv = await environOf(carolPid);
    expect(bobEnv.UPSTREAM_ACCESS_TOKEN).toBe(bobToken);
    expect(carolEnv.UPSTREAM_ACCESS_TOKEN).toBe(carolToken);
    expect(Object.values(carolEnv).join("\n")).not.toContain(bobToken);
    expect(Object.values(bobEnv).join("\n")).not.toContain(carolToken);
    // Not in the bridge's own environment either, nor written anywhere on disk (`env` delivery).
    expect(Object.values(await environOf(bridge.pid)).join("\n")).not.toContain(bobToken);
    expect(await filesContaining(dataDir, bobToken)).toEqual([]);
    // The bridge asked for each person's token with a credential naming that person: at start and per call.
    expect(store.refused).toEqual([]);
    expect(store.requests).toEqual([
      { principal: "mock:bob", tool: null },
      { principal: "mock:bob", tool: "whoami" },
      { principal: "mock:carol", tool: null },
      { principal: "mock:carol", tool: "whoami" },
    ]);
  });

  it("a changed token restarts the person's process before the next call, and only theirs", async () => {
    const bob = clients[0] as Client;
    const refreshed = connectPerson("mock:bob");
    const answer = await bob.callTool({ name: "whoami", arguments: {} });
    expect(textOf(answer)).toBe("upstream account: mock:bob");
    expect(store.userinfoTokens.at(-1)).toBe(refreshed);
    const now = await pids();
    expect(now).toContain(carolPid);
    expect(now).not.toContain(bobPid);
    expect(running(bobPid)).toBe(false);
    const newBobPid = now.find((p) => p !== carolPid) ?? 0;
    expect((await environOf(newBobPid)).UPSTREAM_ACCESS_TOKEN).toBe(refreshed);
    expect(bridge.logs.some((l) => l.event === "connection.restart" && l.reason === "connection changed")).toBe(true);
    // The same token again: no restart.
    expect(textOf(await bob.callTool({ name: "whoami", arguments: {} }))).toBe("upstream account: mock:bob");
    expect(await pids()).toContain(newBobPid);
    bobPid = newBobPid;
  });

  it("no connection: the call is a tool error with the connect URL, and the process still lists its tools", async () => {
    const dave = await whoamiClient("mock:dave");
    const tools = await dave.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(["whoami"]);
    const before = store.userinfoTokens.length;
    const answer = await dave.callTool({ name: "whoami", arguments: {} });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toContain(CONNECT_URL);
    // The call never reached the process (or the upstream).
    expect(store.userinfoTokens.length).toBe(before);
    const davePid = (await pids()).find((p) => p !== bobPid && p !== carolPid) ?? 0;
    expect(davePid).toBeGreaterThan(0);
    expect((await environOf(davePid)).UPSTREAM_ACCESS_TOKEN).toBeUndefined();
  });

  it("a call through /execute (execute_stdio) asks for the token too: the connect URL, or a restart with the new one", async () => {
    const execute = async (principal: string) => {
      const credential = await mintBridgeCredential(bridge.key, { principal, server: SERVER, use: "execute" });
      const res = await fetch(`${bridge.base}${BRIDGE_ROUTES.execute}`, {
        method: "POST",
        headers: { "content-type": "application/json", [BRIDGE_CREDENTIAL_HEADER]: credential },
        body: JSON.stringify({
          server: SERVER,
          message: { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "whoami", arguments: {} } },
        }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { result: unknown }).result;
    };
    const dave = await execute("mock:dave");
    expect((dave as { isError?: boolean }).isError).toBe(true);
    expect(textOf(dave)).toContain(CONNECT_URL);
    expect(store.requests.at(-1)).toEqual({ principal: "mock:dave", tool: "whoami" });

    const refreshed = connectPerson("mock:carol");
    expect(textOf(await execute("mock:carol"))).toBe("upstream account: mock:carol");
    expect(store.userinfoTokens.at(-1)).toBe(refreshed);
    expect(running(carolPid)).toBe(false);
    const [newCarolPid] = await processesHolding(`UPSTREAM_ACCESS_TOKEN=${refreshed}`);
    expect(newCarolPid).toBeGreaterThan(0);
    carolPid = newCarolPid ?? 0;
  });

  it("DELETE /connections/<server> stops the person's process and removes the token file; others keep running", async () => {
    // Start from a token file at the path a `file` entry writes it to, to see the eviction remove it.
    const tokenFile = path.join(personDir("mock:bob"), CONNECTION_FILE_NAME);
    await mkdir(path.dirname(tokenFile), { recursive: true });
    await writeFile(tokenFile, store.tokens.get("mock:bob") ?? "", { mode: 0o600 });
    // Only a `connection-evict` credential for this server evicts (another use is refused as the wrong use).
    expect((await evict("mcp")).status).toBe(403);
    expect((await evict("connection")).status).toBe(403);
    expect((await evict("connection-evict", "mock:bob", "memory")).status).toBe(404);
    const forged = await mintBridgeCredential(await importBridgeKey("another-secret-that-is-long-enough-0000"), {
      principal: "mock:bob",
      server: SERVER,
      use: "connection-evict",
    });
    const forgedRes = await fetch(`${bridge.base}${BRIDGE_EVICT_PREFIX}${SERVER}`, {
      method: "DELETE",
      headers: { [BRIDGE_CREDENTIAL_HEADER]: forged },
    });
    expect(forgedRes.status).toBe(401);
    expect(running(bobPid)).toBe(true);

    store.tokens.delete("mock:bob"); // the Worker deletes the row, then evicts
    const res = await evict("connection-evict");
    expect(res.status).toBe(204);
    expect(running(bobPid)).toBe(false);
    expect(existsSync(tokenFile)).toBe(false);
    expect(running(carolPid)).toBe(true);

    // Bob's next call: no token, so the connect URL, and his restarted process holds none.
    const bob = clients[0] as Client;
    const answer = await bob.callTool({ name: "whoami", arguments: {} });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toContain(CONNECT_URL);
    for (const pid of await pids()) {
      if (pid === carolPid) continue;
      expect(Object.values(await environOf(pid)).join("\n")).not.toContain(issued[0]);
      expect(Object.values(await environOf(pid)).join("\n")).not.toContain(issued[2]);
    }
  });

  it("an eviction that lands while a token is being fetched wins: the token fetched before it is never used", async () => {
    const first = connectPerson("mock:erin");
    const erin = await whoamiClient("mock:erin");
    expect(textOf(await erin.callTool({ name: "whoami", arguments: {} }))).toBe("upstream account: mock:erin");
    const second = connectPerson("mock:erin");
    store.delayMs.set("mock:erin", 500);
    const asked = store.requests.length;
    const call = erin.callTool({ name: "whoami", arguments: {} });
    await expect.poll(() => store.requests.length, { timeout: 5_000 }).toBeGreaterThan(asked);
    // The Worker deletes the row (the answer in flight already carries the token), then evicts.
    store.tokens.delete("mock:erin");
    expect((await evict("connection-evict", "mock:erin")).status).toBe(204);
    const answer = await call;
    expect(answer.isError).toBe(true);
    // Answered by the bridge, without restarting erin's process with the token that was just deleted.
    expect(textOf(answer)).toContain("Your connection was removed while this call started");
    expect(store.userinfoTokens).not.toContain(second);
    expect(await processesHolding(first)).toEqual([]);
    expect(await processesHolding(second)).toEqual([]);
    store.delayMs.delete("mock:erin");
  });

  it("no token ever appears in the bridge's log lines or /health", async () => {
    const health = JSON.stringify(await bridge.health());
    const logs = bridge.logs.map((l: LogLine) => JSON.stringify(l)).join("\n");
    expect(issued.length).toBeGreaterThanOrEqual(3);
    for (const token of issued) {
      expect(health).not.toContain(token);
      expect(logs).not.toContain(token);
    }
    // The log says what happened, without the token.
    expect(logs).toContain("connection.restart");
    expect(logs).toContain("connection.evicted");
  });
});

describe("launchSpec: how a connection token reaches a process", () => {
  const base: CatalogEntry = catalog[SERVER];
  const ctx = {
    appRoot: "/app",
    dataDir: "/data/whoami-upstream/0123",
    parentEnv: {},
    nodePath: "/usr/bin/node",
    pythonPath: "/usr/bin/python3",
    connectionToken: "fake-at-x",
  };

  it("`file`: a private file in the process's own directory, named by <NAME>_FILE, and not in the environment", () => {
    const entry: CatalogEntry = {
      ...base,
      connection: { provider: "demo", scopes: [], as: "file", name: "UPSTREAM_ACCESS_TOKEN" },
    };
    const spec = launchSpec(entry, ctx);
    const file = path.join(ctx.dataDir, CONNECTION_FILE_NAME);
    expect(spec.files).toEqual([{ path: file, contents: "fake-at-x" }]);
    expect(spec.env.UPSTREAM_ACCESS_TOKEN_FILE).toBe(file);
    expect(Object.values(spec.env)).not.toContain("fake-at-x");
  });

  it("no token, or a shared entry: nothing", () => {
    expect(launchSpec(base, { ...ctx, connectionToken: null }).env.UPSTREAM_ACCESS_TOKEN).toBeUndefined();
    const shared: CatalogEntry = { ...base, isolation: "shared" };
    expect(Object.values(launchSpec(shared, ctx).env)).not.toContain("fake-at-x");
  });
});
