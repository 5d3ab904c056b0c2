import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ENVIRONMENTS, type Environment, environmentForStack, isolationOf, SERVER_IDS } from "../policies/index.ts";
import { ConfigReader, type ConfigSource } from "./config-reader.ts";
import { type ConnectionSettings, readConnections } from "./connection-secrets.ts";
import { isPreviewStack, type Names, namesFor, STACK_NAME } from "./naming.ts";
import { readServerSecrets } from "./server-secrets.ts";

export { CONFIG_NAMESPACE, type ConfigSource, pulumiConfigSource } from "./config-reader.ts";

export const LOGIN_PROVIDERS = ["mock", "github", "access", "oidc"] as const;
export type LoginProvider = (typeof LOGIN_PROVIDERS)[number];

/** Cloudflare Containers instance types (wrangler 4.164 config schema; `dev`/`standard` are deprecated aliases). */
export const INSTANCE_TYPES = ["lite", "basic", "standard-1", "standard-2", "standard-3", "standard-4"] as const;
export type InstanceType = (typeof INSTANCE_TYPES)[number];

/** Upper bound on `maxInstances`: far above any account's default limit, so a typo (10000) is caught. */
const MAX_INSTANCES_LIMIT = 1_000;

/**
 * Container sizes when the stack does not set them: previews get the smallest. `concurrentUsers` is
 * how many people are expected to use the gateway within one container idle period (a container is
 * held until its idlest server's idle timeout has passed since its last use, worker/bridge/container.ts).
 */
const CONTAINER_DEFAULTS: Readonly<
  Record<Environment | "preview", { instanceType: InstanceType; concurrentUsers: number }>
> = {
  preview: { instanceType: "lite", concurrentUsers: 2 },
  dev: { instanceType: "lite", concurrentUsers: 3 },
  staging: { instanceType: "basic", concurrentUsers: 5 },
  prod: { instanceType: "standard-1", concurrentUsers: 20 },
};

/**
 * Containers needed for `concurrentUsers` people using every server at once: one per (server, person)
 * for each `per-user` server in the catalog, one per `shared` server (worker/bridge/router.ts names
 * them the same way). With fewer, the next person's container is refused: a 503 naming the limit.
 */
export function containersNeeded(concurrentUsers: number): number {
  const perUser = SERVER_IDS.filter((id) => isolationOf(id) === "per-user").length;
  const shared = SERVER_IDS.length - perUser;
  return Math.min(MAX_INSTANCES_LIMIT, perUser * concurrentUsers + shared);
}

export interface ContainerSize {
  readonly instanceType: InstanceType;
  readonly maxInstances: number;
  /** The people the size was planned for (hatago:expectedConcurrentUsers or the environment's default). */
  readonly concurrentUsers: number;
}

export type LoginConfig =
  | { readonly provider: "mock" }
  | {
      readonly provider: "github";
      readonly clientId: string;
      readonly clientSecret: pulumi.Output<string>;
      /** GitHub organisations whose members may sign in; empty: any GitHub user (the policy still decides). */
      readonly orgAllowlist: readonly string[];
    }
  | { readonly provider: "access" }
  | {
      readonly provider: "oidc";
      readonly issuer: string;
      readonly clientId: pulumi.Output<string>;
      readonly clientSecret: pulumi.Output<string>;
      /** Empty: the Worker's default (openid email profile). */
      readonly scopes: readonly string[];
      readonly groupsClaim: string | undefined;
    };

/** Who may pass an Access policy: email addresses and email domains. Empty lists mean "everyone". */
export interface AccessAllowList {
  readonly emails: readonly string[];
  readonly emailDomains: readonly string[];
}

export type Hosting =
  | { readonly kind: "custom-domain"; readonly hostname: string }
  | { readonly kind: "workers-dev"; readonly hostname: string; readonly subdomain: string };

