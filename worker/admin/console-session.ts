import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { authorize } from "../../policies/decide.ts";
import { loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import type { Config } from "../config.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { readCookie } from "../http/cookies.ts";
import { base64url, pkceChallenge, randomToken } from "../http/random.ts";
import type { UpstreamLogin } from "../login/index.ts";
import { AuthProps, subjectsOf } from "../oauth/props.ts";
import { MCP_SCOPE } from "../oauth/routes.types.ts";
import { ADMIN_PATH } from "./paths.ts";

export { base64url, pkceChallenge, randomToken };

/** Console pages live under this prefix; `/admin` itself is the overview. The JSON API keeps `/admin/<name>`. */
export const CONSOLE_PATH = `${ADMIN_PATH}/console`;
export const CONSOLE_CALLBACK_PATH = `${CONSOLE_PATH}/callback`;

/** The console session: the console client's access token (HttpOnly, never readable by a page). */
export const SESSION_COOKIE = "__Host-hatago-console";
/** A sign-in in progress: `<state>.<PKCE verifier>`, for the console's own callback. */
export const SIGN_IN_COOKIE = "__Host-hatago-console-signin";
/** A sign-in that takes longer than this starts again (the OAuth library's upstream state lives as long). */
export const SIGN_IN_TTL_SECONDS = 600;

/**
 * Where the console remembers its OAuth client's id (KV, beside the library's own keys; migrations/STORAGE.md).
 * The library chooses client ids at random, so the id has to be kept somewhere; the record itself is the
 * library's, checked on every use (exact redirect URI, public client), so a stale or altered key only
 * makes the console register a fresh client.
 */
export const CONSOLE_CLIENT_KV_KEY = "hatago:console-client";
const CONSOLE_CLIENT_NAME = "Hatago Auth console";

/** What the console needs from the Worker that builds it (app.ts). */
export interface ConsoleDeps {
  readonly config: Config;
  readonly login: UpstreamLogin;
  /** The OAuth library's helpers for this request's env. */
  oauth(env: Env): OAuthHelpers;
  /** The token endpoint exactly as clients reach it, guards included: the console redeems its own codes there. */
  token(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
  /** `/health`'s own report (worker/health.ts). */
  health(env: Env): Promise<Response>;
}

/** An admin's console session, checked for this request. */
export interface ConsoleSession {
  readonly token: string;
  readonly props: AuthProps;
  readonly admin: RequestContext;
  /** The grant behind the session (and behind every API token made from it). */
  readonly grantId: string;
  readonly userId: string;
  readonly expiresAtMs: number;
  /** The CSRF token every form of this session carries. */
  readonly csrf: string;
}

export type SessionCheck =
  | { readonly kind: "none" }
  /** Signed in, but not at the admin level: the console answers with a plain 403 page. */
  | {
      readonly kind: "not_admin";
      readonly principal: string;
      readonly context: RequestContext;
      readonly grantId: string;
      readonly userId: string;
    }
  | { readonly kind: "admin"; readonly session: ConsoleSession };

/**
 * The console's OAuth client id, registering the client on first use (a public client, PKCE S256). Two
 * KV reads per console request; not cached in the isolate, so a deleted client is noticed at once.
 */
export async function consoleClientId(oauth: OAuthHelpers, kv: KVNamespace, publicUrl: string): Promise<string> {
  const redirectUri = `${publicUrl}${CONSOLE_CALLBACK_PATH}`;
  const stored = await kv.get(CONSOLE_CLIENT_KV_KEY);
  if (stored) {
    const client = await oauth.lookupClient(stored).catch(() => null);
    if (
      client &&
      client.tokenEndpointAuthMethod === "none" &&
      client.redirectUris.length === 1 &&
      client.redirectUris[0] === redirectUri
    ) {
      return stored;
    }
  }
  const created = await oauth.createClient({
    clientName: CONSOLE_CLIENT_NAME,
    redirectUris: [redirectUri],
    tokenEndpointAuthMethod: "none",
    grantTypes: ["authorization_code"],
    responseTypes: ["code"],
  });
  await kv.put(CONSOLE_CLIENT_KV_KEY, created.clientId);
  return created.clientId;
}

/** The authorization request the console makes of its own server (validated by the library like any other). */
export function consoleAuthorizeUrl(publicUrl: string, clientId: string, state: string, challenge: string): string {
  const url = new URL(`${publicUrl}/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: `${publicUrl}${CONSOLE_CALLBACK_PATH}`,
    scope: MCP_SCOPE,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    resource: publicUrl,
  }).toString();
  return url.toString();
}

/**
 * Reads and checks the console session of a request. SECURITY: the cookie's token must be one the library
 * issued to the console's own client for this origin and not yet expired; the person's standing (blocks,
 * revocations) and the admin level are decided now, by the same functions as every other admin request,
 * so a block or a policy change takes effect on the next page. A blocked or revoked admin makes
 * `loadRequestContext` throw its 401.
 */
export async function checkConsoleSession(request: Request, env: Env, deps: ConsoleDeps): Promise<SessionCheck> {
  const token = readCookie(request, SESSION_COOKIE);
  return token ? checkConsoleToken(token, env, deps) : { kind: "none" };
}

/** The checks of `checkConsoleSession` on a token (the callback checks the token it just received). */
export async function checkConsoleToken(token: string, env: Env, deps: ConsoleDeps): Promise<SessionCheck> {
  const oauth = deps.oauth(env);
  const summary = await oauth.unwrapToken(token).catch(() => null);
  if (!summary || summary.expiresAt * 1000 <= Date.now()) return { kind: "none" };
  const clientId = await consoleClientId(oauth, env.OAUTH_KV, deps.config.publicUrl);
  const audience = Array.isArray(summary.audience) ? summary.audience : [summary.audience];
  if (summary.grant.clientId !== clientId || !audience.includes(deps.config.publicUrl)) return { kind: "none" };
  const props = AuthProps.safeParse(summary.grant.props);
  if (!props.success) return { kind: "none" };
  const context = await loadRequestContext(
    database(env.DB),
    {
      principal: props.data.principal,
      subjects: subjectsOf(props.data),
      clientId,
      authenticatedAtMs: props.data.authenticatedAtMs,
    },
    null,
  );
  // SECURITY: the same decision function as every MCP call and every JSON admin request.
  if (!authorize(context.grants, { kind: "admin" }).allow) {
    return {
      kind: "not_admin",
      principal: props.data.principal,
      context,
      grantId: summary.grantId,
      userId: summary.userId,
    };
  }
  return {
    kind: "admin",
    session: {
      token,
      props: props.data,
      admin: context,
      grantId: summary.grantId,
      userId: summary.userId,
      expiresAtMs: summary.expiresAt * 1000,
      csrf: await csrfTokenFor(token),
    },
  };
}

/**
 * SECURITY: the CSRF token of a session: a hash of the session's secret token under a purpose label. A
 * page on another site can neither read the cookie nor this value, so it cannot forge a form; it needs no
 * storage, and it dies with the session.
 */
export async function csrfTokenFor(sessionToken: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`hatago console csrf v1\u0000${sessionToken}`),
  );
  return base64url(new Uint8Array(digest));
}

/**
 * SECURITY: every console form post. The CSRF field must match the session's, compared in constant time;
 * and a browser that says where the post came from (`Origin`, `Sec-Fetch-Site`) must say this origin.
 */
export function postIsFromConsole(request: Request, session: ConsoleSession, sentCsrf: string | undefined): boolean {
  const origin = request.headers.get("Origin");
  if (origin !== null && origin !== new URL(request.url).origin) return false;
  const site = request.headers.get("Sec-Fetch-Site");
  if (site !== null && site !== "same-origin") return false;
  return sentCsrf !== undefined && timingSafeEqual(sentCsrf, session.csrf);
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Hono's environment for console routes: the Worker's bindings and, past the guard, the admin's session.
 * Here rather than in console.routes.ts, so the pages that router mounts import no module that imports them.
 */
export interface ConsoleEnv {
  Bindings: Env;
  Variables: { session: ConsoleSession };
}
