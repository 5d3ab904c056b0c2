import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { type ConfigSource, parseStackConfig } from "../../infra/config.ts";
import { REPO_ROOT } from "../../infra/source-hash.ts";
import { CALLBACK_PATHS, workerEnv } from "../../infra/worker-env.ts";
import { resolved } from "./harness.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";

function configFor(stack: string, values: Record<string, string>, secrets: Record<string, string> = {}) {
  const source: ConfigSource = {
    get: (key) => values[key] ?? secrets[key],
    getSecret: (key) => (secrets[key] === undefined ? undefined : pulumi.secret(secrets[key])),
  };
  return parseStackConfig(stack, source);
}

const base = { accountId: ACCOUNT, workersDevSubdomain: "acme" };

describe("Worker environment: GitHub login", () => {
  const config = configFor(
    "staging",
    { ...base, loginProvider: "github", githubClientId: "Iv1.abc123", githubOrgAllowlist: '["acme"]' },
    { githubClientSecret: "gh-client-secret-value" },
  );
  const env = workerEnv({
    config,
    accessOidc: undefined,
    adminAccessAud: undefined,
    bridgeSecret: pulumi.secret("b".repeat(48)),
  });

  it("puts the client id and org allow-list in plain variables", async () => {
    expect(await resolved(env.vars)).toEqual({
      HATAGO_ENVIRONMENT: "staging",
      HATAGO_PUBLIC_URL: "https://hatago-staging.acme.workers.dev",
      HATAGO_LOGIN_PROVIDER: "github",
      HATAGO_GITHUB_CLIENT_ID: "Iv1.abc123",
      HATAGO_GITHUB_ORG_ALLOWLIST: "acme",
    });
    expect(await pulumi.isSecret(env.vars)).toBe(false);
  });

  it("keeps the client secret and the bridge secret in the secret map, which is a Pulumi secret", async () => {
    expect(await pulumi.isSecret(env.secrets)).toBe(true);
    expect(Object.keys(await resolved(env.secrets)).sort()).toEqual([
      "HATAGO_BRIDGE_SECRET",
      "HATAGO_GITHUB_CLIENT_SECRET",
    ]);
    expect(JSON.stringify(await resolved(env.vars))).not.toContain("gh-client-secret-value");
  });
});

describe("Worker environment: token lifetimes", () => {
  it("passes a stack's overrides as the Worker's variables, and nothing when unset", async () => {
    const bridgeSecret = pulumi.secret("x");
    const set = configFor("dev", { ...base, accessTokenTtlSeconds: "900", refreshTokenTtlSeconds: "0" });
    expect(
      await resolved(workerEnv({ config: set, accessOidc: undefined, adminAccessAud: undefined, bridgeSecret }).vars),
    ).toMatchObject({
      HATAGO_ACCESS_TOKEN_TTL_SECONDS: "900",
      HATAGO_REFRESH_TOKEN_TTL_SECONDS: "0",
    });
    const unset = configFor("dev", base);
    const vars = await resolved(
      workerEnv({ config: unset, accessOidc: undefined, adminAccessAud: undefined, bridgeSecret }).vars,
    );
    expect(Object.keys(vars).filter((k) => k.endsWith("_TTL_SECONDS"))).toEqual([]);
  });
});

describe("Worker environment: generic OIDC login", () => {
  it("passes the issuer and scopes as variables, the client credentials as secrets", async () => {
    const config = configFor(
      "staging",
      {
        ...base,
        loginProvider: "oidc",
        oidcIssuer: "https://idp.example.com/realms/acme",
        oidcScopes: '["openid","email","groups"]',
      },
      { oidcClientId: "hatago", oidcClientSecret: "oidc-secret-value" },
    );
    const env = workerEnv({
      config,
      accessOidc: undefined,
      adminAccessAud: undefined,
      bridgeSecret: pulumi.secret("b".repeat(48)),
    });
    expect(await resolved(env.vars)).toMatchObject({
      HATAGO_OIDC_ISSUER: "https://idp.example.com/realms/acme",
      HATAGO_OIDC_SCOPES: "openid email groups",
    });
    expect(await resolved(env.secrets)).toMatchObject({
      HATAGO_OIDC_CLIENT_ID: "hatago",
      HATAGO_OIDC_CLIENT_SECRET: "oidc-secret-value",
    });
    expect(await pulumi.isSecret(env.secrets)).toBe(true);
  });
});

describe("Worker environment: Access login", () => {
  it("needs the SaaS app's credentials", () => {
    const config = configFor("staging", { ...base, loginProvider: "access", accessTeam: "acme" });
    expect(() =>
      workerEnv({ config, accessOidc: undefined, adminAccessAud: undefined, bridgeSecret: pulumi.secret("x") }),
    ).toThrow(/needs the Access SaaS application/);
  });

  it("makes the client id a plain variable even when the provider marks it secret (it is public)", async () => {
    const config = configFor("staging", { ...base, loginProvider: "access", accessTeam: "acme" });
    const env = workerEnv({
      config,
      accessOidc: { clientId: pulumi.secret("cid"), clientSecret: pulumi.secret("csecret") },
      adminAccessAud: undefined,
      bridgeSecret: pulumi.secret("x"),
    });
    expect(await pulumi.isSecret(env.vars)).toBe(false);
    expect(await resolved(env.vars)).toMatchObject({
      HATAGO_ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com",
      HATAGO_ACCESS_CLIENT_ID: "cid",
    });
    expect(await resolved(env.secrets)).toMatchObject({ HATAGO_ACCESS_CLIENT_SECRET: "csecret" });
  });
});

describe("callback paths agree with the Worker's login routes (the redirect URI registered upstream)", () => {
  for (const [provider, callbackPath] of Object.entries(CALLBACK_PATHS)) {
    it(`${provider}: ${callbackPath}`, () => {
      const source = readFileSync(path.join(REPO_ROOT, "worker/login", `${provider}.ts`), "utf8");
      expect(source).toContain(`"${callbackPath}"`);
    });
  }
});