/** A stack's configuration, validated: everything the components need and nothing they must re-check. */
export interface StackConfig {
  readonly stack: string;
  readonly names: Names;
  readonly accountId: string;
  /** The policy environment (policies/environments): also the Worker's HATAGO_ENVIRONMENT. */
  readonly environment: Environment;
  readonly isPreview: boolean;
  /** Production data (D1, KV) is protected from deletion and replacement. */
  readonly protectData: boolean;
  readonly login: LoginConfig;
  /** `<team>.cloudflareaccess.com`, when the stack uses Cloudflare Access. */
  readonly accessTeamDomain: string | undefined;
  /** Who may sign in through the Access SaaS app (login provider `access`). */
  readonly accessLogin: AccessAllowList;
  /** Who passes the Access application in front of `/admin`; undefined: no admin application. */
  readonly adminAccess: AccessAllowList | undefined;
  readonly hosting: Hosting;
  /** `https://<hostname>`, no trailing slash. */
  readonly baseUrl: string;
  /** Browser origins, besides its own, that may call the gateway's MCP endpoints. */
  readonly allowedOrigins: readonly string[];
  readonly container: ContainerSize;
  /** The catalog servers' secrets as Worker secret bindings (`HATAGO_SECRET_<SERVER>__<NAME>`), a Pulumi secret. */
  readonly serverSecrets: pulumi.Output<Record<string, string>>;
  /** Connections (issue 17): providers' variables, and their client ids, secrets and the key ring as a Pulumi secret. */
  readonly connections: ConnectionSettings;
  /**
   * Token lifetimes and listen clocks, when the stack overrides the Worker's defaults (worker/config.ts
   * checks the ranges).
   */
  readonly timings: Readonly<Partial<Record<TimingKey, number>>>;
}

/** Stack keys for the Worker's settings in whole seconds, and the variables they set. */
export const TIMING_VARIABLES = {
  accessTokenTtlSeconds: "HATAGO_ACCESS_TOKEN_TTL_SECONDS",
  refreshTokenTtlSeconds: "HATAGO_REFRESH_TOKEN_TTL_SECONDS",
  clientRegistrationTtlSeconds: "HATAGO_CLIENT_REGISTRATION_TTL_SECONDS",
  listenRecheckSeconds: "HATAGO_LISTEN_RECHECK_SECONDS",
  listenKeepAliveSeconds: "HATAGO_LISTEN_KEEPALIVE_SECONDS",
} as const;
export type TimingKey = keyof typeof TIMING_VARIABLES;

/**
 * The Worker's ranges for them (worker/config.ts; infra may not import the Worker, so
 * test/infra/config-twins.test.ts holds the two to each other). KV refuses expirations under 60 s.
 */
const MIN_TTL_SECONDS = 60;
const TIMING_RANGES: Readonly<Record<TimingKey, { min: number; max: number; zeroAllowed: boolean }>> = {
  accessTokenTtlSeconds: { min: MIN_TTL_SECONDS, max: 86_400, zeroAllowed: false },
  refreshTokenTtlSeconds: { min: MIN_TTL_SECONDS, max: 31_536_000, zeroAllowed: true },
  clientRegistrationTtlSeconds: { min: MIN_TTL_SECONDS, max: 31_536_000, zeroAllowed: false },
  listenRecheckSeconds: { min: 1, max: 300, zeroAllowed: false },
  listenKeepAliveSeconds: { min: 1, max: 60, zeroAllowed: false },
};

/** Thrown when stack config is missing or wrong; every problem names its key. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(stack: string, problems: readonly string[]) {
    super(`Stack "${stack}" is misconfigured:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const accountIdSchema = z.string().regex(/^[0-9a-f]{32}$/, "a Cloudflare account id is 32 lowercase hex characters");
const hostnameSchema = z
  .string()
  .regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, "a lowercase DNS hostname");
const subdomainSchema = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "one DNS label, lowercase");
const stringList = z.array(z.string().min(1));
const accessTeamSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.cloudflareaccess\.com)?$/, "a team name or its domain");
const githubClientIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "a GitHub OAuth client id");
const githubOrgSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, "a GitHub organisation login");
const issuerSchema = z.url({ protocol: /^https$/, hostname: z.regexes.domain }).refine((value) => {
  const url = URL.parse(value);
  return url !== null && !url.username && !url.password && !url.search && !url.hash && !value.includes("#");
}, "an https issuer URL without credentials, query or fragment");
// An OAuth scope token, without a comma: the Worker splits HATAGO_OIDC_SCOPES on spaces and commas.
const scopeSchema = z.string().regex(/^[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,128}$/, "an OAuth scope");
/** URL-safe, as the Worker requires (it puts client ids in URLs). */
const oidcClientIdSchema = z.string().regex(/^[A-Za-z0-9._~-]{1,255}$/, "a client id of URL-safe characters");
const secretValueSchema = z.string().refine((v) => v.trim() !== "", "must not be blank");
const emailList = z.array(z.string().regex(/^[^\s@]+@[^\s@]+$/, "an email address"));
const domainList = z.array(hostnameSchema);

