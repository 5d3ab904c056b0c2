import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { compilePolicy, POLICIES, seedSql } from "../../policies/index.ts";
import { copyD1Template, d1TemplateKey, saveD1Template } from "./local-d1-template.ts";
import { readLocalSecrets } from "./local-secrets.ts";
import { watchPolicies } from "./policy-watch.ts";
import { assertPortFree, describeEnd, type Managed, startManaged, stopManaged, waitForHealthy } from "./processes.ts";
import { REPO_ROOT } from "./server-tools.ts";
import { type Supervised, supervise } from "./supervise.ts";

/** wrangler dev is usually ready in 2–4 s here; the first start after install can take much longer. */
const WORKER_READY_TIMEOUT_MS = 90_000;
const BRIDGE_READY_TIMEOUT_MS = 20_000;

/** Wrangler and Miniflare stay offline: no telemetry, no update check, no cf.json download. */
export const WRANGLER_OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  WRANGLER_NO_SKILLS_UPDATE_PROMPTS: "true",
  DO_NOT_TRACK: "1",
} as const;

/**
 * Local-only settings of wrangler dev's two workerd processes (defaults: a setting in the caller's
 * environment wins). Without them the local stack's memory grows with every request and never levels
 * (bench/RESULTS.md, "Memory soak"); none of this exists when deployed.
 *
 * - `X_LOCAL_OBSERVABILITY=false`: wrangler dev attaches its trace collector to the Worker whatever
 *   wrangler.jsonc's `observability` says, and it writes every invocation into the state directory (~9.4 KB
 *   per call, never pruned). Set it to `true` to see local traces.
 * - `MINIFLARE_WORKERD_V8_FLAGS=--gc-global`: the native memory behind a request's JS objects (requests,
 *   responses, D1 and KV results) is freed when V8 collects those objects, and V8, which sees only their
 *   small JS side, rarely runs a full collection in isolates with heaps as small as wrangler's proxy, the
 *   local D1 and KV simulators and our Worker: the native memory piled up by ~90 KiB per call. This makes
 *   every V8 collection a full one; on these small heaps that cost ~0.5 ms of CPU per call at most (~4%,
 *   inside the spread between runs).
 */
export const LOCAL_RUNTIME_DEFAULTS = {
  X_LOCAL_OBSERVABILITY: "false",
  MINIFLARE_WORKERD_V8_FLAGS: "--gc-global",
} as const;

/** The environment of the stack's wrangler commands: the runtime defaults, the caller's, then offline. */
export function localStackEnv(parent: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...LOCAL_RUNTIME_DEFAULTS, ...parent, ...WRANGLER_OFFLINE_ENV };
}

export interface LocalStackOptions {
  readonly host: string;
  readonly port: number;
  readonly bridgePort: number;
  readonly inspectorPort: number;
  /** Local D1/KV/Durable Object data, the bridge's data and the dev secret; kept between runs. */
  readonly stateDir: string;
  readonly log: (source: string, line: string) => void;
  /**
   * Another wrangler entry in place of wrangler.jsonc's `main` (the bench's metered Worker, which wraps
   * this one); the product's own entry when absent.
   */
  readonly workerEntry?: string;
  /** Another bridge entry in place of container/src/main.ts (tests: a bridge that crashes on purpose). */
  readonly bridgeEntry?: string;
  /** Re-seed the local D1 when a file of policies/ changes (scripts/lib/policy-watch.ts). */
  readonly watchPolicies?: boolean;
  /** Tests: watch a copy of policies/ instead of this repository's (never edit the real one in a test). */
  readonly policiesDir?: string;
  /** Extra browser origins the MCP endpoint admits (HATAGO_ALLOWED_ORIGINS), e.g. a browser-based client. */
  readonly allowedOrigins?: string | undefined;
  /** Consecutive restarts of a dying bridge before giving up (supervise.ts's default when absent; 0: never). */
  readonly maxBridgeRestarts?: number;
  /**
   * Connections (issue 17): Worker settings for the `demo` provider and the userinfo URL its demo server calls.
   * Absent: the mock upstream provider (HATAGO_CONNECT_DEMO_KIND=mock), served by the Worker itself.
   */
  readonly connect?: { readonly workerSettings: Readonly<Record<string, string>>; readonly userinfoUrl: string };
  /**
   * Tests: where a fresh state directory's migrated and seeded D1 is kept by content and copied from
   * (local-d1-template.ts); absent (`npm start`), wrangler migrates and seeds every start.
   */
  readonly d1TemplatesDir?: string;
  /** Tests: more Worker settings for the dev env file (e.g. shorter listen clocks, HATAGO_LISTEN_*). */
  readonly workerSettings?: Readonly<Record<string, string>>;
}

