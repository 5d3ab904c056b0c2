import * as pulumi from "@pulumi/pulumi";
import { type StackConfig, TIMING_VARIABLES, type TimingKey } from "./config.ts";

/**
 * The Worker's environment: plain variables (in the generated wrangler config) and secrets (sent as
 * secret bindings on the deploy command's stdin). The names are the ones the Worker reads.
 */

/**
 * Where each upstream login returns (worker/login/*.ts; a test checks they agree). Registered with the
 * upstream as the only redirect URI.
 */
export const CALLBACK_PATHS = {
  github: "/login/github/callback",
  access: "/login/access/callback",
  oidc: "/login/oidc/callback",
} as const;

export interface AccessOidcApp {
  readonly clientId: pulumi.Output<string>;
  readonly clientSecret: pulumi.Output<string>;
}

export interface WorkerEnvInputs {
  readonly config: StackConfig;
  /** The Access SaaS (OIDC) application, when the login provider is `access`. */
  readonly accessOidc: AccessOidcApp | undefined;
  /** The AUD tag of the Access application in front of /admin, when there is one. */
  readonly adminAccessAud: pulumi.Output<string> | undefined;
  readonly bridgeSecret: pulumi.Output<string>;
}

export interface WorkerEnv {
  readonly vars: pulumi.Output<Record<string, string>>;
  /** Name → value; the whole map is a Pulumi secret. */
  readonly secrets: pulumi.Output<Record<string, string>>;
}

export function workerEnv(i: WorkerEnvInputs): WorkerEnv {
  const { config, accessOidc } = i;
  const login = config.login;
  const plain: Record<string, pulumi.Input<string>> = {
    HATAGO_ENVIRONMENT: config.environment,
    // The OAuth issuer and the audience of every token: the one URL the gateway answers on.
    HATAGO_PUBLIC_URL: config.baseUrl,
    HATAGO_LOGIN_PROVIDER: login.provider,
  };
  if (config.allowedOrigins.length > 0) plain.HATAGO_ALLOWED_ORIGINS = config.allowedOrigins.join(",");
  const secret: Record<string, pulumi.Input<string>> = {
    // SECURITY: signs the per-request credential the Worker gives the bridge container.
    HATAGO_BRIDGE_SECRET: i.bridgeSecret,
  };

  for (const [key, seconds] of Object.entries(config.timings)) {
    plain[TIMING_VARIABLES[key as TimingKey]] = String(seconds);
  }
  if (config.accessTeamDomain) plain.HATAGO_ACCESS_TEAM_DOMAIN = config.accessTeamDomain;
  if (i.adminAccessAud) plain.HATAGO_ADMIN_ACCESS_AUD = i.adminAccessAud;

  if (login.provider === "github") {
    plain.HATAGO_GITHUB_CLIENT_ID = login.clientId;
    if (login.orgAllowlist.length > 0) plain.HATAGO_GITHUB_ORG_ALLOWLIST = login.orgAllowlist.join(",");
    secret.HATAGO_GITHUB_CLIENT_SECRET = login.clientSecret;
  } else if (login.provider === "oidc") {
    plain.HATAGO_OIDC_ISSUER = login.issuer;
    if (login.scopes.length > 0) plain.HATAGO_OIDC_SCOPES = login.scopes.join(" ");
    if (login.groupsClaim) plain.HATAGO_OIDC_GROUPS_CLAIM = login.groupsClaim;
    secret.HATAGO_OIDC_CLIENT_ID = login.clientId;
    secret.HATAGO_OIDC_CLIENT_SECRET = login.clientSecret;
  } else if (login.provider === "access") {
    if (!accessOidc || !config.accessTeamDomain) {
      throw new Error("workerEnv: the access login provider needs the Access SaaS application and team domain");
    }
    // The Worker derives the issuer from the team domain and the client id. The client id is not a
    // secret (it is in every authorize URL and in the issuer): a plain variable.
    plain.HATAGO_ACCESS_CLIENT_ID = pulumi.unsecret(accessOidc.clientId);
    secret.HATAGO_ACCESS_CLIENT_SECRET = accessOidc.clientSecret;
  }

  // Connections (issue 17): providers' settings are plain; their client ids and secrets and the key ring are not.
  Object.assign(plain, config.connections.vars);

  return {
    vars: pulumi.output(plain),
    // The catalog servers' secrets ride along as Worker secrets; each container receives only its own
    // server's (worker/bridge/container.ts).
    secrets: pulumi.secret(
      pulumi
        .all([pulumi.output(secret), config.serverSecrets, config.connections.secrets])
        .apply(([own, servers, connections]) => ({ ...servers, ...connections, ...own })),
    ),
  };
}
