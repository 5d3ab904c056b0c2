import { z } from "zod";
import type { LoginConfig } from "../config.ts";
import type { LoginIdentity } from "../oauth/props.ts";
import { readOAuthCallback } from "./callback-query.ts";
import { LoginError, savedData } from "./errors.ts";
import type { FinishLogin, UpstreamLogin, UpstreamStart } from "./login.types.ts";
import { authorizationUrl, exchangeCode, newCodeVerifier, type UpstreamClient } from "./oauth-client.ts";
import { getJson } from "./upstream-http.ts";

/** GitHub's fixed endpoints (github.com; GitHub Enterprise Server is not supported). */
const AUTHORIZE_ENDPOINT = "https://github.com/login/oauth/authorize";
const TOKEN_ENDPOINT = "https://github.com/login/oauth/access_token";
const API = "https://api.github.com";
/**
 * read:user for the numeric id and login, user:email for verified addresses, read:org for org and team
 * membership (including private membership). Nothing that can write.
 */
const SCOPES = ["read:user", "user:email", "read:org"] as const;
/** GitHub pages lists at 100; more orgs or teams than that are not read (and only 64 groups are kept anyway). */
const PAGE = "per_page=100";

const Data = z.object({ verifier: z.string().min(43).max(128) });
const TokenResponse = z.object({ access_token: z.string().min(1) });
const User = z.object({
  id: z.number().int().positive(),
  login: z.string().min(1).max(39),
  name: z.string().nullish(),
});
const Emails = z.array(z.object({ email: z.string(), verified: z.boolean(), primary: z.boolean() }));
const Orgs = z.array(z.object({ login: z.string() }));
const Teams = z.array(z.object({ slug: z.string(), organization: z.object({ login: z.string() }) }));

type GitHubConfig = Extract<LoginConfig, { provider: "github" }>;

export function githubLogin(config: GitHubConfig, publicUrl: string): UpstreamLogin {
  const callbackPath = "/login/github/callback";
  const client: UpstreamClient = {
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    redirectUri: `${publicUrl}${callbackPath}`,
  };
  return {
    provider: "github",
    label: "GitHub",
    callbackPath,
    callbackMethod: "GET",

    async start(): Promise<UpstreamStart> {
      const verifier = newCodeVerifier();
      return {
        data: { verifier },
        url: (state) => authorizationUrl(client, AUTHORIZE_ENDPOINT, { state, verifier, scopes: SCOPES }),
      };
    },

    async readCallback(request: Request): Promise<FinishLogin> {
      const callback = readOAuthCallback(request);
      return async (raw) => {
        if ("error" in callback)
          throw new LoginError("denied", "Sign-in was declined at GitHub", { reason: "upstream_declined" });
        const data = savedData(Data, raw);
        const token = await exchangeCode(client, TOKEN_ENDPOINT, callback.code, data.verifier, TokenResponse);
        // SECURITY: the GitHub token is used for these reads only and then dropped: never stored, never forwarded.
        return identityOf(token.access_token, config.orgAllowlist);
      };
    },
  };
}

async function identityOf(accessToken: string, orgAllowlist: readonly string[]): Promise<LoginIdentity> {
  const headers = {
    Authorization: `Bearer ${accessToken}`,
    Accept: "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
  };
  const [user, emails, orgs, teams] = await Promise.all([
    getJson(`${API}/user`, User, "GitHub's user API", headers),
    getJson(`${API}/user/emails?${PAGE}`, Emails, "GitHub's email API", headers),
    getJson(`${API}/user/orgs?${PAGE}`, Orgs, "GitHub's organisation API", headers),
    getJson(`${API}/user/teams?${PAGE}`, Teams, "GitHub's team API", headers),
  ]);

  const orgLogins = new Set([...orgs.map((o) => o.login), ...teams.map((t) => t.organization.login)].map(lower));
  if (orgAllowlist.length > 0 && !orgAllowlist.some((org) => orgLogins.has(org))) {
    throw new LoginError("denied", "This GitHub account is not a member of an organisation allowed to sign in", {
      reason: "org_not_allowed",
    });
  }
  const groups = [
    ...[...orgLogins].map((org) => `group:github:${org}`),
    ...teams.map((t) => `group:github:${lower(t.organization.login)}/${lower(t.slug)}`),
  ];
  // SECURITY: only a verified address may become an `email:` subject. Prefer the primary one.
  const verified = emails.filter((e) => e.verified);
  const email = (verified.find((e) => e.primary) ?? verified[0])?.email ?? null;
  return {
    provider: "github",
    // The numeric id, never the login: logins can be renamed and then claimed by someone else.
    principal: `github:${user.id}`,
    displayName: user.login,
    verifiedEmail: email,
    groups,
  };
}

const lower = (s: string) => s.toLowerCase();
