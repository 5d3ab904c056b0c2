import { ENVIRONMENTS, type Environment } from "../policies/policy.types.ts";

/**
 * The Worker's settings, parsed in one place. Every `HATAGO_*` variable and secret is read here and
 * nowhere else; worker/README.md has the reference table. A problem names the setting at fault and
 * never echoes its value (some are secrets).
 */

export const LOGIN_PROVIDERS = ["mock", "github", "access", "oidc"] as const;
export type LoginProviderId = (typeof LOGIN_PROVIDERS)[number];

/** Defaults for token lifetimes (seconds). */
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 3_600; // one hour: the library's default; permissions are re-read from D1 on every call anyway
export const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 2_592_000; // 30 days: a person signs in again monthly
export const DEFAULT_CLIENT_REGISTRATION_TTL_SECONDS = 7_776_000; // 90 days, renewed while the client is in use
/** KV refuses expirations under 60 s, so no lifetime may be shorter (workers-oauth-provider enforces it too). */
const MIN_TTL_SECONDS = 60;
const MAX_ACCESS_TOKEN_TTL_SECONDS = 86_400; // a day: longer-lived bearer tokens defeat revocation
const MAX_LONG_TTL_SECONDS = 31_536_000; // a year

export const DEFAULT_OIDC_SCOPES = ["openid", "email", "profile"] as const;
export const DEFAULT_OIDC_GROUPS_CLAIM = "groups";

export type LoginConfig =
  | { readonly provider: "mock" }
  | {
      readonly provider: "github";
      readonly clientId: string;
      readonly clientSecret: string;
      /** Lowercase org logins; empty = any GitHub user may sign in (the policy still decides what they get). */
      readonly orgAllowlist: readonly string[];
    }
  | {
      readonly provider: "access";
      /** `<team>.cloudflareaccess.com` */
      readonly teamDomain: string;
      readonly clientId: string;
      readonly clientSecret: string;
      /** The SaaS application's OIDC issuer, derived from the team domain and client id. */
      readonly issuer: string;
    }
  | {
      readonly provider: "oidc";
      readonly issuer: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scopes: readonly string[];
      readonly groupsClaim: string;
    };

export interface TokenLifetimes {
  readonly accessTokenTtlSeconds: number;
  /** 0 = no refresh tokens. */
  readonly refreshTokenTtlSeconds: number;
  readonly clientRegistrationTtlSeconds: number;
}

export interface Config {
  readonly environment: Environment;
  /** The canonical origin (`https://mcp.example.com`): OAuth issuer, and the audience (RFC 8707) of every token. */
  readonly publicUrl: string;
  readonly login: LoginConfig;
  readonly tokens: TokenLifetimes;
  /** Browser origins, besides `publicUrl`, that may call the MCP endpoints (used by the gateway's Origin check). */
  readonly allowedOrigins: readonly string[];
  readonly gateway: GatewaySettings;
  /**
   * When a Cloudflare Access application guards `/admin` (Pulumi creates one): its team and audience tag.
   * The Worker then also verifies the Access JWT on every admin request, not only the edge.
   */
  readonly adminAccess: { readonly teamDomain: string; readonly aud: string } | null;
  /** Upstream accounts people connect (issue 17, worker/connect/): none configured = the feature is off. */
  readonly connect: ConnectConfig;
  /** `subscriptions/listen` clocks when set (worker/mcp/modern/listen.ts has the defaults). */
  readonly listen: ListenSettings;
}

/**
 * How often an open listen re-reads the caller's standing and grants (one D1 read each time: a blocked
 * person's stream ends within it) and writes a keep-alive (which also bounds how long a stream its client
 * left is kept). Absent: the defaults in worker/mcp/modern/listen.ts.
 */
export interface ListenSettings {
  readonly recheckMs?: number;
  readonly keepAliveMs?: number;
}

export const CONNECT_PROVIDER_KINDS = ["github", "oauth2", "mock"] as const;
export type ConnectProviderKind = (typeof CONNECT_PROVIDER_KINDS)[number];

/** One upstream provider people connect their own account of (distinct from the login provider). */
export interface ConnectProviderConfig {
  /** Catalog entries name it (`connection.provider`); in URLs: `/connect/<id>`. */
  readonly id: string;
  readonly kind: ConnectProviderKind;
  /** Shown to people: "Connect your GitHub account". */
  readonly label: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Empty when `issuer` is set: then both come from its discovery document (worker/connect/provider-client.ts). */
  readonly authorizationUrl: string;
  readonly tokenUrl: string;
  /** An OAuth 2.0 / OpenID provider named by its https issuer (`oauth2` only), or null. */
  readonly issuer: string | null;
  /** An upstream token endpoint that has not answered in this long has failed. */
  readonly timeoutMs: number;
}

