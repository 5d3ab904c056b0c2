import * as pulumi from "@pulumi/pulumi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, type ConfigSource, parseStackConfig, type StackConfig } from "../../infra/config.ts";
import { workerEnv } from "../../infra/worker-env.ts";
import { parseConfig } from "../../worker/config.ts";
import { resolved } from "./harness.ts";

/**
 * Issue 15, defect 2: a stack config that `pulumi preview` accepts must give a Worker whose own
 * configuration check (worker/config.ts parseConfig) accepts it too. Otherwise the deploy succeeds and
 * the Worker answers 503 to every request. Each Worker rule has a stack-level twin: the property below
 * tries many stack configs, and the table names each rule with a config that breaks it.
 */

const ACCOUNT = "0123456789abcdef0123456789abcdef";
/** What the providers compute, in their real shapes (an AUD tag is 64 hex characters). */
const ACCESS_CLIENT_ID = "4f0e1c2d3b4a5968778695a4b3c2d1e0f0e1d2c3b4a5968778695a4b3c2d1e0f";
const ADMIN_AUD = "a".repeat(64);
const BRIDGE_SECRET = "b".repeat(48);

type Values = Record<string, string | readonly string[]>;

function source(values: Values): ConfigSource {
  const raw = (key: string) => {
    const value = values[key];
    return value === undefined ? undefined : typeof value === "string" ? value : JSON.stringify(value);
  };
  return {
    get: raw,
    getSecret: (key) => {
      const value = raw(key);
      return value === undefined ? undefined : pulumi.secret(value);
    },
  };
}