export interface LocalStack {
  readonly url: string;
  readonly mcpUrl: string;
  readonly bridgeUrl: string;
  /** The stack's processes running now (the bridge is absent between a crash and its restart). */
  readonly processes: readonly Managed[];
  /**
   * Resolves with a reason when the stack cannot go on (wrangler's process died): `npm start` then stops
   * everything and exits non-zero. A dying bridge is restarted instead (see supervise.ts).
   */
  readonly failed: Promise<string>;
  stop(): Promise<void>;
}

export function localStackOptionsFromEnv(env: NodeJS.ProcessEnv, log: LocalStackOptions["log"]): LocalStackOptions {
  const port = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65_535)
      throw new Error(`${name} must be a port number (1–65535), not "${raw}"`);
    return n;
  };
  const host = env.HATAGO_HOST?.trim() || "127.0.0.1";
  const p = port("HATAGO_PORT", 8787);
  return {
    host,
    port: p,
    bridgePort: port("HATAGO_BRIDGE_PORT", p + 3),
    inspectorPort: port("HATAGO_INSPECTOR_PORT", 9229),
    stateDir: path.resolve(env.HATAGO_STATE_DIR?.trim() || path.join(REPO_ROOT, ".hatago")),
    log,
    // `npm start` applies policy edits without a restart.
    watchPolicies: true,
    allowedOrigins: env.HATAGO_ALLOWED_ORIGINS?.trim() || undefined,
  };
}

