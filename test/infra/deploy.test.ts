import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { cloudflareApi } from "../../infra/cloudflare-api.ts";
import {
  applyD1Migrations,
  type DockerRunner,
  deleteWorkerDeployment,
  deployWorker,
  formatResult,
  type GeneratedConfig,
  newInstanceTag,
  parseGeneratedConfig,
  parseResult,
  registryLogin,
  type WranglerRunner,
} from "../../infra/deploy/index.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "fake-token";
const REPO = "/repo";
/** Instance tags: OLDER was created before INSTANCE, NEWER after (newInstanceTag orders them by time). */
const OLDER = newInstanceTag(Date.UTC(2026, 0, 1));
const INSTANCE = newInstanceTag(Date.UTC(2026, 5, 1));
const NEWER = newInstanceTag(Date.UTC(2026, 10, 1));

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
    const result = await deployWorker({ config, repoRoot: REPO, wrangler: wrangler.run, instance: INSTANCE });
    expect(result).toEqual({
      worker: "hatago-pr-9",
      versionId: "version-42",
      targets: ["https://hatago-pr-9.acme.workers.dev"],
      instance: INSTANCE,
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
    await deployWorker({ config, repoRoot: REPO, wrangler: wrangler.run, instance: INSTANCE });
    const [call] = wrangler.calls;
    expect(call?.args.slice(0, 5)).toEqual(["deploy", "--config", call?.configPath, "--secrets-file", "/dev/stdin"]);
    expect(call?.stdin).toBe("inherit");
  });

  it("tags the version with this deployment's instance, so the delete step can recognise it", async () => {
    const wrangler = fakeWrangler();
    await deployWorker({ config, repoRoot: REPO, wrangler: wrangler.run, instance: INSTANCE });
    const args = wrangler.calls[0]?.args ?? [];
    expect(args[args.indexOf("--tag") + 1]).toBe(INSTANCE);
    expect(args[args.indexOf("--message") + 1]).toContain(INSTANCE);
    expect(INSTANCE).toMatch(/^h-[0-9a-z]+-[0-9a-f]{8}$/);
    expect(INSTANCE.length).toBeLessThanOrEqual(25);
  });

  it("removes the generated config once wrangler is done, also when it fails", async () => {
    const ok = fakeWrangler();
    await deployWorker({ config, repoRoot: REPO, wrangler: ok.run, instance: INSTANCE });
    expect(existsSync(path.dirname(ok.calls[0]?.configPath ?? ""))).toBe(false);

    const failing = fakeWrangler({ exitCode: 1 });
    await expect(deployWorker({ config, repoRoot: REPO, wrangler: failing.run, instance: INSTANCE })).rejects.toThrow(
      /wrangler deploy of hatago-pr-9 failed \(exit 1\)/,
    );
    expect(existsSync(path.dirname(failing.calls[0]?.configPath ?? ""))).toBe(false);
  });

  it("fails when wrangler reports no deployment (nothing to record for the delete guard)", async () => {
    const silent: WranglerRunner = async () => 0;
    await expect(deployWorker({ config, repoRoot: REPO, wrangler: silent, instance: INSTANCE })).rejects.toThrow(
      /reported no deployment/,
    );
  });

  it("prints one result line that the delete step can find among wrangler's output", () => {
    const result = { worker: "hatago-pr-9", versionId: "v-7", targets: [], instance: INSTANCE };
    const stdout = `Uploaded hatago-pr-9\n${formatResult(result)}\n`;
    expect(parseResult(stdout)).toEqual(result);
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
  const previous = (versionId: string) =>
    formatResult({ worker: config.name, versionId, targets: [], instance: INSTANCE });
  beforeEach(() => {
    fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"], tags: { "v-1": INSTANCE } });
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
    expect(fake.requests.some((r) => r.path.endsWith("/versions/v-1"))).toBe(true);
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

describe("worker-delete guard: our deployments are recognised by their instance tag (issue 15, defect 7)", () => {
  let fake: FakeCloudflareApi;
  const serve = (version: string, tag?: string) =>
    fake.workers.set("hatago-pr-9", { versions: [version], ...(tag ? { tags: { [version]: tag } } : {}) });
  const previous = formatResult({ worker: config.name, versionId: "v-1", targets: [], instance: INSTANCE });
  beforeEach(() => {
    fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.containerApps.set("app-1", { id: "app-1", name: "hatago-pr-9-bridge" });
  });
  const api = () => cloudflareApi({ token: TOKEN, fetch: fake.fetch });
  const destroy = (log?: (line: string) => void) =>
    deleteWorkerDeployment({ config, api: api(), previousStdout: previous, ...(log ? { log } : {}) });

  it("deletes a version this deployment tagged even when it is not the one recorded (a later update's, a failed update's)", async () => {
    serve("v-5-after-failed-update", INSTANCE);
    expect(await destroy()).toBe("deleted");
    expect(fake.workers.has("hatago-pr-9")).toBe(false);
    expect(fake.containerApps.size).toBe(0);
  });

  it("leaves the Worker to a newer instance: the replacement Pulumi created before deleting this one", async () => {
    serve("v-2-new", NEWER);
    const log: string[] = [];
    expect(await destroy((line) => log.push(line))).toBe("skipped-newer-deployment");
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
    expect(fake.containerApps.size).toBe(1);
    expect(log.join("\n")).toMatch(/newer instance .* left in place/);
  });

  it("fails the destroy, not skips it, after a rollback to an older instance's version", async () => {
    serve("v-0-rolled-back", OLDER);
    await expect(destroy()).rejects.toThrow(/not a version of this deployment.*HATAGO_FORCE_DELETE=1/s);
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
    expect(fake.containerApps.size).toBe(1);
  });

  it("fails the destroy, not skips it, when the live version carries no tag of ours (a dashboard edit)", async () => {
    serve("v-9-dashboard");
    await expect(destroy()).rejects.toThrow(/serves v-9-dashboard \(tag none\)/);
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });

  it("refuses to guess when no previous deployment was recorded, and says how to force it", async () => {
    serve("v-1", INSTANCE);
    await expect(deleteWorkerDeployment({ config, api: api(), previousStdout: "" })).rejects.toThrow(
      /HATAGO_FORCE_DELETE=1/,
    );
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });

  it("deletes anyway when forced", async () => {
    serve("v-9-dashboard");
    expect(await deleteWorkerDeployment({ config, api: api(), previousStdout: "", force: true })).toBe("deleted");
  });

  it("a stack deployed before instance tags still deletes its own recorded version", async () => {
    serve("v-1");
    const old = formatResult({ worker: config.name, versionId: "v-1", targets: [] });
    expect(await deleteWorkerDeployment({ config, api: api(), previousStdout: old })).toBe("deleted");
  });
});

describe("worker-delete: API errors surface clearly", () => {
  it("a token without the needed permission fails with the API's message, not a silent success", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"], tags: { "v-1": INSTANCE } });
    const api = cloudflareApi({ token: "wrong-token", fetch: fake.fetch });
    await expect(
      deleteWorkerDeployment({
        config,
        api,
        previousStdout: formatResult({ worker: config.name, versionId: "v-1", targets: [], instance: INSTANCE }),
      }),
    ).rejects.toThrow(
      /GET \/accounts\/.*\/workers\/scripts\/hatago-pr-9\/deployments failed \(HTTP 403\): \[10000\] Authentication error/,
    );
    expect(fake.workers.has("hatago-pr-9")).toBe(true);
  });

  it("a failure while deleting the container application stops before the Worker is deleted", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    fake.workers.set("hatago-pr-9", { versions: ["v-1"], tags: { "v-1": INSTANCE } });
    fake.containerApps.set("app-1", { id: "app-1", name: "hatago-pr-9-bridge" });
    const failOnDelete: typeof fake.fetch = async (input, init) => {
      if (init?.method === "DELETE") fake.failNext = { status: 500, error: { code: 1000, message: "internal error" } };
      return fake.fetch(input, init);
    };
    await expect(
      deleteWorkerDeployment({
        config,
        api: cloudflareApi({ token: TOKEN, fetch: failOnDelete }),
        previousStdout: formatResult({ worker: config.name, versionId: "v-1", targets: [], instance: INSTANCE }),
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

describe("registry-login: push credentials minted right before the push (issue 15, defect 9)", () => {
  /** FakeDocker: records each run and what it was given on stdin; no Docker engine runs here. */
  function fakeDocker(exitCode = 0) {
    const calls: { args: readonly string[]; stdin: string }[] = [];
    const run: DockerRunner = async (args, stdin) => {
      calls.push({ args, stdin });
      return exitCode;
    };
    return { run, calls };
  }

  it("mints push credentials and hands the password to docker login on stdin, never in its arguments", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    const docker = fakeDocker();
    await registryLogin({
      accountId: ACCOUNT,
      api: cloudflareApi({ token: TOKEN, fetch: fake.fetch }),
      docker: docker.run,
    });
    expect(fake.requests).toMatchObject([
      {
        method: "POST",
        path: `/accounts/${ACCOUNT}/containers/registries/registry.cloudflare.com/credentials`,
        body: { expiration_minutes: 30, permissions: ["push", "pull"] },
      },
    ]);
    expect(docker.calls).toEqual([
      {
        args: ["login", "registry.cloudflare.com", "--username", "v1", "--password-stdin"],
        stdin: "fake-registry-password",
      },
    ]);
  });

  it("fails the deployment when docker login fails", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    const api = cloudflareApi({ token: TOKEN, fetch: fake.fetch });
    await expect(registryLogin({ accountId: ACCOUNT, api, docker: fakeDocker(1).run })).rejects.toThrow(
      /docker login registry.cloudflare.com failed \(exit 1\)/,
    );
  });
});
