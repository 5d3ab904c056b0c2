import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { writeAuditRow } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import type { Env } from "../env.ts";
import { refuseNonPublicCimdClient } from "./cimd-guard.ts";
import { withOriginResourceInForm } from "./endpoint-resource.ts";
import {
  type GrantRecord,
  type GrantRef,
  grantKeyFits,
  grantRefOf,
  readGrantRecord,
  secretId,
  tokenKeyFits,
} from "./grant-record.ts";
import { principalOfGrantUserId } from "./props.ts";
import { readTokenForm, singleParam, tokenError } from "./token-request.ts";

export interface TokenGuardDeps {
  /** The library's helpers for this request's env, built from our own options (app.ts). */
  oauth(env: Env): Pick<OAuthHelpers, "revokeGrant">;
  /** The library's token endpoint. */
  forward(request: Request): Promise<Response>;
  /** This server's origin and MCP endpoint path: `resource=<origin><path>` is mapped to the origin (endpoint-resource.ts). */
  readonly endpointResource?: { readonly origin: string; readonly path: string };
}

/**
 * Answers the library gives to a request it refused (RFC 6749 §5.2: 400, or 401 for client
 * authentication). A 429 or 5xx is the server's trouble, not a failed redemption: the code is left alone.
 */
const REFUSED_STATUSES: ReadonlySet<number> = new Set([400, 401]);

/**
 * POST /token, in front of workers-oauth-provider. The library does the protocol; this adds what it
 * leaves open, reading the form once (capped) without consuming it for the library:
 *
 * - a CIMD `client_id` naming a non-public host is refused before any fetch (cimd-guard.ts);
 * - a refresh token the last refresh rotated out ends its grant (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1);
 * - an authorization code whose redemption failed is burned (OAuth 2.1 §4.1.3).
 *
 * The standing of the person (blocks, revocations) is checked by the library's `tokenExchangeCallback`
 * (token-standing.ts), on every token it issues.
 */
export async function guardTokenEndpoint(received: Request, env: Env, deps: TokenGuardDeps): Promise<Response> {
  const read = await readTokenForm(received);
  if (read === "too_large") return tokenError(413, "invalid_request", "The request is too large");
  if (read === null) return deps.forward(received); // not a form: the library refuses it itself
  const mapped = deps.endpointResource
    ? withOriginResourceInForm(received, read, deps.endpointResource.origin, deps.endpointResource.path)
    : null;
  const request = mapped?.request ?? received;
  const form = mapped?.form ?? read;
  const refused = refuseNonPublicCimdClient(form);
  if (refused) return refused;
  const grantType = singleParam(form, "grant_type");
  if (grantType === null && isUnknownOversizedToken(form)) {
    // RFC 7009 §2.2: an invalid token is not an error; the library would fail on its oversized key (500).
    return new Response(null, { status: 200, headers: { "Cache-Control": "no-store" } });
  }
  if (grantType !== "refresh_token" && grantType !== "authorization_code") return deps.forward(request);
  const presented = presentedGrant(form, grantType === "refresh_token" ? "refresh_token" : "code");
  if (presented === "names_no_grant") return tokenError(400, "invalid_grant", "Invalid grant");
  if (grantType === "refresh_token") {
    const reuse = presented ? await refuseRefreshTokenReuse(presented, env, deps) : null;
    return reuse ?? deps.forward(request);
  }
  const response = await deps.forward(request);
  if (presented && REFUSED_STATUSES.has(response.status)) await burnAuthorizationCode(presented, env, deps);
  return response;
}

/** A revocation request (RFC 7009) for a token too long to be one the library issued. */
function isUnknownOversizedToken(form: URLSearchParams): boolean {
  const token = singleParam(form, "token");
  const ref = token === null ? null : grantRefOf(token);
  return ref !== null && !tokenKeyFits(ref);
}

/** A code or refresh token as presented, with the grant it names. */
interface Presented {
  readonly secret: string;
  readonly ref: GrantRef;
}

