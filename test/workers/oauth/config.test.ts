import { createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { workerFor } from "../../../worker/boot.ts";
import { type ConfigProblem, parseConfig } from "../../../worker/config.ts";
import { createWorker } from "../../../worker/index.ts";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce } from "./harness/oauth-client.ts";
import { testSettings, workerWith } from "./harness/workers.ts";

/** A valid configuration: the test environment's settings (vars and test-only secrets) with the mock login. */
const BASE: Record<string, string> = { ...testSettings(), HATAGO_LOGIN_PROVIDER: "mock" };

function without(settings: Record<string, string>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).filter(([name]) => !names.includes(name)));
}

function problemsOf(settings: Record<string, unknown>): ConfigProblem[] {
  const parsed = parseConfig(settings);
  if (parsed.ok) throw new Error("expected the configuration to be refused");
  return [...parsed.problems];
}

const settingsNamed = (problems: ConfigProblem[]) => problems.map((p) => p.setting);

afterEach(() => vi.restoreAllMocks());

describe("the mock login is refused in production (STYLE: dev-only switches refused at start-up)", () => {
  it("HATAGO_LOGIN_PROVIDER=mock with HATAGO_ENVIRONMENT=prod is a configuration error naming the setting", () => {
    const problems = problemsOf({ ...BASE, HATAGO_ENVIRONMENT: "prod", HATAGO_PUBLIC_URL: "https://mcp.example.com" });
    expect(problems).toEqual([
      { setting: "HATAGO_LOGIN_PROVIDER", problem: expect.stringContaining("refused when HATAGO_ENVIRONMENT=prod") },
    ]);
  });

  it("a Worker so configured answers every request, /health included, with 503 naming the setting", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const prodEnv = { ...env, HATAGO_ENVIRONMENT: "prod", HATAGO_PUBLIC_URL: "https://mcp.example.com" };
    const worker = workerFor(prodEnv);
    for (const path of ["/health", "/authorize", "/.well-known/oauth-authorization-server", "/token", "/login/mock"]) {
      const response = await worker.fetch(
        new Request(`https://mcp.example.com${path}`),
        prodEnv,
        createExecutionContext(),
      );
      expect(response.status, path).toBe(503);
      expect(await response.json()).toMatchObject({
        error: "misconfigured",
        problems: [{ setting: "HATAGO_LOGIN_PROVIDER" }],
      });
    }
    // Parsed once per isolate, logged once.
    expect(workerFor(prodEnv)).toBe(worker);
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]?.[0])).toContain("HATAGO_LOGIN_PROVIDER");
  });

  it("the 503 page for a browser is escaped HTML with the page security headers", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const badEnv = { ...env, HATAGO_ENVIRONMENT: "<script>" };
    const response = await workerFor(badEnv).fetch(
      new Request(`${ORIGIN}/authorize`, { headers: { Accept: "text/html" } }),
      badEnv,
      createExecutionContext(),
    );
    expect(response.status).toBe(503);
    expect(response.headers.get("Content-Security-Policy")).toContain("default-src 'none'");
    const body = await response.text();
    expect(body).toContain("<code>HATAGO_ENVIRONMENT</code>");
    expect(body).not.toContain("<script>");
  });

  it("createWorker refuses a production configuration with the mock login even if one is built by hand", () => {
    const parsed = parseConfig(BASE);
    if (!parsed.ok) throw new Error("base config should parse");
    expect(() => createWorker({ ...parsed.config, environment: "prod" })).toThrow(
      /mock login is refused in production/,
    );
  });
});

