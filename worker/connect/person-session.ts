import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { z } from "zod";
import { judgeStanding, loadStanding } from "../authz/standing.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { expiredHostCookie, hostCookie, readCookie } from "../http/cookies.ts";
import { HttpError } from "../http/errors.ts";
import { base64url, pkceChallenge, randomToken } from "../http/random.ts";
import { LoginError, type UpstreamLogin } from "../login/index.ts";
import { AuthProps, subjectsOf } from "../oauth/props.ts";
import { MCP_SCOPE } from "../oauth/routes.types.ts";

/**
 * Who is at `/connect`: a person signed in to this gateway in this browser. Signing in works like the admin
 * console's (worker/admin/console.routes.ts), as a first-party public OAuth client of this server with its own
 * callback, so `/connect` works for everyone even where an Access application guards `/admin`. The session is
 * that client's access token in a `__Host-` cookie; every request re-checks the person's standing (blocks).
 */
export const CONNECT_SESSION_COOKIE = "__Host-hatago-connect";
const SIGN_IN_COOKIE = "__Host-hatago-connect-signin";
const SIGN_IN_TTL_SECONDS = 600;
export const CONNECT_SIGN_IN_PATH = "/connect/sign-in";
export const CONNECT_SESSION_CALLBACK_PATH = "/connect/session/callback";
const CLIENT_KV_KEY = "hatago:connect-client";

export interface PersonSessionDeps {
  readonly publicUrl: string;
  readonly login: UpstreamLogin;
  oauth(env: Env): OAuthHelpers;
  token(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
}

export interface PersonSession {
  readonly props: AuthProps;
  readonly csrf: string;
}

async function clientId(oauth: OAuthHelpers, kv: KVNamespace, publicUrl: string): Promise<string> {
  const redirectUri = `${publicUrl}${CONNECT_SESSION_CALLBACK_PATH}`;
  const stored = await kv.get(CLIENT_KV_KEY);
  if (stored) {
    const client = await oauth.lookupClient(stored).catch(() => null);
    if (client?.tokenEndpointAuthMethod === "none" && client.redirectUris.join() === redirectUri) return stored;
  }
  const created = await oauth.createClient({
    clientName: "Hatago Auth connections",
    redirectUris: [redirectUri],
    tokenEndpointAuthMethod: "none",
    grantTypes: ["authorization_code"],
    responseTypes: ["code"],
  });
  await kv.put(CLIENT_KV_KEY, created.clientId);
  return created.clientId;
}

/**
 * Where a sign-in may lead: `/connect`, or `/connect/<provider>` with at most a tool call's connect-link
 * binding (elicit.ts), nothing else (never an open redirect).
 */
const CONNECT_TARGET = /^\/connect(?:\/([a-z][a-z0-9-]{0,31})(?:\?elicitation=[0-9a-f-]{36}\.[A-Za-z0-9_-]{22})?)?$/;

/** Where to go after signing in: a connect page of a configured provider, else `/connect`. */
export function safeNext(next: string | null, providers: readonly string[]): string {
  const match = CONNECT_TARGET.exec(next ?? "");
  if (next && match && (match[1] === undefined || providers.includes(match[1]))) return next;
  return "/connect";
}

export async function personSession(
  request: Request,
  env: Env,
  deps: PersonSessionDeps,
): Promise<PersonSession | null> {
  const token = readCookie(request, CONNECT_SESSION_COOKIE);
  if (!token) return null;
  const oauth = deps.oauth(env);
  const summary = await oauth.unwrapToken(token).catch(() => null);
  if (!summary || summary.expiresAt * 1000 <= Date.now()) return null;
  const audience = Array.isArray(summary.audience) ? summary.audience : [summary.audience];
  if (!audience.includes(deps.publicUrl)) return null;
  if (summary.grant.clientId !== (await clientId(oauth, env.OAUTH_KV, deps.publicUrl))) return null;
  const props = AuthProps.safeParse(summary.grant.props);
  if (!props.success) return null;
  // SECURITY: a blocked or revoked person cannot connect or see connections, whatever their cookie says.
  const verdict = judgeStanding(
    await loadStanding(database(env.DB), subjectsOf(props.data)),
    props.data.authenticatedAtMs,
  );
  if (!verdict.ok) throw new HttpError("forbidden", verdict.publicMessage);
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`hatago connect csrf v1\u0000${token}`),
  );
  return { props: props.data, csrf: base64url(new Uint8Array(digest)) };
}

