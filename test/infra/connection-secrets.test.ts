import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseStackConfig } from "../../infra/config.ts";
import { ConfigReader, type ConfigSource } from "../../infra/config-reader.ts";
import { readConnections } from "../../infra/connection-secrets.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import type { Environment, Policy } from "../../policies/index.ts";
import { parseConfig } from "../../worker/config.ts";
import {
  ACCOUNT_ID,
  FAKE_BRIDGE_SECRET,
  isSerializedSecret,
  type ProgramRun,
  plainStrings,
  resolved,
  runProgram,
  stackConfig,
  TYPES,
} from "./harness.ts";

const CLIENT_SECRET = "gh-connection-secret-that-must-never-be-printed";
const KEY = `k2:${btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i)))}`;
const OLD_KEY = `k1:${btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => 255 - i)))}`;

/** A catalog with a server that acts as each person on GitHub, and one that needs no connection. */
const entries: Record<string, CatalogEntry> = {
  github: {
    title: "GitHub",
    install: { runtime: "command", steps: [] },
    argv: ["/opt/github-mcp-server", "stdio"],
    idleTimeoutSeconds: 60,
    connection: { provider: "github", scopes: ["repo"], as: "env", name: "GITHUB_PERSONAL_ACCESS_TOKEN" },
  },
  memory: { title: "m", install: { runtime: "npm", package: "m" }, argv: ["node"], idleTimeoutSeconds: 60 },
};

/** Policies: prod and dev grant `github` by name; staging only through `*`. */
const policy = (environment: Environment, servers: string[]) =>
  ({
    environment,
    roles: { r: { description: "r", grants: servers.map((server) => ({ server, level: "read" })) } },
    bindings: [],
    defaultRole: null,
  }) as unknown as Policy;
const policies: Record<Environment, Policy> = {
  dev: policy("dev", ["github", "memory"]),
  staging: policy("staging", ["*"]),
  prod: policy("prod", ["github"]),
};

type Values = Record<string, unknown>;

/** Stack config as Pulumi hands it over: objects as JSON text, every value also readable as a secret. */
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

function read(values: Values, stack: { environment: Environment; isPreview?: boolean } = { environment: "prod" }) {
  const r = new ConfigReader(source(values));
  const out = readConnections(
    r,
    source(values),
    { environment: stack.environment, isPreview: stack.isPreview ?? false },
    entries,
    policies,
  );
  return { problems: r.problems, out, text: r.problems.join("\n") };
}

const GITHUB = {
  connectionProviders: { github: { kind: "github", label: "GitHub" } },
  connectionSecrets: { github: { clientId: "Iv23liConnect0001", clientSecret: CLIENT_SECRET } },
  connectionKeys: `${KEY},${OLD_KEY}`,
};

