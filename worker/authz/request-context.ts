import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { type EffectiveGrants, effectiveGrants } from "../../policies/decide.ts";
import type { Database } from "../db/database.ts";
import { loadPrincipalGrants, type SessionRecord } from "../db/grants.repository.ts";
import { GatewayError, invalidToken } from "../mcp/errors.ts";
import { judgeStanding, loadStanding, type Standing } from "./standing.ts";

/** Who is asking, as the token says (set by the OAuth provider from the grant's props). */
export interface Caller {
  readonly principal: string;
  /** Binding subjects: the principal, its verified email, its groups. */
  readonly subjects: readonly string[];
  readonly clientId: string | null;
  /** When the person logged in (epoch ms): grants issued before a revocation cut-off stop working. */
  readonly authenticatedAtMs: number;
}

/** Everything one HTTP request is decided under. Built once per request, never shared between requests. */
export interface RequestContext {
  readonly caller: Caller;
  readonly grants: EffectiveGrants;
  readonly policyHash: string | null;
  readonly sessionId: string | null;
  /** The caller's allowed calls in the last minute (for its roles' rate limit). */
  readonly callsInWindow: number;
  /** The session as recorded in D1 (read in the same query), or `null`. */
  readonly session: SessionRecord | null;
}

/**
 * Loads the caller's grants with one D1 query and checks the kill switch.
 * SECURITY: fails closed. A database error is a 503, never an empty-but-allowed or a cached answer; a
 * database with no policy seeded yields no grants, so everything is denied.
 */
export async function loadRequestContext(
  db: Kysely<Database>,
  caller: Caller,
  sessionId: string | null,
): Promise<RequestContext> {
  let loaded: Awaited<ReturnType<typeof loadPrincipalGrants>>;
  try {
    loaded = await loadPrincipalGrants(db, caller.subjects, { principal: caller.principal, sessionId });
  } catch (cause) {
    throw authorizationUnavailable(cause);
  }
  refuseOutOfStanding(loaded.standing, caller);
  return {
    caller,
    grants: effectiveGrants(loaded.rows),
    policyHash: loaded.policyHash,
    sessionId,
    callsInWindow: loaded.callsInWindow,
    session: loaded.session,
  };
}

/** SECURITY: D1 failing is a 503 with Retry-After, never an allow and never a cached answer. */
function authorizationUnavailable(cause: unknown): GatewayError {
  return new GatewayError(
    503,
    ErrorCode.InternalError,
    "Authorization is temporarily unavailable; try again shortly.",
    {
      cause,
      retryAfterSeconds: 5,
    },
  );
}

/**
 * The context of a request that decides nothing but still acts for the caller (a notification, an answer
 * to the server, ending a session, the GET stream): no grants, but the caller's standing is checked with
 * one small query, so a blocked or revoked person is refused there too.
 */
export async function loadContextWithoutGrants(
  db: Kysely<Database>,
  caller: Caller,
  sessionId: string | null,
): Promise<RequestContext> {
  let standing: Standing;
  try {
    standing = await loadStanding(db, caller.subjects);
  } catch (cause) {
    throw authorizationUnavailable(cause);
  }
  refuseOutOfStanding(standing, caller);
  return contextWithoutGrants(caller, sessionId);
}

/** SECURITY: a blocked or revoked caller gets 401 invalid_token, whatever the request. */
function refuseOutOfStanding(standing: Standing, caller: Caller): void {
  const verdict = judgeStanding(standing, caller.authenticatedAtMs);
  if (!verdict.ok) throw invalidToken(verdict.publicMessage);
}

/**
 * The context of a request that decides nothing (a notification, a response to the server, ending the
 * session): no D1 read. SECURITY: it carries no grants, so anything that did consult it would deny.
 */
export function contextWithoutGrants(caller: Caller, sessionId: string | null): RequestContext {
  return { caller, grants: effectiveGrants([]), policyHash: null, sessionId, callsInWindow: 0, session: null };
}