/** Reads and validates a stack's config. Throws one ConfigError listing every problem. */
export function parseStackConfig(stack: string, source: ConfigSource): StackConfig {
  const r = new ConfigReader(source);
  const key = (name: string) => r.key(name);

  if (!STACK_NAME.test(stack)) {
    r.problems.push(
      `stack "${stack}": Cloudflare names are built from it, so use lowercase letters, digits and dashes (at most 40)`,
    );
  }
  const isPreview = isPreviewStack(stack);

  const accountId = r.require(
    "accountId",
    accountIdSchema,
    "for every stack",
    `pulumi config set ${key("accountId")} <32-hex account id>`,
  );

  let environment: Environment = "dev";
  const explicitEnvironment = r.read("policyEnvironment", z.enum(ENVIRONMENTS));
  if (explicitEnvironment) environment = explicitEnvironment;
  else if (!r.isSet("policyEnvironment")) {
    try {
      environment = environmentForStack(stack);
    } catch {
      r.fail("policyEnvironment", `required for stack "${stack}" (one of ${ENVIRONMENTS.join(", ")})`);
    }
  }
  if (stack === "prod" && environment !== "prod") {
    r.fail("policyEnvironment", `the prod stack must use the prod policy, not "${environment}"`);
  }

  // Login provider. The mock is a development switch: it is the default only where nobody outside can
  // reach real data (dev, previews, whose staging policy binds no mock identity), and refused in prod.
  const providerDefault: LoginProvider | undefined = stack === "dev" || isPreview ? "mock" : undefined;
  const provider = r.isSet("loginProvider")
    ? r.read("loginProvider", z.enum(LOGIN_PROVIDERS))
    : (providerDefault ?? r.fail("loginProvider", `required for stack "${stack}" (${LOGIN_PROVIDERS.join(" | ")})`));
  if (provider === "mock" && environment === "prod") {
    // SECURITY: the mock login lets anyone claim any identity. Production must never run it.
    r.fail("loginProvider", '"mock" is refused for the prod policy environment');
  }

  const accessTeam = r.read("accessTeam", accessTeamSchema);
  const accessTeamDomain = accessTeam
    ? accessTeam.endsWith(".cloudflareaccess.com")
      ? accessTeam
      : `${accessTeam}.cloudflareaccess.com`
    : undefined;
  const login = provider === undefined ? { provider: "mock" as const } : parseLogin(r, provider);

  const allowList = (emailsKey: string, domainsKey: string): AccessAllowList => ({
    emails: r.read(emailsKey, emailList, { json: true }) ?? [],
    emailDomains: r.read(domainsKey, domainList, { json: true }) ?? [],
  });
  const accessLogin = allowList("accessLoginEmails", "accessLoginEmailDomains");
  const admin = allowList("adminEmails", "adminEmailDomains");
  const adminAccess = admin.emails.length + admin.emailDomains.length > 0 ? admin : undefined;
  // The Worker verifies the Access JWT on /admin against the team's certificates, so it needs the team
  // (its own rule: HATAGO_ADMIN_ACCESS_AUD without HATAGO_ACCESS_TEAM_DOMAIN is refused, and a refused
  // configuration answers 503 to every request). The access login names the team already.
  if (adminAccess && !r.isSet("accessTeam") && provider !== "access") {
    r.fail(
      "accessTeam",
      `required when ${key("adminEmails")} or ${key("adminEmailDomains")} is set (the Worker checks Access's sign-in on /admin against the team, e.g. acme)`,
    );
  }

  // Hosting: a custom domain on a zone in the account, or the account's workers.dev subdomain.
  const domain = r.read("domain", hostnameSchema);
  const subdomain = r.read("workersDevSubdomain", subdomainSchema);
  let hosting: Hosting = { kind: "workers-dev", hostname: "invalid.workers.dev", subdomain: "invalid" };
  if (domain !== undefined) {
    if (isPreview) r.fail("domain", "preview stacks always use workers.dev; remove the domain");
    hosting = { kind: "custom-domain", hostname: domain };
  } else if (subdomain !== undefined) {
    hosting = { kind: "workers-dev", subdomain, hostname: `${namesFor(stack).worker}.${subdomain}.workers.dev` };
  } else if (!r.isSet("domain") && !r.isSet("workersDevSubdomain")) {
    r.fail(
      "workersDevSubdomain",
      `required when ${key("domain")} is not set (the <name> of your account's <name>.workers.dev, from the Workers dashboard)`,
    );
  }
  const baseUrl = `https://${hosting.hostname}`;

  const origins = r.read("allowedOrigins", stringList, { json: true }) ?? [];
  for (const origin of origins) {
    if (!isOrigin(origin, environment)) {
      r.fail(
        "allowedOrigins",
        `"${origin}" is not an https origin (scheme://host[:port], nothing after; plain http only for a loopback host in dev)`,
      );
    }
  }
  const allowedOrigins = [...new Set(origins)].filter((o) => o !== baseUrl);

  const defaults = CONTAINER_DEFAULTS[isPreview ? "preview" : environment];
  const instanceType = r.read("instanceType", z.enum(INSTANCE_TYPES)) ?? defaults.instanceType;
  const concurrentUsers =
    r.read("expectedConcurrentUsers", z.coerce.number().int().min(1).max(MAX_INSTANCES_LIMIT)) ??
    defaults.concurrentUsers;
  // An explicit maxInstances wins (an account limit, a budget); otherwise it follows the catalog.
  const maxInstances =
    r.read("maxInstances", z.coerce.number().int().min(1).max(MAX_INSTANCES_LIMIT, `at most ${MAX_INSTANCES_LIMIT}`)) ??
    containersNeeded(concurrentUsers);

  const production = environment === "prod";
  const protectRaw = r.read("protectData", z.enum(["true", "false"]));
  const protectData = protectRaw === undefined ? production : protectRaw === "true";
  if (production && !protectData) r.fail("protectData", "production data is always protected; remove the setting");
  if (isPreview && protectData) r.fail("protectData", "preview stacks are destroyed when the pull request closes");

  const timings: Partial<Record<TimingKey, number>> = {};
  for (const name of Object.keys(TIMING_VARIABLES) as TimingKey[]) {
    const { min, max, zeroAllowed } = TIMING_RANGES[name];
    const range = `${zeroAllowed ? "0 (none) or " : ""}whole seconds from ${min} to ${max}`;
    const seconds = r.read(
      name,
      z.coerce
        .number()
        .int(range)
        .refine((n) => (n === 0 && zeroAllowed) || (n >= min && n <= max), range),
    );
    if (seconds !== undefined) timings[name] = seconds;
  }

  const serverSecrets = readServerSecrets(r, source);
  const connections = readConnections(r, source, { environment, isPreview });

  if (r.problems.length > 0) throw new ConfigError(stack, r.problems);
  return {
    stack,
    names: namesFor(stack),
    accountId: accountId ?? "",
    environment,
    isPreview,
    protectData,
    login,
    accessTeamDomain,
    accessLogin,
    adminAccess,
    hosting,
    baseUrl,
    allowedOrigins,
    container: { instanceType, maxInstances, concurrentUsers },
    timings,
    serverSecrets,
    connections,
  };
}