/**
 * The code or refresh token a request presents, once and shaped as the library issues them; else null
 * (the library refuses the request itself). `"names_no_grant"` for one too long to be a grant's key,
 * which the library would answer with a 500 (grant-record.ts, grantKeyFits).
 */
function presentedGrant(form: URLSearchParams, name: string): Presented | "names_no_grant" | null {
  const secret = singleParam(form, name);
  const ref = secret === null ? null : grantRefOf(secret);
  if (secret === null || ref === null) return null;
  return grantKeyFits(ref) ? { secret, ref } : "names_no_grant";
}

/**
 * SECURITY: refresh token reuse detection (RFC 9700 §4.14.2). The library keeps the token a refresh
 * rotated out valid (`previousRefreshTokenId`, a grace for a client whose refresh response was lost), so
 * a stolen refresh token could be replayed for as long as its grant lives. Here presenting it again is
 * what the RFC says it is: evidence that two parties hold the grant. The whole grant is revoked (every
 * access and refresh token), the request is refused and the event audited. We give up the grace: a
 * client whose refresh response was lost, or that refreshes twice at once, signs in again.
 *
 * Only the exact token the last refresh rotated out counts. A token matching neither stored hash proves
 * nothing but knowledge of a grant id (the middle of every code and token of that grant); revoking on it
 * would let anyone who saw one end someone else's grant. The library refuses such a token itself.
 */
async function refuseRefreshTokenReuse(
  { secret: token, ref }: Presented,
  env: Env,
  deps: TokenGuardDeps,
): Promise<Response | null> {
  const grant = await readGrantRecord(env.OAUTH_KV, ref);
  if (grant === null) return null;
  const presented = await secretId(token);
  if (presented !== grant.previousRefreshTokenId || presented === grant.refreshTokenId) return null;

  await deps.oauth(env).revokeGrant(ref.grantId, ref.userId);
  const principal = principalOfGrantUserId(ref.userId);
  console.warn(
    `oauth: 400 invalid_grant (refresh-token-grant/refresh_token_reuse): grant of ${principal} for client ${grant.clientId} revoked`,
  );
  await auditReuse(env, principal, grant);
  return tokenError(400, "invalid_grant", "This refresh token was already used; sign in again");
}

/**
 * The audit row of a detected reuse. The grant is already revoked when it is written, so a failure to
 * write it is logged and the request is still refused: refusing is the closed direction.
 */
async function auditReuse(env: Env, principal: string, grant: GrantRecord): Promise<void> {
  await writeAuditRow(
    auditLog(env),
    { principal, clientId: grant.clientId, sessionId: null, policyHash: null },
    {
      action: "oauth:refresh_reuse",
      server: null,
      tool: null,
      decision: "deny",
      reason: "refresh_token_reuse",
      subject: principal,
    },
  ).catch((cause: unknown) =>
    console.error(JSON.stringify({ event: "audit_write_failed", action: "oauth:refresh_reuse", error: String(cause) })),
  );
}

/**
 * SECURITY: an authorization code is single use, and a failed redemption uses it (OAuth 2.1 §4.1.3).
 * The library leaves a code redeemable after a wrong `code_verifier`, client or redirect URI, so whoever
 * intercepted a code could keep guessing while the real client could still redeem it. After the library
 * refused a redemption, the grant the code belongs to is revoked, and with it the code (and, for a code
 * that was already redeemed, the tokens issued from it, as OAuth 2.1 §4.1.2 asks of a replayed code).
 *
 * Only the real code burns its grant: a code whose hash is not the grant's `authCodeId` proves nothing
 * but knowledge of the grant id, and must not let anyone burn someone else's sign-in.
 */
async function burnAuthorizationCode({ secret: code, ref }: Presented, env: Env, deps: TokenGuardDeps): Promise<void> {
  const grant = await readGrantRecord(env.OAUTH_KV, ref);
  if (grant === null || grant.authCodeId === undefined || grant.authCodeId !== (await secretId(code))) return;
  await deps.oauth(env).revokeGrant(ref.grantId, ref.userId);
  console.warn(
    `oauth: authorization code of ${principalOfGrantUserId(ref.userId)} for client ${grant.clientId} burned after a failed redemption`,
  );
}
