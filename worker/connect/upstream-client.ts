import {
  ArcticFetchError,
  CodeChallengeMethod,
  OAuth2Client,
  OAuth2RequestError,
  UnexpectedErrorResponseBodyError,
  UnexpectedResponseError,
} from "arctic";
import { z } from "zod";
import type { ConnectProviderConfig } from "../config.ts";
import type { TokenSet } from "./token-seal.ts";

/**
 * Our OAuth client toward connection providers: in worker/connect, the one file that uses arctic (its generic
 * `OAuth2Client`, for GitHub too: arctic 3.7's `GitHub` class sends no PKCE challenge, and GitHub accepts S256).
 * The mock provider never comes here (mock-upstream.ts answers in-process).
 */

/**
 * Why an upstream step failed:
 * - refused:     the upstream said no (invalid_grant, a used code, access_denied) → nothing is stored, and a
 *                refused refresh deletes the connection;
 * - unavailable: it could not be reached, timed out, or answered nonsense (5xx) → try again later, keep what we have.
 */
export class ConnectUpstreamError extends Error {
  readonly kind: "refused" | "unavailable";
  constructor(kind: "refused" | "unavailable", message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConnectUpstreamError";
    this.kind = kind;
  }
}

const TokenAnswer = z.object({
  access_token: z.string().min(1).max(8_192),
  refresh_token: z.string().min(1).max(8_192).optional(),
  expires_in: z.number().int().positive().max(31_536_000).optional(),
  scope: z.string().max(4_096).optional(),
});

export function authorizationUrl(
  provider: ConnectProviderConfig,
  redirectUri: string,
  request: { state: string; verifier: string; scopes: readonly string[] },
): string {
  const oauth = new OAuth2Client(provider.clientId, provider.clientSecret, redirectUri);
  return oauth
    .createAuthorizationURLWithPKCE(
      provider.authorizationUrl,
      request.state,
      CodeChallengeMethod.S256,
      request.verifier,
      [...request.scopes],
    )
    .toString();
}

export async function exchangeCode(
  provider: ConnectProviderConfig,
  redirectUri: string,
  code: string,
  verifier: string,
  requestedScopes: readonly string[],
  now = Date.now(),
): Promise<TokenSet> {
  const oauth = new OAuth2Client(provider.clientId, provider.clientSecret, redirectUri);
  const data = await upstream(provider, "token", () =>
    oauth.validateAuthorizationCode(provider.tokenUrl, code, verifier),
  );
  return tokenSetOf(data, requestedScopes, null, now);
}

export async function refreshTokens(
  provider: ConnectProviderConfig,
  redirectUri: string,
  current: TokenSet,
  now = Date.now(),
): Promise<TokenSet> {
  if (current.refreshToken === null) throw new ConnectUpstreamError("refused", "no refresh token was issued");
  const oauth = new OAuth2Client(provider.clientId, provider.clientSecret, redirectUri);
  const refreshToken = current.refreshToken;
  const data = await upstream(provider, "refresh", () => oauth.refreshAccessToken(provider.tokenUrl, refreshToken, []));
  // A provider that does not rotate refresh tokens keeps the one we have.
  return tokenSetOf(data, current.scopes, refreshToken, now);
}

async function upstream(
  provider: ConnectProviderConfig,
  what: string,
  run: () => Promise<{ data: object }>,
): Promise<object> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConnectUpstreamError("unavailable", `${provider.label} did not answer in time (${what})`)),
      provider.timeoutMs,
    );
  });
  let data: object;
  try {
    data = (await Promise.race([run(), timeout])).data;
  } catch (cause) {
    if (cause instanceof ConnectUpstreamError) throw cause;
    if (cause instanceof OAuth2RequestError) {
      throw new ConnectUpstreamError("refused", `${provider.label} refused the ${what} (${cause.code})`, { cause });
    }
    if (
      cause instanceof ArcticFetchError ||
      cause instanceof UnexpectedResponseError ||
      cause instanceof UnexpectedErrorResponseBodyError
    ) {
      throw new ConnectUpstreamError("unavailable", `${provider.label} could not complete the ${what}`, { cause });
    }
    throw cause;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  // GitHub answers a bad code with HTTP 200 and an `error` member, which arctic passes on.
  if ("error" in data) throw new ConnectUpstreamError("refused", `${provider.label} refused the ${what}`);
  return data;
}

function tokenSetOf(data: object, requested: readonly string[], keepRefresh: string | null, now: number): TokenSet {
  const parsed = TokenAnswer.safeParse(data);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.join(".") || "(root)";
    throw new ConnectUpstreamError("unavailable", `the token answer was not understood (field ${field})`);
  }
  const answer = parsed.data;
  return {
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token ?? keepRefresh,
    expiresAtMs: answer.expires_in === undefined ? null : now + answer.expires_in * 1_000,
    // RFC 6749 §5.1: no `scope` in the answer means the scopes asked for were granted.
    scopes: answer.scope === undefined ? [...requested] : answer.scope.split(/[\s,]+/).filter((s) => s !== ""),
  };
}