/** Starts a sign-in: our own authorization request, then the upstream login, back at our session callback. */
export async function startSignIn(env: Env, deps: PersonSessionDeps, next: string): Promise<Response> {
  const oauth = deps.oauth(env);
  const { publicUrl } = deps;
  const id = await clientId(oauth, env.OAUTH_KV, publicUrl);
  const state = randomToken();
  const verifier = randomToken();
  const url = new URL(`${publicUrl}/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: id,
    redirect_uri: `${publicUrl}${CONNECT_SESSION_CALLBACK_PATH}`,
    scope: MCP_SCOPE,
    state,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
    resource: publicUrl,
  }).toString();
  const authRequest = await oauth.parseAuthRequest(new Request(url));
  const upstream = await deps.login.start().catch((cause: unknown) => {
    if (!(cause instanceof LoginError)) throw cause;
    throw new HttpError("upstream_unavailable", "The login provider cannot be reached right now; try again shortly", {
      cause,
    });
  });
  const { state: upstreamState, headers } = await oauth.beginUpstream(authRequest, { data: upstream.data });
  headers.append(
    "Set-Cookie",
    hostCookie(SIGN_IN_COOKIE, `${state}.${verifier}.${encodeURIComponent(next)}`, {
      maxAgeSeconds: SIGN_IN_TTL_SECONDS,
      sameSite: "Lax",
    }),
  );
  headers.set("Location", upstream.url(upstreamState));
  headers.set("Referrer-Policy", "no-referrer");
  return new Response(null, { status: 302, headers });
}

const TokenAnswer = z.object({ access_token: z.string().min(1).max(2048), expires_in: z.number().int().positive() });

/** The session callback: same browser (cookie state), then our code redeemed at our own token endpoint. */
export async function finishSignIn(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  deps: PersonSessionDeps,
): Promise<Response> {
  const url = new URL(request.url);
  // state and verifier are base64url (no dots); the target may hold one (a connect link's binding).
  const [state, verifier, ...rest] = (readCookie(request, SIGN_IN_COOKIE) ?? "").split(".");
  const next = rest.join(".");
  // SECURITY: login CSRF. The code must come back to the browser that started this sign-in.
  if (!state || !verifier || url.searchParams.get("state") !== state) {
    throw new HttpError("bad_request", "This sign-in was not started in this browser, or it took too long.");
  }
  const code = url.searchParams.get("code");
  if (url.searchParams.get("error") || !code || url.searchParams.get("iss") !== deps.publicUrl) {
    throw new HttpError("bad_request", "The sign-in did not complete.");
  }
  const id = await clientId(deps.oauth(env), env.OAUTH_KV, deps.publicUrl);
  const answer = await deps.token(
    new Request(`${deps.publicUrl}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: id,
        redirect_uri: `${deps.publicUrl}${CONNECT_SESSION_CALLBACK_PATH}`,
        code,
        code_verifier: verifier,
        resource: deps.publicUrl,
      }),
    }),
    env,
    ctx,
  );
  const parsed = TokenAnswer.safeParse(await answer.json().catch(() => null));
  if (!answer.ok || !parsed.success) throw new HttpError("bad_request", "The sign-in could not be completed.");
  const headers = new Headers();
  headers.append("Set-Cookie", expiredHostCookie(SIGN_IN_COOKIE));
  headers.append(
    "Set-Cookie",
    hostCookie(CONNECT_SESSION_COOKIE, parsed.data.access_token, {
      maxAgeSeconds: parsed.data.expires_in,
      sameSite: "Lax",
    }),
  );
  // The target was chosen by safeNext at the start; checked again, as it came back through a cookie.
  let target = "/connect";
  try {
    target = decodeURIComponent(next);
  } catch {
    // A cookie that was tampered with: the default target.
  }
  headers.set("Location", CONNECT_TARGET.test(target) ? target : "/connect");
  headers.set("Cache-Control", "no-store");
  return new Response(null, { status: 303, headers });
}
