import { OAuthError, type TokenExchangeCallbackOptions } from "@cloudflare/workers-oauth-provider";
import { judgeStanding, loadStanding } from "../authz/standing.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { AuthProps, subjectsOf } from "./props.ts";

/** Our own storage failing (D1) is usually brief; the client should retry soon, not sign in again. */
const STANDING_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * The library's `tokenExchangeCallback`: it runs before every token the library issues, for a code and
 * for a refresh, with the grant's props. SECURITY: a blocked person (or a blocked email or group of
 * theirs), or a sign-in made before a revocation of one of their subjects, gets no token: a refresh token
 * would otherwise outlive the kill switch for the rest of the grant's life (30 days by default). The one
 * rule on standing is `judgeStanding` (authz/standing.ts), against the sign-in time in the props.
 *
 * - refused: `invalid_grant` (RFC 6749 §5.2: the grant is revoked); the library revokes the grant and all
 *   its tokens before answering, so the client has to sign in again, where the block holds too;
 * - props this version cannot read: the same (the grant can never work again);
 * - D1 failing: `503 temporarily_unavailable` with `Retry-After`, never a token (fail closed). The grant
 *   is kept, so the client's retry works once D1 is back. (A plain throw would reach app.ts as a 500.)
 */
export async function checkStandingAtTokenEndpoint(options: TokenExchangeCallbackOptions<Env>): Promise<void> {
  const props = AuthProps.safeParse(options.props);
  if (!props.success) {
    throw new OAuthError("invalid_grant", {
      description: "Sign in again",
      internal: { category: "token-exchange-callback", reason: "props_unusable" },
    });
  }
  let verdict: ReturnType<typeof judgeStanding>;
  try {
    const standing = await loadStanding(database(options.env.DB), subjectsOf(props.data));
    verdict = judgeStanding(standing, props.data.authenticatedAtMs);
  } catch (cause) {
    console.error(JSON.stringify({ event: "standing_read_failed", path: "/token", error: String(cause) }));
    throw new OAuthError("temporarily_unavailable", {
      description: "Token issuance is temporarily unavailable; retry shortly",
      statusCode: 503,
      headers: { "Retry-After": String(STANDING_UNAVAILABLE_RETRY_AFTER_SECONDS) },
      internal: { category: "token-exchange-callback", reason: "standing_unavailable", detail: cause },
    });
  }
  if (!verdict.ok) {
    console.warn(`oauth: ${options.grantType} refused for ${props.data.principal}: ${verdict.why}`);
    throw new OAuthError("invalid_grant", {
      description: verdict.publicMessage,
      internal: { category: "token-exchange-callback", reason: `standing_${verdict.why}` },
    });
  }
}
