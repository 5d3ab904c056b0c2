import { beforeAll, describe, expect, it } from "vitest";
import { workerBundleSha256 } from "../../infra/bundle-inputs.ts";
import { DEPLOY_CLI } from "../../infra/components/index.ts";
import { hashPaths, isMigrationFile, REPO_ROOT } from "../../infra/source-hash.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import {
  ACCOUNT_ID,
  FAKE_BRIDGE_SECRET,
  isSerializedSecret,
  type ProgramRun,
  plainStrings,
  runProgram,
  stackConfig,
  TYPES,
} from "./harness.ts";

// The dev stack as `pulumi preview` runs it: Pulumi.dev.yaml's settings, mock login.
let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram({
    stack: "dev",
    config: stackConfig({ accountId: ACCOUNT_ID, workersDevSubdomain: "acme" }),
    preview: true,
  });
});

describe("dev stack: the resources and their key inputs", () => {
  it("declares one component per Cloudflare concept, each resource parented to its component", () => {
    const components = run.resources.filter((r) => r.type.startsWith("hatago:")).map((r) => r.type);
    expect(components.sort()).toEqual([
      "hatago:access:AccessApplications",
      "hatago:containers:BridgeImage",
      "hatago:d1:PolicyDatabase",
      "hatago:kv:OAuthStateStore",
      "hatago:r2:BridgeStateBucket",
      "hatago:workers:GatewayWorker",
    ]);
    const componentUrns = new Set(run.resources.filter((r) => r.type.startsWith("hatago:")).map((r) => r.urn));
    const custom = run.resources.filter((r) => !r.type.startsWith("hatago:"));
    expect(custom.length).toBeGreaterThan(5);
    for (const resource of custom) expect(componentUrns.has(resource.parent), resource.name).toBe(true);
  });

  it("names every Cloudflare object after the stack", () => {
    expect(run.one(TYPES.d1).inputs).toMatchObject({ accountId: ACCOUNT_ID, name: "hatago-dev" });
    expect(run.one(TYPES.kv).inputs).toMatchObject({ accountId: ACCOUNT_ID, title: "hatago-dev-oauth" });
    const config = JSON.parse(String(deployCommand().environment.HATAGO_WRANGLER_CONFIG));
    expect(config.name).toBe("hatago-dev");
    expect(config.containers[0].name).toBe("hatago-dev-bridge");
  });

  it("does not protect dev data (a dev stack can be destroyed), and replaces it by deleting first", () => {
    expect(run.one(TYPES.d1).protect).toBe(false);
    expect(run.one(TYPES.kv).protect).toBe(false);
    expect(run.one(TYPES.d1).deleteBeforeReplace).toBe(true);
    expect(run.one(TYPES.kv).deleteBeforeReplace).toBe(true);
  });

  it("has no Access SaaS app with the mock login, and no admin app without an admin allow-list", () => {
    expect(run.ofType(TYPES.accessApp)).toEqual([]);
    expect(run.ofType(TYPES.accessPolicy)).toEqual([]);
  });

  it("builds the bridge for linux/amd64 from container/Dockerfile with the repository as context, pushed to Cloudflare's registry", () => {
    const build = {
      context: { location: "." },
      dockerfile: { location: "container/Dockerfile" },
      platforms: ["linux/amd64"],
      buildOnPreview: false,
    };
    expect(run.one(TYPES.image, "bridge-build").inputs).toMatchObject({ ...build, push: false });
    expect(run.one(TYPES.image, "bridge-image").inputs).toMatchObject({
      ...build,
      push: true,
      tags: [`registry.cloudflare.com/${ACCOUNT_ID}/hatago-bridge:dev`],
    });
  });

  describe("registry credentials are minted when needed, and previews stay quiet (issue 15, defect 9)", () => {
    it("no image holds credentials: nothing to compare on preview, nothing in state", () => {
      for (const image of run.ofType(TYPES.image)) expect(image.inputs.registries, image.name).toBeUndefined();
    });

    it("the login that mints them runs after the build and before the push, when the build context changes", () => {
      const login = run.one(TYPES.command, "bridge-registry-login");
      expect(login.inputs).toMatchObject({ create: DEPLOY_CLI.registryLogin, update: DEPLOY_CLI.registryLogin });
      expect(login.dependencies).toContain(run.one(TYPES.image, "bridge-build").urn);
      expect((login.inputs.environment as Record<string, unknown>).HATAGO_ACCOUNT_ID).toBe(ACCOUNT_ID);
      expect(run.one(TYPES.image, "bridge-image").dependencies).toContain(login.urn);
    });
  });

  it("exports the MCP, metadata and admin URLs", () => {
    expect(run.outputs).toMatchObject({
      mcpUrl: "https://hatago-dev.acme.workers.dev/mcp",
      authorizationServerMetadataUrl: "https://hatago-dev.acme.workers.dev/.well-known/oauth-authorization-server",
      protectedResourceMetadataUrl: "https://hatago-dev.acme.workers.dev/.well-known/oauth-protected-resource",
      adminUrl: "https://hatago-dev.acme.workers.dev/admin",
      workerName: "hatago-dev",
      policyEnvironment: "dev",
    });
  });
});

