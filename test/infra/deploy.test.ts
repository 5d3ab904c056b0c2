import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { cloudflareApi } from "../../infra/cloudflare-api.ts";
import {
  applyD1Migrations,
  deleteWorkerDeployment,
  deployWorker,
  formatResult,
  type GeneratedConfig,
  parseGeneratedConfig,
  parseResult,
  type WranglerRunner,
} from "../../infra/deploy/index.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "fake-token";
const REPO = "/repo";

const config: GeneratedConfig = parseGeneratedConfig(
  JSON.stringify({
    name: "hatago-pr-9",
    account_id: ACCOUNT,
    main: "worker/index.ts",
    d1_databases: [{ binding: "DB", database_name: "hatago-pr-9", database_id: "db-1", migrations_dir: "migrations" }],
    containers: [
      { name: "hatago-pr-9-bridge", class_name: "BridgeContainer", image: "registry.cloudflare.com/x@sha256:1" },
    ],
    vars: { HATAGO_ENVIRONMENT: "staging" },
  }),
  "HATAGO_WRANGLER_CONFIG",
);

interface WranglerCall {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  /** The config file as wrangler found it. */
  readonly configFile: Record<string, unknown>;
  readonly configPath: string;
}

/**
 * FakeWrangler: records each run, reads the config file it was given, and answers like wrangler
 * (exit code; for `deploy`, an ND-JSON line in WRANGLER_OUTPUT_FILE_PATH).
 */
