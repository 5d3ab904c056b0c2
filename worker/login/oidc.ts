import { z } from "zod";
import type { LoginConfig } from "../config.ts";
import type { LoginIdentity } from "../oauth/props.ts";
import { readOAuthCallback } from "./callback-query.ts";
import { DiscoveryCache } from "./discovery.ts";
import { LoginError, savedData } from "./errors.ts";
import { IdTokenVerifier } from "./id-token.ts";
import type { FinishLogin, UpstreamLogin, UpstreamStart } from "./login.types.ts";
import { authorizationUrl, exchangeCode, newCodeVerifier, randomToken, type UpstreamClient } from "./oauth-client.ts";

/** Group claims longer than this are not read (the props keep 64 groups at most anyway). */
const MAX_GROUP_CLAIM_ENTRIES = 1_000;

/** How one OpenID provider's identities become our subjects. `access` and generic `oidc` differ only here. */
export interface OidcProfile {
  readonly provider: "access" | "oidc";
  readonly label: string;
  readonly callbackPath: string;
  readonly groupsClaim: string;
  principalOf(sub: string): string;
  groupSubjectOf(name: string): string;
  /** Whether an `email` without an `email_verified` claim counts as verified (see access.ts). Never when it is `false`. */
  readonly emailVerifiedWhenUnstated: boolean;
}

export interface OidcClientSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
}

const Data = z.object({ verifier: z.string().min(43).max(128), nonce: z.string().min(32).max(128) });
const TokenResponse = z.object({ id_token: z.string().min(1).max(16_384) });
const GroupClaim = z.array(z.union([z.string(), z.object({ name: z.string() })])).max(MAX_GROUP_CLAIM_ENTRIES);

/**
 * Sign-in with any OpenID provider from its issuer URL (discovery document fetched and cached):
 * authorization code with PKCE (S256) and a nonce, client_secret_basic at the token endpoint, then
 * the ID token verified with jose. The provider's access token is never used or kept.
 */
export function oidcLogin(settings: OidcClientSettings, profile: OidcProfile, publicUrl: string): UpstreamLogin {
  const client: UpstreamClient = {
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    redirectUri: `${publicUrl}${profile.callbackPath}`,
  };
  const discovery = new DiscoveryCache(settings.issuer);
  const verifier = new IdTokenVerifier(settings.issuer, settings.clientId);

  return {
    provider: profile.provider,
    label: profile.label,
    callbackPath: profile.callbackPath,
    callbackMethod: "GET",

    async start(): Promise<UpstreamStart> {
      const doc = await discovery.get();
      const codeVerifier = newCodeVerifier();
      const nonce = randomToken();
      return {
        data: { verifier: codeVerifier, nonce },
        url: (state) =>
          authorizationUrl(client, doc.authorization_endpoint, {
            state,
            verifier: codeVerifier,
            scopes: settings.scopes,
            extra: { nonce },
          }),
      };
    },

    async readCallback(request: Request): Promise<FinishLogin> {
      const callback = readOAuthCallback(request);
      return async (raw) => {
        if ("error" in callback) {
          throw new LoginError("denied", `Sign-in was declined at ${profile.label}`, { reason: "upstream_declined" });
        }
        const data = savedData(Data, raw);
        const doc = await discovery.get();
        const tokens = await exchangeCode(client, doc.token_endpoint, callback.code, data.verifier, TokenResponse);
        const claims = await verifier.verify(tokens.id_token, doc, data.nonce);
        return identityOf(claims, profile);
      };
    },
  };
}

function identityOf(claims: Awaited<ReturnType<IdTokenVerifier["verify"]>>, profile: OidcProfile): LoginIdentity {
  const verified =
    claims.email_verified === true || (claims.email_verified === undefined && profile.emailVerifiedWhenUnstated);
  const groupClaim = GroupClaim.safeParse(claims.raw[profile.groupsClaim]);
  const groupNames = groupClaim.success ? groupClaim.data.map((g) => (typeof g === "string" ? g : g.name)) : [];
  if (!groupClaim.success && claims.raw[profile.groupsClaim] !== undefined) {
    console.warn(`login: the ${profile.groupsClaim} claim is not a list of group names; ignoring it`);
  }
  return {
    provider: profile.provider,
    principal: profile.principalOf(claims.sub),
    displayName: claims.name ?? claims.preferred_username ?? claims.email ?? claims.sub,
    verifiedEmail: verified && claims.email !== undefined ? claims.email : null,
    groups: groupNames.map((name) => profile.groupSubjectOf(name)),
  };
}

/** The generic provider: `oidc:<issuer host>:<sub>`, groups `group:oidc:<issuer host>:<name>`. */
export function genericOidcLogin(config: Extract<LoginConfig, { provider: "oidc" }>, publicUrl: string): UpstreamLogin {
  const host = new URL(config.issuer).host.toLowerCase();
  return oidcLogin(
    config,
    {
      provider: "oidc",
      label: host,
      callbackPath: "/login/oidc/callback",
      groupsClaim: config.groupsClaim,
      principalOf: (sub) => `oidc:${host}:${sub}`,
      groupSubjectOf: (name) => `group:oidc:${host}:${name}`,
      // SECURITY: a generic provider may hand out addresses nobody proved to own; require the claim.
      emailVerifiedWhenUnstated: false,
    },
    publicUrl,
  );
}