function stackOrProblems(stack: string, values: Values): StackConfig | readonly string[] {
  try {
    return parseStackConfig(stack, source(values));
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

/** The Worker's env for an accepted stack config, as the deployment would set it. */
async function workerEnvironment(config: StackConfig): Promise<Record<string, string>> {
  const env = workerEnv({
    config,
    accessOidc:
      config.login.provider === "access"
        ? { clientId: pulumi.output(ACCESS_CLIENT_ID), clientSecret: pulumi.secret("access-client-secret") }
        : undefined,
    adminAccessAud: config.adminAccess ? pulumi.output(ADMIN_AUD) : undefined,
    bridgeSecret: pulumi.secret(BRIDGE_SECRET),
  });
  return { ...(await resolved(env.vars)), ...(await resolved(env.secrets)) };
}

async function workerProblems(config: StackConfig): Promise<string[]> {
  const result = parseConfig(await workerEnvironment(config));
  return result.ok ? [] : result.problems.map((p) => `${p.setting} ${p.problem}`);
}

// Values for each key: valid ones and the near misses a person types.
const pools: Record<string, readonly (string | readonly string[])[]> = {
  loginProvider: ["mock", "github", "access", "oidc"],
  policyEnvironment: ["dev", "staging", "prod"],
  accessTeam: ["acme", "acme.cloudflareaccess.com", "a"],
  adminEmails: [["ops@example.com"], []],
  adminEmailDomains: [["example.com"]],
  githubClientId: ["Iv23liEXAMPLE0000000", "client.id-1"],
  githubClientSecret: ["s3cret", " ", "x"],
  githubOrgAllowlist: [["acme"], ["acme", "Other-Org"]],
  oidcIssuer: [
    "https://idp.example.com",
    "https://idp.example.com/realms/a",
    "https://idp.example.com/?tenant=1",
    "https://user:pw@idp.example.com",
    "https://idp.example.com/#frag",
  ],
  oidcClientId: ["client-1", "client id", "client/1", "a~b.c_d"],
  oidcClientSecret: ["s3cret", " "],
  oidcScopes: [["openid", "email"], ["openid", "a,b"], ["openid"]],
  oidcGroupsClaim: ["groups", "https://example.com/groups", "roles"],
  allowedOrigins: [
    ["https://app.example.com"],
    ["http://localhost:5173"],
    ["https://a,b.example"],
    ["https://app.example.com:8443"],
  ],
  accessTokenTtlSeconds: ["0", "30", "60", "3600", "86400", "86401"],
  refreshTokenTtlSeconds: ["0", "59", "60", "2592000", "31536000", "31536001"],
  clientRegistrationTtlSeconds: ["0", "60", "7776000", "40000000"],
  listenRecheckSeconds: ["1", "30", "300", "301"],
  listenKeepAliveSeconds: ["1", "15", "60", "61"],
  domain: ["mcp.example.com"],
};

const stackConfigs = fc.record(
  {
    stack: fc.constantFrom("dev", "staging", "prod", "pr-7", "sandbox"),
    values: fc.record(Object.fromEntries(Object.entries(pools).map(([key, pool]) => [key, fc.constantFrom(...pool)])), {
      requiredKeys: [],
    }),
  },
  { requiredKeys: ["stack", "values"] },
);

describe("every combination the Worker would refuse is refused at `pulumi preview` (issue 15, defect 2)", () => {
  it("property: a stack config the program accepts gives a Worker configuration the Worker accepts", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(stackConfigs, async ({ stack, values }) => {
        const config = stackOrProblems(stack, { accountId: ACCOUNT, workersDevSubdomain: "acme", ...values });
        if (Array.isArray(config)) return;
        accepted += 1;
        expect(await workerProblems(config as StackConfig)).toEqual([]);
      }),
      { numRuns: 1_500, seed: 15 },
    );
    // Not vacuous: a good share of the tried configs reached the Worker's check.
    expect(accepted).toBeGreaterThan(30);
  });

  // Each Worker rule a stack can reach, with a stack config that would break it.
  const twins: { rule: string; stack: string; values: Values; key: string }[] = [
    {
      rule: "HATAGO_ADMIN_ACCESS_AUD needs HATAGO_ACCESS_TEAM_DOMAIN (regression: adminEmails without accessTeam)",
      stack: "staging",
      values: {
        loginProvider: "github",
        githubClientId: "id",
        githubClientSecret: "s",
        adminEmails: ["o@example.com"],
      },
      key: "accessTeam",
    },
    {
      rule: "HATAGO_ACCESS_TOKEN_TTL_SECONDS is 60 to 86400",
      stack: "dev",
      values: { accessTokenTtlSeconds: "86401" },
      key: "accessTokenTtlSeconds",
    },
    {
      rule: "HATAGO_ACCESS_TOKEN_TTL_SECONDS is at least 60 (KV refuses shorter expirations)",
      stack: "dev",
      values: { accessTokenTtlSeconds: "30" },
      key: "accessTokenTtlSeconds",
    },
    {
      rule: "HATAGO_LISTEN_RECHECK_SECONDS is 1 to 300",
      stack: "dev",
      values: { listenRecheckSeconds: "301" },
      key: "listenRecheckSeconds",
    },
    {
      rule: "HATAGO_LISTEN_KEEPALIVE_SECONDS is 1 to 60 (0 is refused)",
      stack: "dev",
      values: { listenKeepAliveSeconds: "0" },
      key: "listenKeepAliveSeconds",
    },
    {
      rule: "HATAGO_REFRESH_TOKEN_TTL_SECONDS is 0 or 60 to a year",
      stack: "dev",
      values: { refreshTokenTtlSeconds: "59" },
      key: "refreshTokenTtlSeconds",
    },
    {
      rule: "HATAGO_CLIENT_REGISTRATION_TTL_SECONDS is 60 to a year (0 is refused)",
      stack: "dev",
      values: { clientRegistrationTtlSeconds: "0" },
      key: "clientRegistrationTtlSeconds",
    },
    {
      rule: "HATAGO_OIDC_ISSUER has no query or fragment",
      stack: "staging",
      values: {
        loginProvider: "oidc",
        oidcIssuer: "https://idp.example.com/?t=1",
        oidcClientId: "c",
        oidcClientSecret: "s",
      },
      key: "oidcIssuer",
    },
    {
      rule: "HATAGO_OIDC_CLIENT_ID is URL-safe",
      stack: "staging",
      values: {
        loginProvider: "oidc",
        oidcIssuer: "https://idp.example.com",
        oidcClientId: "a b",
        oidcClientSecret: "s",
      },
      key: "oidcClientId",
    },
    {
      rule: "HATAGO_GITHUB_CLIENT_SECRET is not blank",
      stack: "staging",
      values: { loginProvider: "github", githubClientId: "id", githubClientSecret: "  " },
      key: "githubClientSecret",
    },
    {
      rule: "HATAGO_ALLOWED_ORIGINS reads back as the same list",
      stack: "dev",
      values: { allowedOrigins: ["https://a,b.example"] },
      key: "allowedOrigins",
    },
    {
      rule: "HATAGO_LOGIN_PROVIDER=mock is refused with HATAGO_ENVIRONMENT=prod",
      stack: "prod-eu",
      values: { policyEnvironment: "prod", loginProvider: "mock" },
      key: "loginProvider",
    },
    {
      rule: "HATAGO_ALLOWED_ORIGINS: plain http only on loopback in dev",
      stack: "staging",
      values: { loginProvider: "mock", allowedOrigins: ["http://localhost:5173"] },
      key: "allowedOrigins",
    },
  ];
  for (const twin of twins) {
    it(`${twin.rule}: refused as hatago:${twin.key}`, () => {
      const result = stackOrProblems(twin.stack, { accountId: ACCOUNT, workersDevSubdomain: "acme", ...twin.values });
      expect(Array.isArray(result) ? result : []).toContainEqual(expect.stringMatching(`^hatago:${twin.key}: `));
    });
  }

  it("SECURITY: a refused secret is named, never echoed", () => {
    const problems = stackOrProblems("staging", {
      accountId: ACCOUNT,
      workersDevSubdomain: "acme",
      loginProvider: "oidc",
      oidcIssuer: "https://idp.example.com",
      oidcClientId: "leaky value",
      oidcClientSecret: "s",
    });
    expect(JSON.stringify(problems)).not.toContain("leaky value");
  });
});
