import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { CapturedSecret } from "../captured-secret.ts";
import type { AccessAllowList, StackConfig } from "../config.ts";
import { type AccessOidcApp, CALLBACK_PATHS } from "../worker-env.ts";

/** How long an Access session for the admin path lasts before Access asks again. */
const ADMIN_SESSION_DURATION = "8h";
/** Lifetime of the access token the SaaS app issues; the gateway only uses it to read the ID token. */
const OIDC_ACCESS_TOKEN_LIFETIME = "5m";

export const ADMIN_PATH = "/admin";

/** Access policy rules for an allow-list; an empty list means everyone the Access org authenticates. */
function includesFor(allow: AccessAllowList): cloudflare.types.input.ZeroTrustAccessPolicyInclude[] {
  const rules: cloudflare.types.input.ZeroTrustAccessPolicyInclude[] = [
    ...allow.emails.map((email) => ({ email: { email } })),
    ...allow.emailDomains.map((domain) => ({ emailDomain: { domain } })),
  ];
  return rules.length > 0 ? rules : [{ everyone: {} }];
}

/**
 * Cloudflare Access, for two jobs:
 * - login (provider `access`): a SaaS OIDC application; the gateway is its client (authorization code
 *   with PKCE), and its client id and secret go to the Worker.
 * - `/admin`: a self-hosted application in front of the admin path, so an admin page is behind both
 *   Access and the gateway's own `admin` level. Only that path: MCP clients hold the gateway's bearer
 *   tokens and cannot complete an Access login, so `/mcp`, `/.well-known/*` and the OAuth endpoints
 *   stay outside Access.
 */
export class AccessApplications extends pulumi.ComponentResource {
  /** The SaaS app's client credentials; undefined unless the login provider is `access`. */
  readonly oidc: AccessOidcApp | undefined;
  /** AUD tag of the admin application (to verify `Cf-Access-Jwt-Assertion`); undefined without one. */
  readonly adminAud: pulumi.Output<string> | undefined;

  constructor(name: string, args: { readonly config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("hatago:access:AccessApplications", name, {}, opts);
    const { config } = args;
    const accountId = config.accountId;

    if (config.login.provider === "access") {
      const loginPolicy = new cloudflare.ZeroTrustAccessPolicy(
        `${name}-login-policy`,
        {
          accountId,
          name: `${config.names.display} sign-in`,
          decision: "allow",
          includes: includesFor(config.accessLogin),
        },
        { parent: this },
      );
      const app = new cloudflare.ZeroTrustAccessApplication(
        `${name}-login-oidc`,
        {
          accountId,
          name: `${config.names.display} sign-in`,
          type: "saas",
          appLauncherVisible: false,
          saasApp: {
            authType: "oidc",
            // SECURITY: exactly one redirect URI, this stack's own callback.
            redirectUris: [`${config.baseUrl}${CALLBACK_PATHS.access}`],
            grantTypes: ["authorization_code_with_pkce"],
            scopes: ["openid", "email", "profile", "groups"],
            accessTokenLifetime: OIDC_ACCESS_TOKEN_LIFETIME,
          },
          policies: [{ id: loginPolicy.id, precedence: 1 }],
        },
        { parent: this },
      );
      // SECURITY: returned only when the app is created. Captured once, in a resource an update of the
      // app cannot overwrite (captured-secret.ts); secret, so encrypted in state and in no plain output.
      const clientSecret = new CapturedSecret(
        `${name}-login-client-secret`,
        { owner: app.id, value: app.saasApp.apply((s) => s?.clientSecret ?? "") },
        { parent: this },
      );
      this.oidc = {
        clientId: app.saasApp.apply((s) => s?.clientId ?? ""),
        clientSecret: pulumi.secret(clientSecret.value),
      };
    }

    if (config.adminAccess) {
      const adminPolicy = new cloudflare.ZeroTrustAccessPolicy(
        `${name}-admin-policy`,
        {
          accountId,
          name: `${config.names.display} admin`,
          decision: "allow",
          includes: includesFor(config.adminAccess),
        },
        { parent: this },
      );
      const adminApp = new cloudflare.ZeroTrustAccessApplication(
        `${name}-admin`,
        {
          accountId,
          name: `${config.names.display} admin`,
          type: "self_hosted",
          destinations: [{ type: "public", uri: `${config.hosting.hostname}${ADMIN_PATH}` }],
          sessionDuration: ADMIN_SESSION_DURATION,
          appLauncherVisible: false,
          policies: [{ id: adminPolicy.id, precedence: 1 }],
        },
        { parent: this },
      );
      this.adminAud = adminApp.aud;
    }

    this.registerOutputs({ oidcClientId: this.oidc?.clientId, adminAud: this.adminAud });
  }
}
