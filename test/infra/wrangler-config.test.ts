import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { containersNeeded, parseStackConfig } from "../../infra/config.ts";
import { REPO_ROOT } from "../../infra/source-hash.ts";
import {
  COMPATIBILITY_DATE,
  COMPATIBILITY_FLAGS,
  DURABLE_OBJECT_MIGRATIONS,
  type WranglerConfig,
  wranglerConfig,
} from "../../infra/wrangler-config.ts";
import { BINDINGS, DURABLE_OBJECT_CLASSES } from "../../worker/bindings.ts";

// wrangler's own config reader and validator (the code `wrangler deploy` runs first), not a copy of its rules.
type ReadConfig = (args: { config: string }, options?: { hideWarnings?: boolean }) => WranglerConfig & object;
let readConfig: ReadConfig;
let dir: string;

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const IMAGE = `registry.cloudflare.com/${ACCOUNT}/hatago-bridge@sha256:${"ab".repeat(32)}`;

function generated(hosting: "workers-dev" | "custom-domain" = "workers-dev"): WranglerConfig {
  const values: Record<string, string> = { accountId: ACCOUNT, workersDevSubdomain: "acme" };
  if (hosting === "custom-domain") values.domain = "mcp.example.com";
  const config = parseStackConfig("dev", { get: (key) => values[key], getSecret: () => undefined });
  return wranglerConfig({
    names: config.names,
    accountId: config.accountId,
    hosting: config.hosting,
    d1DatabaseId: "00000000-0000-4000-8000-000000000001",
    kvNamespaceId: "0123456789abcdef0123456789abcdef",
    stateBucketName: "hatago-dev-bridge-state",
    image: IMAGE,
    container: config.container,
    vars: { HATAGO_ENVIRONMENT: "dev", HATAGO_PUBLIC_URL: config.baseUrl, HATAGO_LOGIN_PROVIDER: "mock" },
  });
}