describe("configuration errors name the setting, never its value", () => {
  it("an unknown login provider", () => {
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_LOGIN_PROVIDER: "facebook" }))).toEqual([
      "HATAGO_LOGIN_PROVIDER",
    ]);
  });

  it("missing GitHub client id and secret", () => {
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_LOGIN_PROVIDER: "github" }))).toEqual([
      "HATAGO_GITHUB_CLIENT_ID",
      "HATAGO_GITHUB_CLIENT_SECRET",
    ]);
  });

  it("a bad Access team domain", () => {
    const problems = problemsOf({
      ...BASE,
      HATAGO_LOGIN_PROVIDER: "access",
      HATAGO_ACCESS_TEAM_DOMAIN: "https://acme.example.com",
      HATAGO_ACCESS_CLIENT_ID: "abc",
      HATAGO_ACCESS_CLIENT_SECRET: "s3cr3t-value",
    });
    expect(settingsNamed(problems)).toEqual(["HATAGO_ACCESS_TEAM_DOMAIN"]);
    expect(JSON.stringify(problems)).not.toContain("s3cr3t-value");
  });

  it("an Access team domain is accepted with or without https:// and gives the SaaS app's issuer", () => {
    for (const domain of ["acme.cloudflareaccess.com", "https://acme.cloudflareaccess.com/"]) {
      const parsed = parseConfig({
        ...BASE,
        HATAGO_LOGIN_PROVIDER: "access",
        HATAGO_ACCESS_TEAM_DOMAIN: domain,
        HATAGO_ACCESS_CLIENT_ID: "abc123",
        HATAGO_ACCESS_CLIENT_SECRET: "s",
      });
      expect(parsed.ok && parsed.config.login).toMatchObject({
        issuer: "https://acme.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123",
      });
    }
  });

  it("an OIDC issuer that is not https, and scopes without openid", () => {
    const problems = problemsOf({
      ...BASE,
      HATAGO_LOGIN_PROVIDER: "oidc",
      HATAGO_OIDC_ISSUER: "http://idp.example.com",
      HATAGO_OIDC_CLIENT_ID: "x",
      HATAGO_OIDC_CLIENT_SECRET: "y",
      HATAGO_OIDC_SCOPES: "email profile",
    });
    expect(settingsNamed(problems)).toEqual(["HATAGO_OIDC_ISSUER", "HATAGO_OIDC_SCOPES"]);
  });

  it("a missing environment and public URL", () => {
    expect(settingsNamed(problemsOf(without(BASE, ["HATAGO_ENVIRONMENT", "HATAGO_PUBLIC_URL"])))).toEqual([
      "HATAGO_ENVIRONMENT",
      "HATAGO_PUBLIC_URL",
    ]);
  });

  it("a public URL with a path, or plain http outside local development", () => {
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_PUBLIC_URL: "https://mcp.example.com/mcp" }))).toEqual([
      "HATAGO_PUBLIC_URL",
    ]);
    expect(
      settingsNamed(problemsOf({ ...BASE, HATAGO_ENVIRONMENT: "staging", HATAGO_PUBLIC_URL: "http://127.0.0.1:8787" })),
    ).toEqual(["HATAGO_PUBLIC_URL"]);
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_PUBLIC_URL: "http://mcp.example.com" }))).toEqual([
      "HATAGO_PUBLIC_URL",
    ]);
  });

  it("token lifetimes out of range or not numbers", () => {
    const problems = problemsOf({
      ...BASE,
      HATAGO_ACCESS_TOKEN_TTL_SECONDS: "30",
      HATAGO_REFRESH_TOKEN_TTL_SECONDS: "soon",
      HATAGO_CLIENT_REGISTRATION_TTL_SECONDS: "99999999999",
    });
    expect(settingsNamed(problems)).toEqual([
      "HATAGO_ACCESS_TOKEN_TTL_SECONDS",
      "HATAGO_REFRESH_TOKEN_TTL_SECONDS",
      "HATAGO_CLIENT_REGISTRATION_TTL_SECONDS",
    ]);
  });

  it("listen clocks out of range or not numbers; absent, none set (listen.ts's defaults apply)", () => {
    const problems = problemsOf({
      ...BASE,
      HATAGO_LISTEN_RECHECK_SECONDS: "0",
      HATAGO_LISTEN_KEEPALIVE_SECONDS: "61",
    });
    expect(settingsNamed(problems)).toEqual(["HATAGO_LISTEN_RECHECK_SECONDS", "HATAGO_LISTEN_KEEPALIVE_SECONDS"]);
    expect(problems[0]?.problem).toContain("from 1 to 300");
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_LISTEN_RECHECK_SECONDS: "soon" }))).toEqual([
      "HATAGO_LISTEN_RECHECK_SECONDS",
    ]);
    const set = parseConfig({ ...BASE, HATAGO_LISTEN_RECHECK_SECONDS: "5", HATAGO_LISTEN_KEEPALIVE_SECONDS: "2" });
    expect(set.ok && set.config.listen).toEqual({ recheckMs: 5_000, keepAliveMs: 2_000 });
    const unset = parseConfig(BASE);
    expect(unset.ok && unset.config.listen).toEqual({});
  });

  it("allowed origins must be origins", () => {
    expect(settingsNamed(problemsOf({ ...BASE, HATAGO_ALLOWED_ORIGINS: "https://app.example.com, ftp://x" }))).toEqual([
      "HATAGO_ALLOWED_ORIGINS",
    ]);
  });

  it("sensible defaults when only the required settings are given", () => {
    const parsed = parseConfig({ ...BASE, HATAGO_ALLOWED_ORIGINS: "https://app.example.com" });
    expect(parsed.ok && parsed.config).toMatchObject({
      environment: "dev",
      publicUrl: ORIGIN,
      login: { provider: "mock" },
      tokens: {
        accessTokenTtlSeconds: 3600,
        refreshTokenTtlSeconds: 2_592_000,
        clientRegistrationTtlSeconds: 7_776_000,
      },
      allowedOrigins: ["https://app.example.com"],
    });
  });

  it("configured token lifetimes reach the token endpoint and the consent page", async () => {
    const send = workerWith({ HATAGO_LOGIN_PROVIDER: "mock", HATAGO_ACCESS_TOKEN_TTL_SECONDS: "600" });
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const consent = await browser.get(client.authorizeUrl(await pkce()));
    expect(await consent.text()).toContain("Access lasts 10 minutes at a time");
    const { code, pkce: p } = await signIn(browser, client, mockUpstream("dave"));
    expect((await tokens(await client.exchange(code, p.verifier))).expires_in).toBe(600);
  });
});

describe("one origin (tokens, cookies and the issuer are bound to HATAGO_PUBLIC_URL)", () => {
  it("a request on another host name is answered 421, except /health", async () => {
    const worker = workerFor(env);
    const other = await worker.fetch(
      new Request("https://hatago.example.workers.dev/authorize"),
      env,
      createExecutionContext(),
    );
    expect(other.status).toBe(421);
    const health = await worker.fetch(
      new Request("https://hatago.example.workers.dev/health"),
      env,
      createExecutionContext(),
    );
    // Answered on any host: its health report (503 here, where no container can run).
    expect(health.status).not.toBe(421);
    expect(await health.json()).toMatchObject({ parts: { worker: { ok: true } } });
  });

  it("/health is 503 and names the bridge when the bridge cannot answer (no fake 200)", async () => {
    const settings: Record<string, unknown> = { ...env, HATAGO_INSECURE_DEV_BRIDGE_URL: "http://127.0.0.1:9" };
    const worker = workerFor(settings as unknown as typeof env);
    const health = await worker.fetch(new Request("http://127.0.0.1:8787/health"), env, createExecutionContext());
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      ok: false,
      down: ["bridge"],
      parts: { database: { ok: true }, bridge: { ok: false, detail: "the bridge process is unreachable" } },
    });
  });
});