/** The login provider's own settings. */
function parseLogin(r: ConfigReader, provider: LoginProvider): LoginConfig {
  const when = `when loginProvider is "${provider}"`;
  switch (provider) {
    case "mock":
      return { provider };
    case "github":
      return {
        provider,
        clientId:
          r.require(
            "githubClientId",
            githubClientIdSchema,
            when,
            `pulumi config set ${r.key("githubClientId")} <id>`,
          ) ?? "",
        clientSecret: r.requireSecret("githubClientSecret", when, secretValueSchema),
        orgAllowlist: r.read("githubOrgAllowlist", z.array(githubOrgSchema), { json: true }) ?? [],
      };
    case "access":
      if (!r.isSet("accessTeam")) r.fail("accessTeam", `required ${when} (your Zero Trust team name, e.g. acme)`);
      return { provider };
    case "oidc": {
      const issuer = r.require("oidcIssuer", issuerSchema, when, "the issuer URL, https://…");
      const clientId = r.requireSecret("oidcClientId", when, oidcClientIdSchema);
      const clientSecret = r.requireSecret("oidcClientSecret", when, secretValueSchema);
      const scopes = r.read("oidcScopes", z.array(scopeSchema), { json: true }) ?? [];
      if (scopes.length > 0 && !scopes.includes("openid")) r.fail("oidcScopes", "must include openid");
      return {
        provider,
        issuer: issuer ?? "",
        clientId,
        clientSecret,
        scopes,
        groupsClaim: r.read("oidcGroupsClaim", z.string().regex(/^[A-Za-z0-9_:.-]{1,128}$/, "a claim name")),
      };
    }
  }
}

/** The Worker's own rule (worker/config.ts): https, or http on a loopback host in dev. */
function isOrigin(value: string, environment: Environment): boolean {
  const url = URL.parse(value);
  if (!url || url.origin !== value) return false;
  // The Worker reads HATAGO_ALLOWED_ORIGINS as a comma-separated list: a host of DNS characters only.
  if (!/^(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(url.hostname)) return false;
  if (url.protocol === "https:") return true;
  const loopback = url.hostname === "localhost" || url.hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(url.hostname);
  return url.protocol === "http:" && loopback && environment === "dev";
}