/**
 * Brings up the whole product on this machine: D1 migrated and seeded with the dev policy, the bridge
 * with the catalog's servers, and the Worker in workerd with mock login. `npm start` and the end-to-end
 * tests both use this. Everything it starts is stopped by `stop()`.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { host, port, bridgePort, inspectorPort, stateDir, log } = options;
  await assertPortFree(host, port, "HATAGO_PORT");
  await assertPortFree("127.0.0.1", bridgePort, "HATAGO_BRIDGE_PORT");
  await assertPortFree("127.0.0.1", inspectorPort, "HATAGO_INSPECTOR_PORT");

  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const secret = await devSecret(stateDir);
  const persistTo = path.join(stateDir, "wrangler");
  const env = localStackEnv(process.env);
  const wrangler = path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js");

  const compiled = await compilePolicy(POLICIES.dev);
  const seed = seedSql(compiled);
  // A fresh state directory may copy a D1 already migrated and seeded with this content (tests).
  const template =
    options.d1TemplatesDir && !(await exists(persistTo))
      ? { dir: options.d1TemplatesDir, key: await d1TemplateKey(seed) }
      : null;
  if (template && (await copyD1Template(template.dir, template.key, persistTo))) {
    log("stack", `local D1 copied from template ${template.key.slice(0, 12)} (migrated, policy "dev" seeded)`);
  } else {
    await run(
      "migrations",
      process.execPath,
      [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo],
      env,
      log,
    );
    const seedFile = path.join(stateDir, "seed.sql");
    await writeFile(seedFile, seed);
    await run(
      "seed",
      process.execPath,
      [wrangler, "d1", "execute", "DB", "--local", "--persist-to", persistTo, "--file", seedFile],
      env,
      log,
    );
    if (template) await saveD1Template(template.dir, template.key, persistTo);
  }
  log("stack", `policy "dev" ${compiled.hash.slice(0, 12)} seeded`);

  let bridge: Supervised | null = null;
  let worker: Managed | null = null;
  let stopping = false;
  let stopWatching = () => {};
  const stop = async () => {
    stopping = true;
    stopWatching();
    if (worker) await stopManaged(worker);
    await bridge?.stop();
  };
  try {
    const bridgeUrl = `http://127.0.0.1:${bridgePort}`;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    // Supervised: a bridge that dies is restarted with backoff, as Cloudflare restarts a container.
    const secrets = await readLocalSecrets(stateDir);
    for (const line of [
      ...secrets.missing,
      ...secrets.unknown.map((u) => `ignored: ${u} (no catalog entry declares it)`),
    ])
      log("stack", line);
    bridge = await supervise({
      name: "bridge",
      start: () =>
        startManaged(
          "bridge",
          process.execPath,
          [options.bridgeEntry ?? path.join(REPO_ROOT, "container/src/main.ts")],
          {
            cwd: REPO_ROOT,
            env: {
              PATH: process.env.PATH ?? "",
              HATAGO_BRIDGE_SECRET: secret,
              HOST: "127.0.0.1",
              PORT: String(bridgePort),
              HATAGO_BRIDGE_DATA_DIR: path.join(stateDir, "bridge-data"),
              // Data directories are restored from and saved to the Worker's R2 (simulated on disk under
              // the state dir), as a container's are through its Durable Object: the dev-only state route.
              HATAGO_BRIDGE_STATE_URL: url,
              // Locally a server whose runtime, program or secret is missing is skipped with one line.
              HATAGO_BRIDGE_MISSING_SERVERS: "skip",
              // People's upstream tokens (issue 17) come from the Worker too, through the dev-only route.
              HATAGO_BRIDGE_CONNECTIONS_URL: url,
              WHOAMI_UPSTREAM_USERINFO_URL:
                options.connect?.userinfoUrl ?? `${url}/connect/mock-upstream/demo/userinfo`,
              ...secrets.env,
            },
            onLine: (line) => log("bridge", line),
          },
        ),
      ready: (proc) => waitForHealthy(`${bridgeUrl}/health`, proc, BRIDGE_READY_TIMEOUT_MS),
      log: (line) => log("stack", line),
      ...(options.maxBridgeRestarts === undefined ? {} : { maxConsecutiveRestarts: options.maxBridgeRestarts }),
    });

    const envFile = path.join(stateDir, "dev.env");
    await writeFile(
      envFile,
      [
        `HATAGO_BRIDGE_SECRET=${secret}`,
        `HATAGO_INSECURE_DEV_BRIDGE_URL=${bridgeUrl}`,
        `HATAGO_PUBLIC_URL=${url}`,
        "HATAGO_ENVIRONMENT=dev",
        "HATAGO_LOGIN_PROVIDER=mock",
        ...(options.allowedOrigins ? [`HATAGO_ALLOWED_ORIGINS=${options.allowedOrigins}`] : []),
        // Connections: the demo provider (a mock upstream unless a test brings its fake one) and the dev key.
        `HATAGO_CONNECTION_KEYS=dev:${await devSecret(stateDir, "connection-key")}`,
        "HATAGO_CONNECT_PROVIDERS=demo",
        ...Object.entries(options.connect?.workerSettings ?? { HATAGO_CONNECT_DEMO_KIND: "mock" }).map(
          ([name, value]) => `${name}=${value}`,
        ),
        ...Object.entries(options.workerSettings ?? {}).map(([name, value]) => `${name}=${value}`),
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    worker = startManaged(
      "worker",
      process.execPath,
      [
        wrangler,
        "dev",
        ...(options.workerEntry ? [options.workerEntry] : []),
        "--ip",
        host,
        "--port",
        String(port),
        "--inspector-port",
        String(inspectorPort),
        "--persist-to",
        persistTo,
        "--env-file",
        envFile,
        "--show-interactive-dev-session=false",
        "--log-level",
        // HATAGO_LOG=quiet|calls|debug: the Worker's line per decided request (worker/audit/audit-line.ts) is info.
        ({ quiet: "warn", calls: "info", debug: "debug" } as const)[
          process.env.HATAGO_LOG === "quiet" || process.env.HATAGO_LOG === "debug" ? process.env.HATAGO_LOG : "calls"
        ],
      ],
      { cwd: REPO_ROOT, env, onLine: (line) => log("worker", line) },
    );
    await waitForHealthy(`${url}/health`, worker, WORKER_READY_TIMEOUT_MS);
    if (options.watchPolicies) {
      stopWatching = watchPolicies({
        stateDir,
        d1Execute: [wrangler, "d1", "execute", "DB", "--local", "--persist-to", persistTo],
        env,
        seeded: compiled,
        log: (line) => log("stack", line),
        ...(options.policiesDir ? { policiesDir: options.policiesDir } : {}),
      });
    }
    const supervised = bridge;
    const workerProc = worker;
    const failed = workerProc.ended.then(async (end) => {
      if (stopping) return new Promise<string>(() => {});
      return `the Worker (wrangler dev) exited unexpectedly (${describeEnd(end)})`;
    });
    return {
      url,
      mcpUrl: `${url}/mcp`,
      bridgeUrl,
      get processes() {
        const running = supervised.current();
        return running ? [running, workerProc] : [workerProc];
      },
      failed,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A random secret for the Worker ⇄ bridge credential, made once per state directory and kept private. */
async function devSecret(stateDir: string, name = "bridge-secret"): Promise<string> {
  const file = path.join(stateDir, name);
  try {
    const existing = (await readFile(file, "utf8")).trim();
    if (existing.length >= 43) return existing;
  } catch {
    // First start.
  }
  const secret = randomBytes(32).toString("base64url");
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

async function run(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: LocalStackOptions["log"],
): Promise<void> {
  const proc = startManaged(name, command, args, { cwd: REPO_ROOT, env, onLine: (line) => log(name, line) });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${name} failed (exit code ${code}); see its output above`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
