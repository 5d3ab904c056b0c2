import type { LoginConfig } from "../config.ts";
import type { UpstreamLogin } from "./login.types.ts";
import { oidcLogin } from "./oidc.ts";

/** What we ask Access for: `groups` puts the person's identity-provider groups in the ID token. */
const ACCESS_SCOPES = ["openid", "email", "profile", "groups"] as const;

/**
 * Cloudflare Access as the login: a SaaS application of type OIDC in Access, used as any OpenID provider.
 * Its issuer is `https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client id>` (config.ts).
 * Principal `access:<sub>`; groups from the `groups` claim as `group:access:<name>`.
 */
export function accessLogin(config: Extract<LoginConfig, { provider: "access" }>, publicUrl: string): UpstreamLogin {
  return oidcLogin(
    { issuer: config.issuer, clientId: config.clientId, clientSecret: config.clientSecret, scopes: ACCESS_SCOPES },
    {
      provider: "access",
      label: "Cloudflare Access",
      callbackPath: "/login/access/callback",
      groupsClaim: "groups",
      principalOf: (sub) => `access:${sub}`,
      groupSubjectOf: (name) => `group:access:${name}`,
      // SECURITY: Access issues an ID token only for a person its policy admitted, with the email address
      // its identity provider (or its one-time PIN, sent to that address) authenticated. Access may omit
      // `email_verified`, so its silence counts as verified; an explicit `false` never does.
      emailVerifiedWhenUnstated: true,
    },
    publicUrl,
  );
}