function fakeWrangler(behaviour: { exitCode?: number; versionId?: string } = {}) {
  const calls: WranglerCall[] = [];
  const run: WranglerRunner = async (args, options) => {
    const configPath = String(args[args.indexOf("--config") + 1]);
    calls.push({
      args,
      env: options.env,
      stdin: options.stdin,
      configPath,
      configFile: JSON.parse(readFileSync(configPath, "utf8")),
    });
    const output = options.env.WRANGLER_OUTPUT_FILE_PATH;
    if (args[0] === "deploy" && output && behaviour.exitCode === undefined) {
      const lines = [
        { type: "wrangler-session", version: 1 },
        {
          type: "deploy",
          version: 1,
          worker_name: config.name,
          version_id: behaviour.versionId ?? "v-1",
          targets: ["https://hatago-pr-9.acme.workers.dev"],
        },
      ];
      await writeFile(output, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    }
    return behaviour.exitCode ?? 0;
  };
  return { run, calls };
}

describe("worker-deploy: wrangler deploy with the generated config", () => {
  it("hands wrangler a config file with repository paths made absolute, and reads back the version", async () => {
    const wrangler = fakeWrangler({ versionId: "version-42" });
    const result = await deployWorker({ config, repoRoot: REPO, wrangler: wrangler.run });
    expect(result).toEqual({
      worker: "hatago-pr-9",
      versionId: "version-42",
      targets: ["https://hatago-pr-9.acme.workers.dev"],
    });
    const [call] = wrangler.calls;
    expect(call?.configFile).toMatchObject({
      main: path.resolve(REPO, "worker/index.ts"),
      d1_databases: [{ migrations_dir: path.resolve(REPO, "migrations") }],
      containers: config.containers,
    });
    expect(call?.env.CLOUDFLARE_ACCOUNT_ID).toBe(ACCOUNT);
  });

  it("passes the secrets as secret bindings read from the inherited stdin, never through a file", async () => {
    const wrangler = fakeWrangler();
    await deployWorker({ config, repoRoot: REPO, wrangler: wrangler.run });
    const [call] = wrangler.calls;
    expect(call?.args).toEqual(["deploy", "--config", call?.configPath, "--secrets-file", "/dev/stdin"]);
    expect(call?.stdin).toBe("inherit");
  });

  it("removes the generated config once wrangler is done, also when it fails", async () => {
    const ok = fakeWrangler();
    await deployWorker({ config, repoRoot: REPO, wrangler: ok.run });
    expect(existsSync(path.dirname(ok.calls[0]?.configPath ?? ""))).toBe(false);

    const failing = fakeWrangler({ exitCode: 1 });
    await expect(deployWorker({ config, repoRoot: REPO, wrangler: failing.run })).rejects.toThrow(
      /wrangler deploy of hatago-pr-9 failed \(exit 1\)/,
    );
    expect(existsSync(path.dirname(failing.calls[0]?.configPath ?? ""))).toBe(false);
  });

  it("fails when wrangler reports no deployment (nothing to record for the delete guard)", async () => {
    const silent: WranglerRunner = async () => 0;
    await expect(deployWorker({ config, repoRoot: REPO, wrangler: silent })).rejects.toThrow(/reported no deployment/);
  });

  it("prints one result line that the delete step can find among wrangler's output", () => {
    const stdout = `Uploaded hatago-pr-9\n${formatResult({ worker: "hatago-pr-9", versionId: "v-7", targets: [] })}\n`;
    expect(parseResult(stdout)).toEqual({ worker: "hatago-pr-9", versionId: "v-7", targets: [] });
    expect(parseResult("no result here")).toBeNull();
    expect(parseResult("HATAGO_DEPLOY_RESULT {not json")).toBeNull();
  });
});

describe("d1-migrate: wrangler d1 migrations apply --remote", () => {
  it("applies the migrations of the stack's database with a generated config", async () => {
    const wrangler = fakeWrangler();
    await applyD1Migrations({ config, repoRoot: REPO, wrangler: wrangler.run });
    const [call] = wrangler.calls;
    expect(call?.args.slice(0, 5)).toEqual(["d1", "migrations", "apply", "hatago-pr-9", "--remote"]);
    expect(call?.configFile).toMatchObject({ d1_databases: [{ migrations_dir: path.resolve(REPO, "migrations") }] });
    expect(call?.stdin).toBe("ignore");
  });

  it("fails the deployment when wrangler fails", async () => {
    const wrangler = fakeWrangler({ exitCode: 2 });
    await expect(applyD1Migrations({ config, repoRoot: REPO, wrangler: wrangler.run })).rejects.toThrow(
      /wrangler d1 migrations apply hatago-pr-9 failed \(exit 2\)/,
    );
  });
});

describe("worker-delete against the Cloudflare API (FakeCloudflareApi)", () => {
  let fake: FakeCloudflareApi;
  const previous = (versionId: string) => formatResult({ worker: config.name, versionId, targets: [] });
  beforeEach(() => {
    fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"] });
    fake.containerApps.set("app-1", { id: "app-1", name: "hatago-pr-9-bridge" });
    fake.containerApps.set("app-2", { id: "app-2", name: "hatago-pr-10-bridge" });
  });
  const api = () => cloudflareApi({ token: TOKEN, fetch: fake.fetch });

  it("deletes the container application, then the Worker (with its Durable Objects)", async () => {
    const log: string[] = [];
    const outcome = await deleteWorkerDeployment({
      config,
      api: api(),
      previousStdout: previous("v-1"),
      log: (line) => log.push(line),
    });
    expect(outcome).toBe("deleted");
    expect(log).toEqual(["deleted container application hatago-pr-9-bridge and Worker hatago-pr-9"]);
    expect([...fake.containerApps.keys()]).toEqual(["app-2"]);
    expect(fake.workers.has("hatago-pr-9")).toBe(false);
    const deletes = fake.requests.filter((r) => r.method === "DELETE");
    expect(deletes.map((r) => r.path)).toEqual([
      `/accounts/${ACCOUNT}/containers/applications/app-1`,
      `/accounts/${ACCOUNT}/workers/scripts/hatago-pr-9`,
    ]);
    expect(deletes[1]?.query.get("force")).toBe("true");
  });

  it("is idempotent: a stack already gone deletes nothing and succeeds", async () => {
    fake.workers.clear();
    fake.containerApps.clear();
    expect(await deleteWorkerDeployment({ config, api: api(), previousStdout: previous("v-1") })).toBe("already-gone");
  });

  it("never deletes another stack's container application (the name filter is exact)", async () => {
    await deleteWorkerDeployment({ config, api: api(), previousStdout: previous("v-1") });
    expect(fake.containerApps.get("app-2")).toEqual({ id: "app-2", name: "hatago-pr-10-bridge" });
  });
});

describe("worker-delete guard: a replaced deployment must not delete its successor", () => {
  let fake: FakeCloudflareApi;
  beforeEach(() => {
    fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-2-new"] });
    fake.containerApps.set("app-1", { id: "app-1", name: "hatago-pr-9-bridge" });
  });
  const api = () => cloudflareApi({ token: TOKEN, fetch: fake.fetch });

  it("leaves the Worker and its container alone when it serves a version this deployment did not create", async () => {
    const log: string[] = [];
    const outcome = await deleteWorkerDeployment({
      config,
      api: api(),
      previousStdout: formatResult({ worker: config.name, versionId: "v-1-old", targets: [] }),
      log: (line) => log.push(line),
    });
    expect(outcome).toBe("skipped-newer-deployment");
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
    expect(fake.containerApps.size).toBe(1);
    expect(log.join("\n")).toMatch(/newer deployment owns it/);
  });

  it("refuses to guess when no previous deployment was recorded, and says how to force it", async () => {
    await expect(deleteWorkerDeployment({ config, api: api(), previousStdout: "" })).rejects.toThrow(
      /HATAGO_FORCE_DELETE=1/,
    );
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });

  it("deletes anyway when forced", async () => {
    expect(await deleteWorkerDeployment({ config, api: api(), previousStdout: "", force: true })).toBe("deleted");
  });
});

describe("worker-delete: API errors surface clearly", () => {
  it("a token without the needed permission fails with the API's message, not a silent success", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"] });
    const api = cloudflareApi({ token: "wrong-token", fetch: fake.fetch });
    await expect(
      deleteWorkerDeployment({
        config,
        api,
        previousStdout: formatResult({ worker: config.name, versionId: "v-1", targets: [] }),
      }),
    ).rejects.toThrow(
      /GET \/accounts\/.*\/workers\/scripts\/hatago-pr-9\/deployments failed \(HTTP 403\): \[10000\] Authentication error/,
    );
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });

  it("a failure while deleting the container application stops before the Worker is deleted", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"] });
    fake.containerApps.set("app-1", { id: "app-1", name: "hatago-pr-9-bridge" });
    const failOnDelete: typeof fake.fetch = async (input, init) => {
      if (init?.method === "DELETE") fake.failNext = { status: 500, error: { code: 1000, message: "internal error" } };
      return fake.fetch(input, init);
    };
    await expect(
      deleteWorkerDeployment({
        config,
        api: cloudflareApi({ token: TOKEN, fetch: failOnDelete }),
        previousStdout: formatResult({ worker: config.name, versionId: "v-1", targets: [] }),
      }),
    ).rejects.toThrow(/DELETE .*containers\/applications\/app-1 failed \(HTTP 500\): \[1000\] internal error/);
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });
});

describe("deploy CLI input", () => {
  it("names the variable when the generated config is missing or malformed", () => {
    expect(() => parseGeneratedConfig(undefined, "HATAGO_WRANGLER_CONFIG")).toThrow(
      /HATAGO_WRANGLER_CONFIG is not set/,
    );
    expect(() => parseGeneratedConfig("{", "HATAGO_WRANGLER_CONFIG")).toThrow(/HATAGO_WRANGLER_CONFIG is not JSON/);
    expect(() => parseGeneratedConfig("{}", "HATAGO_WRANGLER_CONFIG")).toThrow(/not a wrangler config/);
  });
});
