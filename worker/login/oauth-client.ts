import {
  ArcticFetchError,
  CodeChallengeMethod,
  generateCodeVerifier,
  OAuth2Client,
  OAuth2RequestError,
  UnexpectedErrorResponseBodyError,
  UnexpectedResponseError,
} from "arctic";
import type { z } from "zod";
import { LoginError } from "./errors.ts";

/**
 * Our OAuth client toward the login providers: the one file that uses arctic. Every provider (GitHub and
 * any OpenID provider) goes through arctic's generic `OAuth2Client`: arctic 3.7's `GitHub` class cannot
 * send a PKCE challenge, and GitHub accepts one (S256) since 2025.
 */
export interface UpstreamClient {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Our callback URL for this provider, registered with it. */
  readonly redirectUri: string;
}

/** A fresh PKCE verifier (256 random bits, base64url). */
export function newCodeVerifier(): string {
  return generateCodeVerifier();
}

/** A random single-use value (OIDC nonce): 256 bits, base64url. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

export function authorizationUrl(
  client: UpstreamClient,
  endpoint: string,
  request: { state: string; verifier: string; scopes: readonly string[]; extra?: Readonly<Record<string, string>> },
): string {
  const oauth = new OAuth2Client(client.clientId, client.clientSecret, client.redirectUri);
  const url = oauth.createAuthorizationURLWithPKCE(
    endpoint,
    request.state,
    CodeChallengeMethod.S256,
    request.verifier,
    [...request.scopes],
  );
  for (const [name, value] of Object.entries(request.extra ?? {})) url.searchParams.set(name, value);
  return url.toString();
}

/**
 * Exchanges an authorization code (with its PKCE verifier) at the provider's token endpoint, authenticating
 * with client_secret_basic, and narrows the token response with `schema`.
 */
export async function exchangeCode<T>(
  client: UpstreamClient,
  tokenEndpoint: string,
  code: string,
  verifier: string,
  schema: z.ZodType<T>,
): Promise<T> {
  const oauth = new OAuth2Client(client.clientId, client.clientSecret, client.redirectUri);
  let data: object;
  try {
    data = (await oauth.validateAuthorizationCode(tokenEndpoint, code, verifier)).data;
  } catch (cause) {
    if (cause instanceof OAuth2RequestError) {
      throw new LoginError("unverified", "The login provider did not accept the sign-in code", {
        reason: `code_rejected: ${cause.code}`,
        cause,
      });
    }
    if (
      cause instanceof ArcticFetchError ||
      cause instanceof UnexpectedResponseError ||
      cause instanceof UnexpectedErrorResponseBodyError
    ) {
      throw new LoginError("unavailable", "The login provider's token endpoint failed", {
        reason: "token_endpoint_unavailable",
        cause,
      });
    }
    throw cause;
  }
  // GitHub answers a bad code with HTTP 200 and an `error` member, which arctic's generic client passes on.
  if ("error" in data) {
    throw new LoginError("unverified", "The login provider did not accept the sign-in code", {
      reason: "code_rejected",
    });
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new LoginError("unavailable", "The login provider's token response was not understood", {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