describe("dev stack: D1 schema and policy", () => {
  it("applies migrations with wrangler, triggered by the hash of migrations/*.sql and the database id", () => {
    const migrations = run.one(TYPES.command, "policy-db-migrations");
    expect(migrations.inputs.create).toBe(DEPLOY_CLI.d1Migrate);
    expect(migrations.inputs.triggers).toEqual([
      hashPaths(REPO_ROOT, ["migrations"], isMigrationFile),
      "d1-policy-db-d1-uuid",
    ]);
    const config = JSON.parse(
      String((migrations.inputs.environment as Record<string, unknown>).HATAGO_WRANGLER_CONFIG),
    );
    expect(config.d1_databases).toEqual([
      { binding: "DB", database_name: "hatago-dev", database_id: "d1-policy-db-d1-uuid", migrations_dir: "migrations" },
    ]);
  });

  it("seeds this environment's compiled policy, with its hash and a readable summary for the preview", async () => {
    const compiled = await compilePolicy(POLICIES.dev);
    const seed = run.one(TYPES.seed);
    expect(seed.inputs).toMatchObject({
      accountId: ACCOUNT_ID,
      databaseId: "d1-policy-db-d1-uuid",
      environment: "dev",
      policyHash: compiled.hash,
      statements: [...compiled.statements],
    });
    expect(seed.inputs.bindings).toContain("mock:alice → admin");
    expect(run.outputs.policyHash).toBe(compiled.hash);
  });

  it("orders the work: migrations after the database, the seed after the migrations", () => {
    const migrations = run.one(TYPES.command, "policy-db-migrations");
    expect(migrations.dependencies).toContain(run.one(TYPES.d1).urn);
    expect(run.one(TYPES.seed).dependencies).toContain(migrations.urn);
  });
});

function deployCommand() {
  const deploy = run.one(TYPES.command, "gateway-deploy");
  return { ...deploy, environment: deploy.inputs.environment as Record<string, unknown> };
}

describe("dev stack: the Worker deploy command", () => {
  it("deploys and deletes through the deploy CLI", () => {
    expect(deployCommand().inputs).toMatchObject({
      create: DEPLOY_CLI.workerDeploy,
      update: DEPLOY_CLI.workerDeploy,
      delete: DEPLOY_CLI.workerDelete,
      addPreviousOutputInEnv: true,
    });
  });

  it("has no triggers: in @pulumi/command a trigger change replaces, and a replacement's delete would remove the new Worker", () => {
    expect(deployCommand().inputs.triggers).toBeUndefined();
    // The SDK marks triggers replace-on-change; with none set, every change is an in-place update.
    expect(deployCommand().replaceOnChanges).toEqual(["triggers[*]"]);
  });

  it("redeploys when the bundle's sources change: the hash of the Worker's import graph is an input", () => {
    expect(deployCommand().environment.HATAGO_BUNDLE_SOURCES_SHA256).toBe(workerBundleSha256(REPO_ROOT));
  });

  it("is deployed after the database, its policy, KV, Access and the image", () => {
    const dependencies = deployCommand().dependencies;
    for (const type of [TYPES.d1, TYPES.kv, TYPES.seed]) {
      expect(dependencies, type).toContain(run.one(type).urn);
    }
    expect(dependencies).toContain(run.one(TYPES.image, "bridge-image").urn);
    expect(dependencies).toContain(run.one(TYPES.command, "policy-db-migrations").urn);
  });

  it("sends the Worker's secrets on stdin, as a Pulumi secret", () => {
    const stdin = deployCommand().serialized.stdin;
    expect(isSerializedSecret(stdin)).toBe(true);
    expect(JSON.parse(String((stdin as { value: unknown }).value))).toEqual({
      HATAGO_BRIDGE_SECRET: FAKE_BRIDGE_SECRET,
    });
  });

  it("never puts a secret in a plain input of any resource", () => {
    for (const resource of run.resources) {
      for (const text of plainStrings(resource.serialized))
        expect(text, resource.name).not.toContain(FAKE_BRIDGE_SECRET);
    }
  });

  it("sets the Worker's variables for a dev, mock-login stack", () => {
    const config = JSON.parse(String(deployCommand().environment.HATAGO_WRANGLER_CONFIG));
    expect(config.vars).toEqual({
      HATAGO_ENVIRONMENT: "dev",
      HATAGO_PUBLIC_URL: "https://hatago-dev.acme.workers.dev",
      HATAGO_LOGIN_PROVIDER: "mock",
    });
    expect(config.workers_dev).toBe(true);
    expect(config.routes).toBeUndefined();
  });
});
