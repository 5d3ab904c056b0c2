import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEPLOY_CLI } from "../../infra/components/index.ts";
import { containersNeeded } from "../../infra/config.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";
import { ACCOUNT_ID, type ProgramRun, runProgram, stackConfig, TYPES } from "./harness.ts";

// A pull request's preview stack as CI brings it up: no Pulumi.pr-123.yaml, only the two account-level
// values the workflow passes (config-map), and `pulumi up` (not a preview).
const TOKEN = "fake-preview-token";
const api = new FakeCloudflareApi({ accountId: ACCOUNT_ID, token: TOKEN });
let run: ProgramRun;

beforeAll(async () => {
  vi.stubEnv("CLOUDFLARE_API_TOKEN", TOKEN);
  vi.stubGlobal("fetch", api.fetch);
  run = await runProgram({
    stack: "pr-123",
    config: stackConfig({ accountId: ACCOUNT_ID, workersDevSubdomain: "acme" }),
  });
});
afterAll(() => {
  vi.unstubAllGlobals();
  vi.unstubAllEnvs();
});

function wranglerConfig() {
  const deploy = run.one(TYPES.command, "gateway-deploy");
  return JSON.parse(String((deploy.inputs.environment as Record<string, unknown>).HATAGO_WRANGLER_CONFIG));
}

describe("pr-<number> stack: works with no stack file", () => {
  it("runs the staging policy", async () => {
    expect(run.one(TYPES.seed).inputs.policyHash).toBe((await compilePolicy(POLICIES.staging)).hash);
    expect(wranglerConfig().vars.HATAGO_ENVIRONMENT).toBe("staging");
  });

  it("serves on its own workers.dev host, named after the pull request", () => {
    expect(run.outputs.mcpUrl).toBe("https://hatago-pr-123.acme.workers.dev/mcp");
    expect(wranglerConfig()).toMatchObject({ name: "hatago-pr-123", workers_dev: true });
  });

  it("uses the smallest container size, sized for two people at once", () => {
    expect(wranglerConfig().containers[0]).toMatchObject({ instance_type: "lite", max_instances: containersNeeded(2) });
  });

  it("signs in with the mock, which the staging policy gives nothing (no mock binding, no default role)", () => {
    expect(wranglerConfig().vars.HATAGO_LOGIN_PROVIDER).toBe("mock");
    expect(POLICIES.staging.defaultRole).toBeNull();
    expect(
      POLICIES.staging.bindings.some((b) => b.subject.startsWith("mock:") || b.subject.startsWith("group:mock:")),
    ).toBe(false);
    expect(run.ofType(TYPES.accessApp)).toEqual([]);
  });

  it("gets its own database, namespace and image tag", () => {
    expect(run.one(TYPES.d1).inputs.name).toBe("hatago-pr-123");
    expect(run.one(TYPES.kv).inputs.title).toBe("hatago-pr-123-oauth");
    expect(run.one(TYPES.image, "bridge-image").inputs.tags).toEqual([
      `registry.cloudflare.com/${ACCOUNT_ID}/hatago-bridge:pr-123`,
    ]);
  });
});

describe("pr-<number> stack: destroyed cleanly when the pull request closes", () => {
  it("replaces D1 and KV by deleting first: their names are unique in the account (issue 15, defect 8)", () => {
    expect(run.one(TYPES.d1).deleteBeforeReplace).toBe(true);
    expect(run.one(TYPES.kv).deleteBeforeReplace).toBe(true);
  });

  it("protects nothing, so `pulumi destroy` can delete everything", () => {
    expect(run.resources.filter((r) => r.protect)).toEqual([]);
  });

  it("deletes the Worker and its container application (wrangler's own delete leaves the application)", () => {
    expect(run.one(TYPES.command, "gateway-deploy").inputs.delete).toBe(DEPLOY_CLI.workerDelete);
  });

  it("has no delete step on the migrations or the seed that could fail a destroy: the database goes with them", () => {
    expect(run.one(TYPES.command, "policy-db-migrations").inputs.delete).toBeUndefined();
  });
});