/** Runs a config file through wrangler's reader; fails on any warning or error it prints. */
function validateFile(file: string): WranglerConfig & object {
  const printed: unknown[][] = [];
  const spies = (["warn", "error", "log"] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args);
    }),
  );
  try {
    const result = readConfig({ config: file });
    expect(printed.map((args) => args.join(" "))).toEqual([]);
    return result;
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

/** Writes a generated config as the deploy command does (paths made absolute) and validates it. */
async function validate(config: WranglerConfig): Promise<WranglerConfig & object> {
  const file = path.join(dir, `wrangler-${Math.random().toString(36).slice(2)}.jsonc`);
  const main = config.main ? path.join(REPO_ROOT, config.main) : undefined;
  await writeFile(file, JSON.stringify({ ...config, ...(main ? { main } : {}) }));
  return validateFile(file);
}

beforeAll(async () => {
  const wrangler = (await import("wrangler")) as unknown as { unstable_readConfig: ReadConfig };
  readConfig = wrangler.unstable_readConfig;
  dir = await mkdtemp(path.join(tmpdir(), "hatago-wrangler-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("generated wrangler config: what the Worker needs", () => {
  it("binds D1, KV and the three Durable Object namespaces under the names in worker/bindings.ts", () => {
    const config = generated();
    expect(config.d1_databases?.map((d) => d.binding)).toEqual([BINDINGS.db]);
    expect(config.kv_namespaces?.map((k) => k.binding)).toEqual([BINDINGS.oauthKv]);
    expect(config.durable_objects?.bindings).toEqual([
      { name: BINDINGS.bridge, class_name: DURABLE_OBJECT_CLASSES.bridge },
      { name: BINDINGS.sessions, class_name: DURABLE_OBJECT_CLASSES.sessions },
      { name: BINDINGS.auditLedger, class_name: DURABLE_OBJECT_CLASSES.auditLedger },
    ]);
  });

  it("binds every name in worker/bindings.ts, and nothing else", () => {
    const config = generated();
    const bound = [
      ...(config.d1_databases ?? []).map((d) => d.binding),
      ...(config.kv_namespaces ?? []).map((k) => k.binding),
      ...(config.r2_buckets ?? []).map((b) => b.binding),
      ...(config.durable_objects?.bindings ?? []).map((b) => b.name),
    ];
    expect(bound.sort()).toEqual(Object.values(BINDINGS).sort());
  });

  it("backs the bridge class with the container, at the stack's size, from the pushed image", () => {
    expect(generated().containers).toEqual([
      {
        name: "hatago-dev-bridge",
        class_name: "BridgeContainer",
        image: IMAGE,
        instance_type: "lite",
        max_instances: containersNeeded(3),
        observability: { logs: { enabled: true } },
      },
    ]);
  });

  it("creates every class as a SQLite-backed Durable Object (a container-backed class must be), the ledger under its own tag", () => {
    expect(generated().migrations).toEqual([
      { tag: "v1", new_sqlite_classes: ["BridgeContainer", "McpSession"] },
      { tag: "v2", new_sqlite_classes: ["AuditLedger"] },
    ]);
  });

  it("uses the compatibility date and flags the Worker is written for", () => {
    expect(generated()).toMatchObject({
      main: "worker/index.ts",
      compatibility_date: "2026-11-01",
      compatibility_flags: ["nodejs_compat", "global_fetch_strictly_public", "enable_request_signal"],
    });
  });

  it("keeps the Worker's invocation logs and the container's logs (monitoring)", () => {
    expect(generated().observability).toEqual({
      enabled: true,
      logs: { enabled: true, invocation_logs: true, persist: true },
    });
    expect(generated().containers?.[0]?.observability).toEqual({ logs: { enabled: true } });
  });

  it("holds no secret binding (secrets go on the deploy command's stdin)", () => {
    const config = generated();
    expect(config).not.toHaveProperty("secrets");
    expect(Object.keys(config.vars ?? {}).filter((k) => /SECRET/.test(k))).toEqual([]);
  });
});

describe("generated wrangler config: accepted by wrangler's own validation", () => {
  it("the workers.dev form reads without a warning", async () => {
    const read = await validate(generated("workers-dev"));
    expect(read.containers?.[0]?.image).toBe(IMAGE);
    expect(read.workers_dev).toBe(true);
  });

  it("the custom-domain form reads without a warning", async () => {
    const read = await validate(generated("custom-domain"));
    expect(read.routes).toEqual([{ pattern: "mcp.example.com", custom_domain: true }]);
    expect(read.workers_dev).toBe(false);
  });

  it("wrangler refuses what it should refuse (the check is not vacuous)", async () => {
    const broken = {
      ...generated(),
      containers: [{ class_name: "BridgeContainer", image: IMAGE, instance_type: "giant" }],
    };
    await expect(validate(broken as WranglerConfig)).rejects.toThrow();
  });
});

describe("binding names cannot drift: worker/bindings.ts ⇄ wrangler.jsonc ⇄ the Worker ⇄ the generated config", () => {
  it("every binding in the local wrangler.jsonc uses a name from worker/bindings.ts", async () => {
    const local = validateFile(path.join(REPO_ROOT, "wrangler.jsonc"));
    const names = [
      ...(local.d1_databases ?? []).map((d) => d.binding),
      ...(local.kv_namespaces ?? []).map((k) => k.binding),
      ...(local.durable_objects?.bindings ?? []).map((b) => b.name),
    ];
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(Object.values(BINDINGS)).toContain(name);
    for (const binding of local.durable_objects?.bindings ?? []) {
      expect(Object.values(DURABLE_OBJECT_CLASSES)).toContain(binding.class_name);
    }
  });

  it("the local and deployed configs agree on compatibility date and flags", () => {
    const local = readLocalConfig();
    expect(local.compatibility_date).toBe(COMPATIBILITY_DATE);
    expect([...(local.compatibility_flags ?? [])].sort()).toEqual([...COMPATIBILITY_FLAGS].sort());
  });

  it("the local config's Durable Object migrations, if any, create the same classes under the same tags", () => {
    const asSets = (migrations: readonly { tag: string; new_sqlite_classes?: readonly string[] }[]) =>
      migrations.map((m) => ({ tag: m.tag, new_sqlite_classes: [...(m.new_sqlite_classes ?? [])].sort() }));
    const local = readLocalConfig();
    if (local.migrations !== undefined) expect(asSets(local.migrations)).toEqual(asSets(DURABLE_OBJECT_MIGRATIONS));
    expect(DURABLE_OBJECT_MIGRATIONS.flatMap((m) => m.new_sqlite_classes).sort()).toEqual(
      Object.values(DURABLE_OBJECT_CLASSES).sort(),
    );
  });

  it("the local config's container, if any, backs the same class as the deployed one", () => {
    const local = readLocalConfig();
    for (const container of local.containers ?? []) expect(container.class_name).toBe(DURABLE_OBJECT_CLASSES.bridge);
  });

  it("every binding the Worker's Env declares is one the deployed config provides", () => {
    const env = readFileSync(path.join(REPO_ROOT, "worker/env.ts"), "utf8");
    const declared = [...env.matchAll(/^\s*readonly ([A-Z][A-Z0-9_]*)\??:/gm)].map((m) => m[1]);
    expect(declared.length).toBeGreaterThan(0);
    for (const name of declared) expect(Object.values(BINDINGS)).toContain(name);
  });
});

function readLocalConfig(): WranglerConfig {
  // JSONC: drop comment lines (the file has no "//" inside strings outside its $schema path).
  const text = readFileSync(path.join(REPO_ROOT, "wrangler.jsonc"), "utf8")
    .split("\n")
    .filter((line) => !line.trim().startsWith("//"))
    .join("\n");
  return JSON.parse(text) as WranglerConfig;
}
