import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { type EffectiveGrants, effectiveGrants } from "../../policies/decide.ts";
import type { Database } from "../db/database.ts";
import { loadPrincipalGrants, type SessionRecord } from "../db/grants.repository.ts";
import { HttpError } from "../http/errors.ts";
import { invalidToken } from "../mcp/errors.ts";
import { type DecisionCache, type DecisionFacts, markReused } from "./decision-cache.ts";
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

/**
 * Everything one HTTP request is decided under. Built once per request, never shared between requests (its
 * `grants` may be: read-only facts reused within the decision cache's bound, decision-cache.ts).
 */
export interface RequestContext {
  readonly caller: Caller;
  readonly grants: EffectiveGrants;
  readonly policyHash: string | null;
  readonly sessionId: string | null;
  /** The session as recorded in D1 (read in the same query), or `null`. */
  readonly session: SessionRecord | null;
}

export interface LoadOptions {
  /**
   * Reuse facts read from D1's primary within the cache's age bound (decision-cache.ts: how a block or a
   * re-seed still takes effect within that bound); absent: read D1 on every request.
   */
  readonly cache?: DecisionCache;
  /** Read D1 even if the cache has young facts (and keep the answer): a reused session record lacked something. */
  readonly fresh?: boolean;
}

/**
 * Loads the caller's grants with one D1 query (or, with a cache, reuses facts read from the primary at most
 * its age bound ago) and checks the kill switch.
 * SECURITY: fails closed. A database error is a 503, never an empty-but-allowed answer, and never facts
 * older than the cache's bound; a database with no policy seeded yields no grants, so everything is denied.
 */
export async function loadRequestContext(
  db: Kysely<Database>,
  caller: Caller,
  sessionId: string | null,
  options: LoadOptions = {},
): Promise<RequestContext> {
  const { cache } = options;
  const reused = cache && !options.fresh ? cache.fresh(caller, sessionId) : null;
  if (reused) return contextOf(caller, sessionId, reused, true);
  // Taken before the query is sent: the facts are at least as new as this instant (decision-cache.ts).
  const ticket = cache?.ticket();
  let loaded: Awaited<ReturnType<typeof loadPrincipalGrants>>;
  try {
    loaded = await loadPrincipalGrants(db, caller.subjects, { principal: caller.principal, sessionId });
  } catch (cause) {
    throw authorizationUnavailable(cause);
  }
  const facts: DecisionFacts = {
    grants: effectiveGrants(loaded.rows),
    standing: loaded.standing,
    policyHash: loaded.policyHash,
    session: loaded.session,
  };
  if (cache && ticket) cache.remember(caller, sessionId, ticket, facts);
  return contextOf(caller, sessionId, facts, false);
}

/** A request's context from its facts; refuses a blocked or revoked caller (checked on every request). */
function contextOf(caller: Caller, sessionId: string | null, facts: DecisionFacts, reused: boolean): RequestContext {
  refuseOutOfStanding(facts.standing, caller);
  const context: RequestContext = {
    caller,
    grants: facts.grants,
    policyHash: facts.policyHash,
    sessionId,
    session: facts.session,
  };
  if (reused) markReused(context);
  return context;
}

/** SECURITY: D1 failing is a 503 with Retry-After, never an allow and never facts past the cache's bound. */
function authorizationUnavailable(cause: unknown): HttpError {
  return new HttpError(503, "Authorization is temporarily unavailable; try again shortly.", {
    rpcCode: ErrorCode.InternalError,
    cause,
    retryAfterSeconds: 5,
  });
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
  return { caller, grants: effectiveGrants([]), policyHash: null, sessionId, session: null };
}
