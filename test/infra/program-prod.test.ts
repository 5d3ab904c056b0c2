import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { containersNeeded } from "../../infra/config.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";
import {
  ACCOUNT_ID,
  FAKE_ACCESS_CLIENT_ID,
  FAKE_ACCESS_CLIENT_SECRET,
  FAKE_BRIDGE_SECRET,
  FAKE_IMAGE_DIGEST,
  isSerializedSecret,
  type ProgramRun,
  plainStrings,
  runProgram,
  stackConfig,
  TYPES,
} from "./harness.ts";

// The prod stack as `pulumi up` runs it (not a preview): Access login, an admin allow-list, a custom
// domain. Nothing here may reach the API at program time: FakeCloudflareApi records any call.
const TOKEN = "fake-deploy-token";
const api = new FakeCloudflareApi({ accountId: ACCOUNT_ID, token: TOKEN });
let run: ProgramRun;

beforeAll(async () => {
  vi.stubEnv("CLOUDFLARE_API_TOKEN", TOKEN);
  vi.stubGlobal("fetch", api.fetch);
  run = await runProgram({
    stack: "prod",
    config: stackConfig({
      accountId: ACCOUNT_ID,
      loginProvider: "access",
      accessTeam: "acme",
      accessLoginEmailDomains: JSON.stringify(["example.com"]),
      adminEmails: JSON.stringify(["ops@example.com"]),
      domain: "mcp.example.com",
      allowedOrigins: JSON.stringify(["https://console.example.com"]),
    }),
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

describe("prod stack: production data is protected", () => {
  it("protects the D1 database (policy, audit log) and the KV namespace (tokens, clients)", () => {
    expect(run.one(TYPES.d1).protect).toBe(true);
    expect(run.one(TYPES.kv).protect).toBe(true);
  });

  it("never deletes protected data first to replace it (a replacement of protected data is refused anyway)", () => {
    expect(run.one(TYPES.d1).deleteBeforeReplace).toBe(false);
    expect(run.one(TYPES.kv).deleteBeforeReplace).toBe(false);
  });

  it("protects nothing else, so a bad deploy can still be rolled forward", () => {
    const protectedNames = run.resources.filter((r) => r.protect).map((r) => r.type);
    // The servers' data directories (R2) are user data like D1 and KV.
    expect(protectedNames.sort()).toEqual([TYPES.d1, TYPES.kv, TYPES.r2].sort());
  });

  it("names carry the stack", () => {
    expect(run.one(TYPES.d1).inputs.name).toBe("hatago-prod");
    expect(run.one(TYPES.kv).inputs.title).toBe("hatago-prod-oauth");
    expect(wranglerConfig().name).toBe("hatago-prod");
  });
});

describe("prod stack: Access", () => {
  it("creates the SaaS OIDC app for login, redirecting only to this stack's Access callback", () => {
    const app = run.one(TYPES.accessApp, "access-login-oidc");
    expect(app.inputs).toMatchObject({
      accountId: ACCOUNT_ID,
      type: "saas",
      name: "Hatago (prod) sign-in",
      saasApp: {
        authType: "oidc",
        redirectUris: ["https://mcp.example.com/login/access/callback"],
        grantTypes: ["authorization_code_with_pkce"],
      },
    });
    const policy = run.one(TYPES.accessPolicy, "access-login-policy");
    expect(policy.inputs).toMatchObject({ decision: "allow", includes: [{ emailDomain: { domain: "example.com" } }] });
    expect(app.dependencies).toContain(policy.urn);
  });

  it("captures the SaaS app's client secret once, in a resource of its own that an update of the app cannot overwrite", () => {
    const captured = run.one(TYPES.capturedSecret);
    expect(captured.inputs.owner).toBe("app-access-login-oidc");
    expect(isSerializedSecret(captured.serialized.value)).toBe(true);
    expect(captured.dependencies).toContain(run.one(TYPES.accessApp, "access-login-oidc").urn);
  });

  it("puts a self-hosted app with an allow policy in front of /admin only", () => {
    const admin = run.one(TYPES.accessApp, "access-admin");
    expect(admin.inputs).toMatchObject({
      type: "self_hosted",
      destinations: [{ type: "public", uri: "mcp.example.com/admin" }],
    });
    expect(run.one(TYPES.accessPolicy, "access-admin-policy").inputs).toMatchObject({
      decision: "allow",
      includes: [{ email: { email: "ops@example.com" } }],
    });
  });

  it("feeds the SaaS app's client id (plain) and secret (secret) and the team domain to the Worker", () => {
    expect(wranglerConfig().vars).toEqual({
      HATAGO_ENVIRONMENT: "prod",
      HATAGO_PUBLIC_URL: "https://mcp.example.com",
      HATAGO_LOGIN_PROVIDER: "access",
      HATAGO_ALLOWED_ORIGINS: "https://console.example.com",
      HATAGO_ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com",
      HATAGO_ACCESS_CLIENT_ID: FAKE_ACCESS_CLIENT_ID,
      HATAGO_ADMIN_ACCESS_AUD: "aud-access-admin",
    });
    const stdin = run.one(TYPES.command, "gateway-deploy").serialized.stdin as { value: string };
    expect(isSerializedSecret(stdin)).toBe(true);
    expect(JSON.parse(stdin.value)).toEqual({
      HATAGO_BRIDGE_SECRET: FAKE_BRIDGE_SECRET,
      HATAGO_ACCESS_CLIENT_SECRET: FAKE_ACCESS_CLIENT_SECRET,
    });
  });
});

describe("prod stack: secrets stay secret", () => {
  it("no secret value appears in any plain (unencrypted) input", () => {
    const secrets = [FAKE_ACCESS_CLIENT_SECRET, FAKE_BRIDGE_SECRET, "fake-registry-password", TOKEN];
    for (const resource of run.resources) {
      for (const text of plainStrings(resource.serialized)) {
        for (const secret of secrets) expect(text, `${resource.name} holds a secret in plain`).not.toContain(secret);
      }
    }
  });

  it("no stack output holds a secret", () => {
    const text = JSON.stringify(run.outputs);
    for (const secret of [FAKE_ACCESS_CLIENT_SECRET, FAKE_BRIDGE_SECRET, "fake-registry-password"]) {
      expect(text).not.toContain(secret);
    }
  });

  it("the API token is never a resource input: commands and the seed read it from the environment", () => {
    for (const resource of run.resources) expect(JSON.stringify(resource.inputs)).not.toContain(TOKEN);
  });
});

describe("prod stack: the bridge image", () => {
  it("mints no registry credentials when the program starts: the login step mints them after the build (issue 15, defect 9)", () => {
    expect(api.requests).toEqual([]);
    for (const image of run.ofType(TYPES.image)) expect(image.inputs.registries).toBeUndefined();
  });

  it("deploys the container from the pushed image in the digest-only form wrangler sends (repo@sha256:…, no tag)", () => {
    expect(wranglerConfig().containers[0].image).toMatch(
      /^registry\.cloudflare\.com\/[0-9a-f]{32}\/hatago-bridge@sha256:[0-9a-f]{64}$/,
    );
    expect(run.outputs.bridgeImage).toBe(wranglerConfig().containers[0].image);
  });

  it("deploys the container from the pushed image, pinned by digest, at production size", () => {
    expect(wranglerConfig().containers).toEqual([
      {
        name: "hatago-prod-bridge",
        class_name: "BridgeContainer",
        image: `registry.cloudflare.com/${ACCOUNT_ID}/hatago-bridge@${FAKE_IMAGE_DIGEST}`,
        instance_type: "standard-1",
        max_instances: containersNeeded(20),
        observability: { logs: { enabled: true } },
      },
    ]);
  });
});

describe("prod stack: custom domain and policy", () => {
  it("serves on the custom domain only (no workers.dev, no preview URLs)", () => {
    expect(wranglerConfig()).toMatchObject({
      workers_dev: false,
      preview_urls: false,
      routes: [{ pattern: "mcp.example.com", custom_domain: true }],
    });
    expect(run.outputs.mcpUrl).toBe("https://mcp.example.com/mcp");
    expect(run.outputs.adminUrl).toBe("https://mcp.example.com/admin");
  });

  it("seeds the prod policy", async () => {
    expect(run.one(TYPES.seed).inputs.policyHash).toBe((await compilePolicy(POLICIES.prod)).hash);
    expect(run.one(TYPES.seed).inputs.environment).toBe("prod");
  });
});