describe("connection providers' secrets come from the stack's Pulumi secrets; preview refuses what the Worker would", () => {
  it("a provider declared without its OAuth app's client id and secret is refused, naming the command", () => {
    const { problems } = read({ ...GITHUB, connectionSecrets: undefined });
    expect(problems).toEqual([
      "hatago:connectionSecrets: provider github needs its OAuth app's clientId (distinct from the login's): pulumi config set --secret --path 'connectionSecrets.github.clientId' <value>",
      "hatago:connectionSecrets: provider github needs its OAuth app's clientSecret (distinct from the login's): pulumi config set --secret --path 'connectionSecrets.github.clientSecret' <value>",
    ]);
  });

  it("in prod, a server the policy grants by name that connects with an undeclared provider is refused", () => {
    const { text } = read({});
    expect(text).toContain(
      `server github acts with each person's "github" account and the prod policy grants it: declare the provider`,
    );
    // Where nobody relies on it (dev, previews) or the policy does not name it (staging: only `*`), it is off.
    expect(read({}, { environment: "dev" }).problems).toEqual([]);
    expect(read({}, { environment: "prod", isPreview: true }).problems).toEqual([]);
    expect(read({}, { environment: "staging" }).problems).toEqual([]);
  });

  it("the key ring is required with providers, and checked without echoing it", () => {
    expect(read({ ...GITHUB, connectionKeys: undefined }).text).toContain(
      `hatago:connectionKeys: required when providers are declared: pulumi config set --secret hatago:connectionKeys "k1:$(openssl rand -base64 32)"`,
    );
    for (const bad of ["k1:short", `${KEY},${KEY}`, `nokeyid`, `k1:${btoa("x".repeat(16))}`, `${KEY};${OLD_KEY}`]) {
      const { text } = read({ ...GITHUB, connectionKeys: bad });
      expect(text, bad).toContain("hatago:connectionKeys: must be a list of <id>:<base64 of 32 random bytes>");
      expect(text, bad).not.toContain(bad);
    }
    expect(read({ connectionKeys: KEY }, { environment: "staging" }).text).toContain("is set but no provider");
  });

  it("refuses the mock in prod, providers no server uses, secrets of undeclared providers, and bad endpoints", () => {
    const { text } = read({
      connectionProviders: {
        github: { kind: "mock" },
        linear: { kind: "oauth2", issuer: "https://linear.example" },
        Bad_Id: { kind: "github" },
        github2: { kind: "github", tokenUrl: "https://x.example/token" },
      },
      connectionSecrets: { github: { clientId: "a", clientSecret: CLIENT_SECRET }, slack: { clientSecret: "x" } },
      connectionKeys: KEY,
    });
    expect(text).toContain('github.kind "mock" is refused for the prod policy environment');
    expect(text).toContain('no server of the catalog connects with "linear"');
    expect(text).toContain('"Bad_Id" is not a provider id');
    expect(text).toContain("github2: a github provider has fixed endpoints");
    expect(text).toContain('"slack" is not a declared provider');
    expect(text).not.toContain(CLIENT_SECRET);
  });

  it("an oauth2 provider is named by its https issuer or by both endpoints, never both, never plain http", () => {
    const oauth2 = (settings: Record<string, string>) =>
      read(
        {
          connectionProviders: { github: { kind: "oauth2", ...settings } },
          connectionSecrets: GITHUB.connectionSecrets,
          connectionKeys: KEY,
        },
        { environment: "staging" },
      );
    expect(oauth2({ issuer: "https://idp.example/tenant" }).problems).toEqual([]);
    expect(
      oauth2({ authorizationUrl: "https://a.example/auth", tokenUrl: "https://a.example/token" }).problems,
    ).toEqual([]);
    expect(oauth2({}).text).toContain("needs issuer, or both authorizationUrl and tokenUrl");
    expect(oauth2({ issuer: "https://idp.example", tokenUrl: "https://a.example/token" }).text).toContain("not both");
    expect(oauth2({ issuer: "http://idp.example" }).text).toContain("issuer must be an https URL");
    expect(oauth2({ issuer: "https://idp.example/?tenant=a" }).text).toContain("issuer must be an https URL");
    expect(oauth2({ authorizationUrl: "http://a.example/auth", tokenUrl: "https://a.example/t" }).text).toContain(
      "authorizationUrl must be an https URL",
    );
  });

  it("plain settings become variables; the client id and secret and the key ring a Pulumi secret", async () => {
    const { problems, out } = read(GITHUB);
    expect(problems).toEqual([]);
    expect(out.vars).toEqual({
      HATAGO_CONNECT_PROVIDERS: "github",
      HATAGO_CONNECT_GITHUB_KIND: "github",
      HATAGO_CONNECT_GITHUB_LABEL: "GitHub",
    });
    expect(await pulumi.isSecret(out.secrets)).toBe(true);
    expect(await resolved(out.secrets)).toEqual({
      HATAGO_CONNECT_GITHUB_CLIENT_ID: "Iv23liConnect0001",
      HATAGO_CONNECT_GITHUB_CLIENT_SECRET: CLIENT_SECRET,
      HATAGO_CONNECTION_KEYS: `${KEY},${OLD_KEY}`,
    });
  });

  it("twins: what preview accepts, the Worker's own configuration check accepts too", async () => {
    for (const providers of [
      { github: { kind: "github" } },
      { github: { kind: "oauth2", issuer: "https://idp.example/tenant" } },
      { github: { kind: "oauth2", authorizationUrl: "https://a.example/auth", tokenUrl: "https://a.example/token" } },
      { github: { kind: "mock" } },
    ]) {
      const { problems, out } = read({ ...GITHUB, connectionProviders: providers }, { environment: "staging" });
      expect(problems).toEqual([]);
      const parsed = parseConfig({
        HATAGO_ENVIRONMENT: "staging",
        HATAGO_PUBLIC_URL: "https://mcp.example.com",
        HATAGO_LOGIN_PROVIDER: "mock",
        HATAGO_BRIDGE_SECRET: "b".repeat(48),
        ...out.vars,
        ...(await resolved(out.secrets)),
      });
      expect(parsed.ok, JSON.stringify(providers)).toBe(true);
      if (parsed.ok) expect(parsed.config.connect.providers.map((p) => p.id)).toEqual(["github"]);
    }
  });

  it("refused at preview: the program's first step stops with every problem, before any resource", () => {
    const values = {
      accountId: ACCOUNT_ID,
      workersDevSubdomain: "acme",
      loginProvider: "mock",
      connectionProviders: JSON.stringify({ demo: { kind: "oauth2", issuer: "https://idp.example" } }),
    };
    const attempt = () => parseStackConfig("staging", source(values));
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const problems = (error as ConfigError).problems.join("\n");
      expect(problems).toContain("provider demo needs its OAuth app's clientId");
      expect(problems).toContain("hatago:connectionKeys: required when providers are declared");
    }
  });
});

