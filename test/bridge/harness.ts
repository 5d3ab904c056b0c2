import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client, type ClientOptions } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeKey,
  bridgeMcpPath,
  type CredentialUse,
  importBridgeKey,
  MCP_SESSION_HEADER,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { BRIDGE_ENTRY } from "../../container/src/entry.ts";

/**
 * Starts the real bridge as a child process, exactly as the image does (BRIDGE_ENTRY), on 127.0.0.1
 * with port 0, and reads the port from its JSON log. Every test file stops what it started.
 */

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const TEST_SECRET = "hatago-bridge-test-secret-0123456789abcdef";

export type LogLine = Record<string, unknown> & { event?: string };

export interface BridgeProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly base: string;
  readonly key: BridgeKey;
  readonly logs: LogLine[];
  url(server: string): string;
  mint(principal: string, server: string, use?: CredentialUse, sessionId?: string): Promise<string>;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  health(): Promise<HealthBody>;
  stop(): Promise<void>;
}

export interface ChildHealth {
  label: string;
  state: string;
  phase: string;
  pid: number | null;
  restarts: number;
  inFlight: number;
  lastError: string | null;
}
export interface HealthBody {
  status: string;
  servers: Record<string, { available: boolean; running: number; children: ChildHealth[] }>;
}

export async function startBridge(env: Record<string, string> = {}): Promise<BridgeProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "hatago-bridge-test-"));
  const proc = spawn(process.execPath, [BRIDGE_ENTRY], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HATAGO_BRIDGE_SECRET: TEST_SECRET,
      HOST: "127.0.0.1",
      PORT: "0",
      HATAGO_BRIDGE_DATA_DIR: dataDir,
      HATAGO_BRIDGE_STOP_GRACE_MS: "300",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let buffered = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline = buffered.indexOf("\n");
    while (newline !== -1) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { event: "NOT_JSON", text };
      }
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  let stderr = "";
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 10_000) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      setTimeout(() => {
        if (waiters.delete(waiter)) reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
    });
  };
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const listening = await Promise.race([
    waitForLog((l) => l.event === "bridge.listening"),
    exited.then(() => {
      throw new Error(`bridge exited at start: ${JSON.stringify(logs)} ${stderr}`);
    }),
  ]).catch(async (error: unknown) => {
    // Never leave a half-started bridge (and its children) behind: SIGTERM lets it stop them.
    proc.kill("SIGTERM");
    await exited;
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const port = Number(listening.port);
  const base = `http://127.0.0.1:${port}`;
  const key = await importBridgeKey(TEST_SECRET);
  const pid = proc.pid ?? -1;
  return {
    proc,
    pid,
    port,
    base,
    key,
    logs,
    url: (server) => `${base}${bridgeMcpPath(server)}`,
    mint: (principal, server, use = "mcp", sessionId) =>
      mintBridgeCredential(key, { principal, server, use, ...(sessionId ? { sessionId } : {}) }),
    waitForLog,
    async health() {
      const res = await fetch(`${base}/health`);
      return (await res.json()) as HealthBody;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A fetch that does what the Worker does: mint a fresh credential for every request, naming the
 * principal, the server and the session the request carries.
 */
export function credentialFetch(bridge: BridgeProcess, principal: string, server: string): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const sessionId = headers.get(MCP_SESSION_HEADER) ?? undefined;
    headers.set(BRIDGE_CREDENTIAL_HEADER, await bridge.mint(principal, server, "mcp", sessionId));
    return fetch(input, { ...init, headers });
  };
}

export const ALL_CLIENT_CAPS: ClientOptions["capabilities"] = {
  sampling: {},
  elicitation: { form: {} },
  roots: { listChanged: true },
};

/** A real SDK client connected through the bridge as `principal`. */
export async function connect(
  bridge: BridgeProcess,
  principal: string,
  server: string,
  options: ClientOptions = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(bridge.url(server)), {
    fetch: credentialFetch(bridge, principal, server),
  });
  const client = new Client({ name: `test-${principal}`, version: "1.0.0" }, options);
  await client.connect(transport);
  return { client, transport };
}

/** Raw POST of one JSON-RPC message in an existing session (what a client's transport would send). */
export async function rawPost(
  bridge: BridgeProcess,
  principal: string,
  server: string,
  sessionId: string | undefined,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    [BRIDGE_CREDENTIAL_HEADER]: await bridge.mint(principal, server, "mcp", sessionId),
    ...extraHeaders,
  };
  if (sessionId) headers[MCP_SESSION_HEADER] = sessionId;
  return fetch(bridge.url(server), {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Opens a session with a raw initialize and returns its id. */
export async function rawSession(bridge: BridgeProcess, principal: string, server: string): Promise<string> {
  const res = await rawPost(bridge, principal, server, undefined, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });
  const id = res.headers.get(MCP_SESSION_HEADER);
  await res.text();
  if (res.status !== 200 || !id) throw new Error(`initialize failed: ${res.status}`);
  return id;
}

/** The JSON-RPC messages of a response body, whether it came as JSON or as an SSE stream. */
export async function messagesOf(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    return text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  }
  const parsed = JSON.parse(text) as unknown;
  return (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
}
