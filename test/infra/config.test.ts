import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  type ConfigSource,
  containersNeeded,
  parseStackConfig,
  type StackConfig,
} from "../../infra/config.ts";
import { isolationOf, SERVER_IDS } from "../../policies/index.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";

/** Config as the stack file would hold it; lists and objects as the JSON text Pulumi hands over. */
function source(values: Record<string, string | readonly string[]>): ConfigSource {
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

function problemsOf(stack: string, values: Record<string, string | readonly string[]>): readonly string[] {
  try {
    parseStackConfig(stack, source(values));
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("the config was accepted, but it should have been refused");
}

const minimal = { accountId: ACCOUNT, workersDevSubdomain: "acme" };

describe("stack config: defaults", () => {
  it("dev runs with only an account and a workers.dev subdomain (mock login, dev policy)", () => {
    const config = parseStackConfig("dev", source(minimal));
    expect(config).toMatchObject({
      environment: "dev",
      login: { provider: "mock" },
      baseUrl: "https://hatago-dev.acme.workers.dev",
      container: { instanceType: "lite", maxInstances: containersNeeded(3), concurrentUsers: 3 },
      protectData: false,
      isPreview: false,
    });
  });

  it("a pr-<number> stack needs no file of its own: staging policy, smallest sizes, workers.dev", () => {
    const config = parseStackConfig("pr-123", source(minimal));
    expect(config).toMatchObject<Partial<StackConfig>>({
      environment: "staging",
      isPreview: true,
      protectData: false,
      container: { instanceType: "lite", maxInstances: containersNeeded(2), concurrentUsers: 2 },
      hosting: { kind: "workers-dev", hostname: "hatago-pr-123.acme.workers.dev", subdomain: "acme" },
    });
    expect(config.names.worker).toBe("hatago-pr-123");
  });

  it("prod protects its data and sizes up", () => {
    const config = parseStackConfig(
      "prod",
      source({ ...minimal, loginProvider: "access", accessTeam: "acme", domain: "mcp.example.com" }),
    );
    expect(config).toMatchObject({ environment: "prod", protectData: true, baseUrl: "https://mcp.example.com" });
    expect(config.container).toEqual({
      instanceType: "standard-1",
      maxInstances: containersNeeded(20),
      concurrentUsers: 20,
    });
    expect(config.accessTeamDomain).toBe("acme.cloudflareaccess.com");
  });

  it("allowed origins are the extra origins only; the gateway's own is HATAGO_PUBLIC_URL", () => {
    const config = parseStackConfig(
      "dev",
      source({ ...minimal, allowedOrigins: ["https://app.example.com", "https://hatago-dev.acme.workers.dev"] }),
    );
    expect(config.allowedOrigins).toEqual(["https://app.example.com"]);
  });
});

describe("container limit follows the catalog (issue 15, defect 5: a second user's memory fails)", () => {
  const perUser = SERVER_IDS.filter((id) => isolationOf(id) === "per-user").length;
  const shared = SERVER_IDS.length - perUser;

  it("is one container per (per-user server, person) plus one per shared server", () => {
    expect(containersNeeded(7)).toBe(perUser * 7 + shared);
  });

  it("by default, every stack fits at least two people using every server at once", () => {
    const stacks: [string, Record<string, string>][] = [
      ["pr-7", {}],
      ["dev", {}],
      ["staging", { loginProvider: "mock" }],
      ["prod", { loginProvider: "access", accessTeam: "acme" }],
    ];
    for (const [stack, values] of stacks) {
      const { container } = parseStackConfig(stack, source({ ...minimal, ...values }));
      expect(container.maxInstances, stack).toBeGreaterThanOrEqual(perUser * 2 + shared);
    }
  });

  it("hatago:expectedConcurrentUsers sizes it; an explicit hatago:maxInstances still wins", () => {
    expect(parseStackConfig("dev", source({ ...minimal, expectedConcurrentUsers: "12" })).container).toMatchObject({
      maxInstances: containersNeeded(12),
      concurrentUsers: 12,
    });
    expect(parseStackConfig("dev", source({ ...minimal, maxInstances: "7" })).container.maxInstances).toBe(7);
  });
});

describe("stack config: every error names its key", () => {
  it("a missing account id names hatago:accountId and how to set it", () => {
    expect(problemsOf("dev", { workersDevSubdomain: "acme" })).toEqual([
      expect.stringMatching(/^hatago:accountId: required for every stack \(pulumi config set hatago:accountId/),
    ]);
  });

  it("a malformed account id is refused", () => {
    expect(problemsOf("dev", { ...minimal, accountId: "not-an-account" })).toEqual([
      expect.stringMatching(/^hatago:accountId: a Cloudflare account id is 32 lowercase hex characters/),
    ]);
  });

  it("staging and prod must say which login provider they use", () => {
    expect(problemsOf("staging", minimal)).toEqual([expect.stringMatching(/^hatago:loginProvider: required/)]);
  });

  it("github login needs the client id and the client secret, the secret with --secret", () => {
    const problems = problemsOf("staging", { ...minimal, loginProvider: "github" });
    expect(problems).toEqual([
      expect.stringMatching(/^hatago:githubClientId: required when loginProvider is "github"/),
      expect.stringMatching(
        /^hatago:githubClientSecret: required .*pulumi config set --secret hatago:githubClientSecret/,
      ),
    ]);
  });

  it("access login needs the Access team", () => {
    expect(problemsOf("staging", { ...minimal, loginProvider: "access" })).toEqual([
      expect.stringMatching(/^hatago:accessTeam: required when loginProvider is "access"/),
    ]);
  });

  it("oidc login needs an https issuer and its client credentials", () => {
    const problems = problemsOf("staging", { ...minimal, loginProvider: "oidc", oidcIssuer: "http://idp.example" });
    expect(problems).toEqual([
      expect.stringMatching(/^hatago:oidcIssuer: /),
      expect.stringMatching(/^hatago:oidcClientId: required/),
      expect.stringMatching(/^hatago:oidcClientSecret: required/),
    ]);
  });

  it("a stack without a domain needs the workers.dev subdomain", () => {
    expect(problemsOf("dev", { accountId: ACCOUNT })).toEqual([
      expect.stringMatching(/^hatago:workersDevSubdomain: required when hatago:domain is not set/),
    ]);
  });

  it("container sizes are checked against Cloudflare's instance types and a sane ceiling", () => {
    const problems = problemsOf("dev", { ...minimal, instanceType: "huge", maxInstances: "100000" });
    expect(problems).toEqual([
      expect.stringMatching(/^hatago:instanceType: /),
      expect.stringMatching(/^hatago:maxInstances: at most 1000/),
    ]);
  });

  it("an allowed origin must be an https origin, nothing after it", () => {
    expect(
      problemsOf("staging", {
        ...minimal,
        loginProvider: "access",
        accessTeam: "acme",
        allowedOrigins: ["https://a.example/path", "http://a.example"],
      }),
    ).toEqual([
      expect.stringMatching(/^hatago:allowedOrigins: "https:\/\/a.example\/path" is not an https origin/),
      expect.stringMatching(/^hatago:allowedOrigins: "http:\/\/a.example" is not an https origin/),
    ]);
  });

  it("a list given as a plain string is refused with a hint", () => {
    expect(problemsOf("dev", { ...minimal, adminEmails: "ops@example.com" })).toEqual([
      expect.stringMatching(/^hatago:adminEmails: expected a YAML list/),
    ]);
  });

  it("a stack name Cloudflare names cannot carry is refused", () => {
    expect(problemsOf("Feature_Branch", { ...minimal, policyEnvironment: "dev", loginProvider: "mock" })).toEqual([
      expect.stringMatching(/^stack "Feature_Branch": .*lowercase letters, digits and dashes/),
    ]);
  });

  it("a stack with no default policy environment must name one", () => {
    expect(problemsOf("sandbox", { ...minimal, loginProvider: "mock" })).toEqual([
      expect.stringMatching(/^hatago:policyEnvironment: required for stack "sandbox"/),
    ]);
  });

  it("reports every problem at once", () => {
    expect(problemsOf("staging", {})).toHaveLength(3);
  });
});

describe("stack config: production guards", () => {
  it("refuses the mock login for the prod policy (anyone could claim any identity)", () => {
    const problems = problemsOf("prod", { ...minimal, loginProvider: "mock" });
    expect(problems).toEqual([expect.stringMatching(/^hatago:loginProvider: "mock" is refused/)]);
  });

  it("refuses the mock login for any stack that uses the prod policy", () => {
    const problems = problemsOf("prod-eu", { ...minimal, loginProvider: "mock", policyEnvironment: "prod" });
    expect(problems).toEqual([expect.stringMatching(/^hatago:loginProvider: "mock" is refused/)]);
  });

  it("the prod stack cannot run another environment's policy", () => {
    const problems = problemsOf("prod", {
      ...minimal,
      loginProvider: "access",
      accessTeam: "acme",
      policyEnvironment: "dev",
    });
    expect(problems).toEqual([
      expect.stringMatching(/^hatago:policyEnvironment: the prod stack must use the prod policy/),
    ]);
  });

  it("production data cannot be unprotected", () => {
    const problems = problemsOf("prod", {
      ...minimal,
      loginProvider: "access",
      accessTeam: "acme",
      protectData: "false",
    });
    expect(problems).toEqual([expect.stringMatching(/^hatago:protectData: production data is always protected/)]);
  });

  it("a preview stack cannot be protected (it is destroyed when the pull request closes)", () => {
    expect(problemsOf("pr-7", { ...minimal, protectData: "true" })).toEqual([
      expect.stringMatching(/^hatago:protectData: preview stacks are destroyed/),
    ]);
  });

  it("a preview stack cannot take a custom domain", () => {
    expect(problemsOf("pr-7", { ...minimal, domain: "pr.example.com" })).toEqual([
      expect.stringMatching(/^hatago:domain: preview stacks always use workers.dev/),
    ]);
  });
});