export interface ConnectConfig {
  readonly providers: readonly ConnectProviderConfig[];
  /** The sealing key ring (worker/connect/token-seal.ts): the first seals, all open. Empty without providers. */
  readonly keys: readonly { readonly id: string; readonly raw: Uint8Array }[];
}

export interface GatewaySettings {
  /** Signs the per-request bridge credentials (container/src/contract.ts); the audit digest key derives from it. */
  readonly bridgeSecret: string;
  /**
   * UNSAFE, local development only: the URL of a bridge process, used instead of the Container binding.
   * Refused in production, and for any host but loopback.
   */
  readonly insecureDevBridgeUrl: string | null;
}

export interface ConfigProblem {
  readonly setting: string;
  readonly problem: string;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: Config; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/** Parses the Worker's env. Collects every problem rather than stopping at the first. */
export function parseConfig(env: object): ConfigResult {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const read = new Reader(env, problems);

  const environment = read.oneOf("HATAGO_ENVIRONMENT", ENVIRONMENTS);
  const publicUrl = read.origin("HATAGO_PUBLIC_URL", environment);
  const login = parseLogin(read, environment, warnings);
  const tokens: TokenLifetimes = {
    accessTokenTtlSeconds: read.seconds("HATAGO_ACCESS_TOKEN_TTL_SECONDS", DEFAULT_ACCESS_TOKEN_TTL_SECONDS, {
      max: MAX_ACCESS_TOKEN_TTL_SECONDS,
    }),
    refreshTokenTtlSeconds: read.seconds("HATAGO_REFRESH_TOKEN_TTL_SECONDS", DEFAULT_REFRESH_TOKEN_TTL_SECONDS, {
      max: MAX_LONG_TTL_SECONDS,
      zeroAllowed: true,
    }),
    clientRegistrationTtlSeconds: read.seconds(
      "HATAGO_CLIENT_REGISTRATION_TTL_SECONDS",
      DEFAULT_CLIENT_REGISTRATION_TTL_SECONDS,
      { max: MAX_LONG_TTL_SECONDS },
    ),
  };
  const allowedOrigins = read.originList("HATAGO_ALLOWED_ORIGINS", environment);
  const gateway = parseGateway(read, environment, warnings);
  const adminAccess = parseAdminAccess(read, login);
  const connect = parseConnect(read, environment, publicUrl, warnings);
  const listen = parseListen(read);

  if (problems.length > 0 || environment === undefined || publicUrl === undefined || login === undefined || !gateway) {
    return { ok: false, problems };
  }
  return {
    ok: true,
    config: { environment, publicUrl, login, tokens, allowedOrigins, gateway, adminAccess, connect, listen },
    warnings,
  };
}

/** Listen clocks: a re-check at most every 5 min (a block must end a stream), a keep-alive at most every minute. */
const MAX_LISTEN_RECHECK_SECONDS = 300;
const MAX_LISTEN_KEEPALIVE_SECONDS = 60;

function parseListen(read: Reader): ListenSettings {
  const recheck = read.seconds("HATAGO_LISTEN_RECHECK_SECONDS", 0, { min: 1, max: MAX_LISTEN_RECHECK_SECONDS });
  const keepAlive = read.seconds("HATAGO_LISTEN_KEEPALIVE_SECONDS", 0, { min: 1, max: MAX_LISTEN_KEEPALIVE_SECONDS });
  return {
    ...(recheck > 0 ? { recheckMs: recheck * 1000 } : {}),
    ...(keepAlive > 0 ? { keepAliveMs: keepAlive * 1000 } : {}),
  };
}

/** An Access application's AUD tag: 64 lowercase hex characters. */
const ACCESS_AUD = /^[a-f0-9]{64}$/;

function parseAdminAccess(read: Reader, login: LoginConfig | undefined): Config["adminAccess"] {
  const aud = read.optional("HATAGO_ADMIN_ACCESS_AUD", ACCESS_AUD);
  if (aud === undefined) return null;
  // The Access login already names the team; otherwise the team domain is needed for the certificates.
  const teamDomain =
    login?.provider === "access" ? login.teamDomain : read.accessTeamDomain("HATAGO_ACCESS_TEAM_DOMAIN");
  return teamDomain === undefined ? null : { teamDomain, aud };
}

/** Bridge credentials need an HMAC key at least as long as the hash (container/src/contract.ts MIN_SECRET_BYTES). */
const MIN_BRIDGE_SECRET_BYTES = 32;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function parseGateway(
  read: Reader,
  environment: Environment | undefined,
  warnings: string[],
): GatewaySettings | undefined {
  const secret = read.raw("HATAGO_BRIDGE_SECRET");
  if (secret === undefined || new TextEncoder().encode(secret).byteLength < MIN_BRIDGE_SECRET_BYTES) {
    read.fail(
      "HATAGO_BRIDGE_SECRET",
      `is required: a random secret of at least ${MIN_BRIDGE_SECRET_BYTES} bytes, shared with the bridge`,
    );
    return undefined;
  }
  const devUrl = read.raw("HATAGO_INSECURE_DEV_BRIDGE_URL");
  if (devUrl === undefined) return { bridgeSecret: secret, insecureDevBridgeUrl: null };
  // SECURITY: this sends tool calls to a plain HTTP process instead of the isolated container.
  if (environment === "prod") {
    read.fail(
      "HATAGO_INSECURE_DEV_BRIDGE_URL",
      "is for local development only and is refused when HATAGO_ENVIRONMENT=prod",
    );
    return undefined;
  }
  const url = URL.parse(devUrl);
  if (
    url?.protocol !== "http:" ||
    !LOOPBACK_HOSTS.has(url.hostname) ||
    url.pathname !== "/" ||
    url.search ||
    url.hash
  ) {
    read.fail("HATAGO_INSECURE_DEV_BRIDGE_URL", "must be http://127.0.0.1:<port> (or localhost, [::1]) with no path");
    return undefined;
  }
  warnings.push(
    "HATAGO_INSECURE_DEV_BRIDGE_URL is set: tool calls go to a local bridge process, not a container, and the " +
      "Worker serves that bridge's state requests at /bridge-state/v1/ (dev only)",
  );
  return { bridgeSecret: secret, insecureDevBridgeUrl: url.origin };
}

function parseLogin(read: Reader, environment: Environment | undefined, warnings: string[]): LoginConfig | undefined {
  const provider = read.oneOf("HATAGO_LOGIN_PROVIDER", LOGIN_PROVIDERS);
  switch (provider) {
    case undefined:
      return undefined;
    case "mock":
      // SECURITY: the mock login lets anyone pick any identity. It exists for local development and tests.
      if (environment === "prod") {
        read.fail(
          "HATAGO_LOGIN_PROVIDER",
          "mock login is for local development and tests only and is refused when HATAGO_ENVIRONMENT=prod; choose github, access or oidc",
        );
        return undefined;
      }
      if (environment === "staging") warnings.push("HATAGO_LOGIN_PROVIDER=mock: anyone can sign in as anyone");
      return { provider: "mock" };
    case "github": {
      const clientId = read.required("HATAGO_GITHUB_CLIENT_ID", "when HATAGO_LOGIN_PROVIDER=github");
      const clientSecret = read.required("HATAGO_GITHUB_CLIENT_SECRET", "when HATAGO_LOGIN_PROVIDER=github");
      const orgAllowlist = read.list("HATAGO_GITHUB_ORG_ALLOWLIST", GITHUB_ORG, "GitHub organisation logins");
      if (clientId === undefined || clientSecret === undefined) return undefined;
      return { provider: "github", clientId, clientSecret, orgAllowlist: orgAllowlist.map((o) => o.toLowerCase()) };
    }
    case "access": {
      const teamDomain = read.accessTeamDomain("HATAGO_ACCESS_TEAM_DOMAIN");
      const clientId = read.required("HATAGO_ACCESS_CLIENT_ID", "when HATAGO_LOGIN_PROVIDER=access", OIDC_CLIENT_ID);
      const clientSecret = read.required("HATAGO_ACCESS_CLIENT_SECRET", "when HATAGO_LOGIN_PROVIDER=access");
      if (teamDomain === undefined || clientId === undefined || clientSecret === undefined) return undefined;
      const issuer = `https://${teamDomain}/cdn-cgi/access/sso/oidc/${clientId}`;
      return { provider: "access", teamDomain, clientId, clientSecret, issuer };
    }
    case "oidc": {
      const issuer = read.issuer("HATAGO_OIDC_ISSUER");
      const clientId = read.required("HATAGO_OIDC_CLIENT_ID", "when HATAGO_LOGIN_PROVIDER=oidc", OIDC_CLIENT_ID);
      const clientSecret = read.required("HATAGO_OIDC_CLIENT_SECRET", "when HATAGO_LOGIN_PROVIDER=oidc");
      const scopes = read.list("HATAGO_OIDC_SCOPES", OAUTH_SCOPE, "OAuth scope tokens", /[\s,]+/);
      const groupsClaim = read.optional("HATAGO_OIDC_GROUPS_CLAIM", CLAIM_NAME) ?? DEFAULT_OIDC_GROUPS_CLAIM;
      if (scopes.length > 0 && !scopes.includes("openid")) read.fail("HATAGO_OIDC_SCOPES", "must include openid");
      if (issuer === undefined || clientId === undefined || clientSecret === undefined) return undefined;
      return {
        provider: "oidc",
        issuer,
        clientId,
        clientSecret,
        scopes: scopes.length > 0 ? scopes : DEFAULT_OIDC_SCOPES,
        groupsClaim,
      };
    }
  }
}

const CONNECT_PROVIDER_ID = /^[a-z][a-z0-9-]{0,31}$/;
/** `<id>:<base64 of 32 bytes>`; ids are short names an operator picks (k1, 2026-11). */
const CONNECTION_KEY = /^([A-Za-z0-9._-]{1,32}):([A-Za-z0-9+/_-]{43}=?)$/;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000; // like the login's upstream requests (login/upstream-http.ts)
const GITHUB_AUTHORIZATION_URL = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token";

/** `HATAGO_CONNECT_<ID>_<NAME>`: the provider id upper-cased, `-` as `_`. */
export function connectSetting(id: string, name: string): string {
  return `HATAGO_CONNECT_${id.toUpperCase().replaceAll("-", "_")}_${name}`;
}

function parseConnect(
  read: Reader,
  environment: Environment | undefined,
  publicUrl: string | undefined,
  warnings: string[],
): ConnectConfig {
  const ids = [
    ...new Set(read.list("HATAGO_CONNECT_PROVIDERS", CONNECT_PROVIDER_ID, "provider ids ([a-z][a-z0-9-]*)")),
  ];
  if (ids.length === 0) return { providers: [], keys: [] };
  const providers: ConnectProviderConfig[] = [];
  for (const id of ids) {
    const kindSetting = connectSetting(id, "KIND");
    const kind = read.oneOf(kindSetting, CONNECT_PROVIDER_KINDS);
    const label = read.optional(connectSetting(id, "LABEL"), /^[^<>&"]{1,64}$/);
    const timeoutMs = Number(
      read.optional(connectSetting(id, "TIMEOUT_MS"), /^[0-9]{3,5}$/) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
    if (kind === undefined) continue;
    if (kind === "mock") {
      // SECURITY: the mock upstream lets anyone be anyone upstream. Local development and tests only.
      if (environment === "prod") {
        read.fail(
          kindSetting,
          "mock is for local development and tests only and is refused when HATAGO_ENVIRONMENT=prod",
        );
        continue;
      }
      if (environment === "staging") warnings.push(`${kindSetting}=mock: anyone can connect any upstream identity`);
      const base = `${publicUrl ?? ""}/connect/mock-upstream/${id}`;
      providers.push({
        id,
        kind,
        label: label ?? `${id} (mock upstream)`,
        clientId: "mock",
        clientSecret: "mock",
        authorizationUrl: `${base}/authorize`,
        tokenUrl: `${base}/token`,
        issuer: null,
        timeoutMs,
      });
      continue;
    }
    const when = `when ${kindSetting}=${kind}`;
    const clientId = read.required(connectSetting(id, "CLIENT_ID"), when, OIDC_CLIENT_ID);
    const clientSecret = read.required(connectSetting(id, "CLIENT_SECRET"), when);
    let authorizationUrl: string | undefined = GITHUB_AUTHORIZATION_URL;
    let tokenUrl: string | undefined = GITHUB_TOKEN_URL;
    let issuer: string | null = null;
    const issuerSetting = connectSetting(id, "ISSUER");
    if (kind === "oauth2" && read.raw(issuerSetting) !== undefined) {
      // By its issuer: the endpoints come from its discovery document, so they are not set as well.
      issuer = read.issuer(issuerSetting) ?? null;
      for (const name of ["AUTHORIZATION_URL", "TOKEN_URL"]) {
        if (read.raw(connectSetting(id, name)) !== undefined) {
          read.fail(connectSetting(id, name), `is not used with ${issuerSetting} (discovery gives the endpoints)`);
        }
      }
      authorizationUrl = "";
      tokenUrl = "";
      if (issuer === null) continue;
    } else if (kind === "oauth2") {
      authorizationUrl = read.endpoint(connectSetting(id, "AUTHORIZATION_URL"), environment);
      tokenUrl = read.endpoint(connectSetting(id, "TOKEN_URL"), environment);
    }
    if (!clientId || !clientSecret || authorizationUrl === undefined || tokenUrl === undefined) continue;
    providers.push({
      id,
      kind,
      label: label ?? (kind === "github" ? "GitHub" : id),
      clientId,
      clientSecret,
      authorizationUrl,
      tokenUrl,
      issuer,
      timeoutMs,
    });
  }
  return { providers, keys: parseConnectionKeys(read) };
}

function parseConnectionKeys(read: Reader): { id: string; raw: Uint8Array }[] {
  const setting = "HATAGO_CONNECTION_KEYS";
  const value = read.raw(setting);
  if (value === undefined) {
    read.fail(setting, "is required when HATAGO_CONNECT_PROVIDERS is set: <id>:<base64 of 32 random bytes>[,<older>]");
    return [];
  }
  const keys: { id: string; raw: Uint8Array }[] = [];
  for (const item of value.split(/\s*,\s*/)) {
    const match = CONNECTION_KEY.exec(item);
    const raw = match?.[2] ? decodeBase64(match[2]) : null;
    if (!match?.[1] || raw?.byteLength !== 32 || keys.some((k) => k.id === match[1])) {
      read.fail(setting, "must be a list of <id>:<base64 of 32 random bytes> with distinct ids");
      return [];
    }
    keys.push({ id: match[1], raw });
  }
  return keys;
}

function decodeBase64(text: string): Uint8Array | null {
  try {
    const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

const GITHUB_ORG = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
/** Client ids become part of URLs (the Access issuer path), so keep them to URL-safe characters. */
const OIDC_CLIENT_ID = /^[A-Za-z0-9._~-]{1,255}$/;
const OAUTH_SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
const CLAIM_NAME = /^[A-Za-z0-9_:.-]{1,128}$/;
const ACCESS_TEAM_DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,62})\.cloudflareaccess\.com$/;

/** Reads one setting at a time and records problems instead of throwing. */
class Reader {
  readonly #env: object;
  readonly #problems: ConfigProblem[];

  constructor(env: object, problems: ConfigProblem[]) {
    this.#env = env;
    this.#problems = problems;
  }

  fail(setting: string, problem: string): undefined {
    this.#problems.push({ setting, problem });
    return undefined;
  }

  /** The trimmed value, `undefined` when unset or blank; a non-string binding under this name is a problem. */
  raw(setting: string): string | undefined {
    const value: unknown = Reflect.get(this.#env, setting);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") return this.fail(setting, "must be a string variable or secret");
    const trimmed = value.trim();
    return trimmed === "" ? undefined : trimmed;
  }

  optional(setting: string, pattern: RegExp): string | undefined {
    const value = this.raw(setting);
    if (value !== undefined && !pattern.test(value))
      return this.fail(setting, `is not valid (expected ${pattern.source})`);
    return value;
  }

  required(setting: string, when: string, pattern?: RegExp): string | undefined {
    const value = this.raw(setting);
    if (value === undefined) return this.fail(setting, `is required ${when}`);
    if (pattern && !pattern.test(value)) return this.fail(setting, `is not valid (expected ${pattern.source})`);
    return value;
  }

  oneOf<T extends string>(setting: string, allowed: readonly T[]): T | undefined {
    const value = this.raw(setting);
    if (value === undefined) return this.fail(setting, `is required: one of ${allowed.join(", ")}`);
    const found = allowed.find((a) => a === value);
    return found ?? this.fail(setting, `must be one of ${allowed.join(", ")}`);
  }

  list(setting: string, item: RegExp, what: string, separator: RegExp = /\s*,\s*/): string[] {
    const value = this.raw(setting);
    if (value === undefined) return [];
    const items = value.split(separator).filter((s) => s !== "");
    const bad = items.filter((i) => !item.test(i));
    if (bad.length > 0)
      this.fail(setting, `must be a list of ${what}; ${bad.length} entr${bad.length === 1 ? "y is" : "ies are"} not`);
    return items.filter((i) => item.test(i));
  }

  /** A whole number of seconds from `min` (token lifetimes' 60 when absent) to `max`, or 0 where allowed. */
  seconds(setting: string, fallback: number, limits: { min?: number; max: number; zeroAllowed?: boolean }): number {
    const value = this.raw(setting);
    if (value === undefined) return fallback;
    const min = limits.min ?? MIN_TTL_SECONDS;
    const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
    const ok = (n === 0 && limits.zeroAllowed === true) || (n >= min && n <= limits.max);
    if (!ok) {
      const zero = limits.zeroAllowed ? "0 (none) or " : "";
      this.fail(setting, `must be ${zero}a whole number of seconds from ${min} to ${limits.max}`);
      return fallback;
    }
    return n;
  }

  origin(setting: string, environment: Environment | undefined): string | undefined {
    const value = this.raw(setting);
    if (value === undefined)
      return this.fail(setting, "is required: the public origin of this Worker, e.g. https://mcp.example.com");
    return this.#origin(setting, value, environment);
  }

  originList(setting: string, environment: Environment | undefined): string[] {
    const value = this.raw(setting);
    if (value === undefined) return [];
    const origins: string[] = [];
    for (const item of value.split(/\s*,\s*/).filter((s) => s !== "")) {
      const origin = this.#origin(setting, item, environment);
      if (origin !== undefined) origins.push(origin);
    }
    return origins;
  }

  #origin(setting: string, value: string, environment: Environment | undefined): string | undefined {
    const url = URL.parse(value);
    if (
      !url ||
      url.username ||
      url.password ||
      url.search ||
      url.hash ||
      (url.pathname !== "/" && url.pathname !== "")
    ) {
      return this.fail(setting, "must be an origin: scheme and host (and port), no path, query or fragment");
    }
    if (url.protocol === "https:") return url.origin;
    // SECURITY: plain http only for a loopback address in local development (OAuth 2.1 §1.5).
    if (url.protocol === "http:" && isLoopbackHost(url.hostname) && environment === "dev") return url.origin;
    return this.fail(
      setting,
      "must use https (plain http is accepted only for a loopback host when HATAGO_ENVIRONMENT=dev)",
    );
  }

  /** An upstream endpoint: https, or plain http to a loopback host when HATAGO_ENVIRONMENT=dev (a local fake). */
  endpoint(setting: string, environment: Environment | undefined): string | undefined {
    const value = this.raw(setting);
    if (value === undefined) return this.fail(setting, "is required for an oauth2 provider");
    const url = URL.parse(value);
    if (!url || url.username || url.password || url.hash)
      return this.fail(setting, "must be an absolute URL without credentials or fragment");
    if (url.protocol === "https:") return url.toString();
    // SECURITY: plain http only for a loopback address in local development (a fake upstream in tests).
    if (url.protocol === "http:" && isLoopbackHost(url.hostname) && environment === "dev") return url.toString();
    return this.fail(setting, "must use https (plain http only for a loopback host when HATAGO_ENVIRONMENT=dev)");
  }

  issuer(setting: string): string | undefined {
    const value = this.raw(setting);
    if (value === undefined) return this.fail(setting, "is required when HATAGO_LOGIN_PROVIDER=oidc");
    const url = URL.parse(value);
    if (url?.protocol !== "https:" || url.username || url.password || url.search || url.hash) {
      return this.fail(setting, "must be the provider's https issuer URL, without query or fragment");
    }
    // The issuer is compared exactly with the discovery document and ID tokens, so keep it as written.
    return value;
  }

  accessTeamDomain(setting: string): string | undefined {
    const value = this.raw(setting);
    if (value === undefined) return this.fail(setting, "is required when HATAGO_LOGIN_PROVIDER=access");
    const host = value
      .toLowerCase()
      .replace(/^https:\/\//, "")
      .replace(/\/$/, "");
    if (!ACCESS_TEAM_DOMAIN.test(host)) {
      return this.fail(setting, "must be your Access team domain, <team>.cloudflareaccess.com");
    }
    return host;
  }
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** One line per problem, for logs and the 503 page. */
export function describeProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.setting} ${p.problem}`).join("; ");
}