describe("a stack with a connection provider, deployed under mocks", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram({
      stack: "dev",
      config: stackConfig({
        accountId: ACCOUNT_ID,
        workersDevSubdomain: "acme",
        connectionProviders: JSON.stringify({ demo: { kind: "oauth2", issuer: "https://idp.example" } }),
        connectionSecrets: JSON.stringify({ demo: { clientId: "demo-app", clientSecret: CLIENT_SECRET } }),
        connectionKeys: KEY,
      }),
      secretKeys: ["hatago:connectionSecrets", "hatago:connectionKeys"],
      preview: true,
    });
  });

  const deploy = () => run.one(TYPES.command, "gateway-deploy");

  it("binds the providers' settings as variables, and their secrets and the key ring as Worker secrets on stdin", () => {
    const config = JSON.parse(String((deploy().inputs.environment as Record<string, unknown>).HATAGO_WRANGLER_CONFIG));
    expect(config.vars).toMatchObject({
      HATAGO_CONNECT_PROVIDERS: "demo",
      HATAGO_CONNECT_DEMO_KIND: "oauth2",
      HATAGO_CONNECT_DEMO_ISSUER: "https://idp.example",
    });
    const stdin = deploy().serialized.stdin as { value: string };
    expect(isSerializedSecret(stdin)).toBe(true);
    expect(JSON.parse(stdin.value)).toEqual({
      HATAGO_BRIDGE_SECRET: FAKE_BRIDGE_SECRET,
      HATAGO_CONNECT_DEMO_CLIENT_ID: "demo-app",
      HATAGO_CONNECT_DEMO_CLIENT_SECRET: CLIENT_SECRET,
      HATAGO_CONNECTION_KEYS: KEY,
    });
  });

  it("never puts a connection secret or the key ring in a plain input of any resource", () => {
    for (const resource of run.resources) {
      for (const text of plainStrings(resource.serialized)) {
        expect(text, resource.name).not.toContain(CLIENT_SECRET);
        expect(text, resource.name).not.toContain(KEY.slice(3));
      }
    }
  });
});
