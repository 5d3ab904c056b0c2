import type { EffectiveGrants } from "../../policies/decide.ts";
import type { SessionRecord } from "../db/grants.repository.ts";
import { REUSE_MAX_AGE_MS, type ReadTicket, ReuseCache } from "./reuse-cache.ts";
import type { Standing } from "./standing.ts";

/**
 * How long the facts a tool call is decided on may be reused in one isolate after they were read: the bound
 * within which a block, a revocation or a policy re-seed takes effect on every isolate (issue 18's goal: 1 s).
 *
 * How the bound holds (bench/RESULTS.md, "Grants without a trip to the primary"; the general rules of reuse
 * are ReuseCache's, reuse-cache.ts):
 * - An entry is only ever filled from D1's primary: the plain `DB` binding, which D1 serves from the primary
 *   whenever the Sessions API is not used. A read replica lags with no published bound, so no replica answer
 *   is ever kept here.
 * - An entry's age counts from just BEFORE its query was sent, and it is used while younger than the bound,
 *   then never again (no stale fallback: a failing D1 read is a 503). So a write committed at T is seen by
 *   every decision made after T + the bound, on every isolate. (The request's own clock may lag the real
 *   one by the CPU time since its last I/O: well under a millisecond on this path.)
 * - In the isolate that makes a block, revocation or lift, every entry is dropped at once
 *   (`forgetAllReused`), and so is anything a read started before then would bring back later.
 */
export const DECISION_FACTS_MAX_AGE_MS = REUSE_MAX_AGE_MS;

/** What one grants query says about a caller (db/grants.repository.ts), with the grants already folded. */
export interface DecisionFacts {
  readonly grants: EffectiveGrants;
  readonly standing: Standing;
  readonly policyHash: string | null;
  /** The session asked for, as recorded (or `null`). */
  readonly session: SessionRecord | null;
}

interface Entry {
  readonly sessionId: string | null;
  readonly facts: DecisionFacts;
}

/** Contexts built from an entry some earlier request read (not from a read made for this request). */
const reusedContexts = new WeakSet<object>();

/**
 * Per-isolate reuse of decision facts, for at most `maxAgeMs` each. Keyed by the caller's principal and exact
 * subject list (email, groups: what the query was asked about), so two callers share an entry only when the
 * grants query could not tell them apart. One session record per entry: a request for another session of
 * the same caller is a miss and replaces the entry.
 */
export class DecisionCache {
  readonly #entries: ReuseCache<Entry>;

  /** `now` is injectable so tests move time instead of sleeping; `isolateWide`: `forgetAllReused` empties it. */
  constructor(maxAgeMs: number = DECISION_FACTS_MAX_AGE_MS, now: () => number = Date.now, isolateWide = false) {
    this.#entries = new ReuseCache<Entry>({ maxAgeMs, now, isolateWide });
  }

  get maxAgeMs(): number {
    return this.#entries.maxAgeMs;
  }

  get now(): () => number {
    return this.#entries.now;
  }

  /** The facts for these subjects (and this session, if one is asked for) if they are young enough. */
  fresh(who: Who, sessionId: string | null): DecisionFacts | null {
    const entry = this.#entries.fresh(keyOf(who));
    if (!entry) return null;
    if (sessionId !== null && entry.sessionId !== sessionId) return null;
    return entry.facts;
  }

  /** Taken just before a query is sent: when, and after which `forget()`. */
  ticket(): ReadTicket {
    return this.#entries.ticket();
  }

  /**
   * Keeps facts read from D1's PRIMARY by a query sent after `ticket` was taken; nothing if the isolate
   * forgot everything since (a block made meanwhile may not be in them).
   * SECURITY: never an answer from a read replica (see DECISION_FACTS_MAX_AGE_MS).
   */
  remember(who: Who, sessionId: string | null, ticket: ReadTicket, facts: DecisionFacts): void {
    this.#entries.remember(keyOf(who), ticket, { sessionId, facts });
  }

  /** Drops one caller's entry (its session record proved stale: the bridge no longer knows the session). */
  drop(who: Who): void {
    this.#entries.drop(keyOf(who));
  }

  /** Drops every entry (a block, a revocation or a lift in this isolate: it holds here at once). */
  forget(): void {
    this.#entries.forget();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Whose facts: what the grants query is asked about (request-context.ts's Caller has both). */
interface Who {
  readonly principal: string;
  readonly subjects: readonly string[];
}

function keyOf(who: Who): string {
  return JSON.stringify([who.principal, ...who.subjects]);
}

/** Marks a request's context as built from facts an earlier request read. */
export function markReused(context: object): void {
  reusedContexts.add(context);
}

/** Whether a context's facts were read for an earlier request (so they may predate a change made since). */
export function wasReused(context: object): boolean {
  return reusedContexts.has(context);
}

/** The isolate's cache for tool calls (direct-call.ts); blocks, revocations and lifts empty it (forgetAllReused). */
export const decisionCache = new DecisionCache(DECISION_FACTS_MAX_AGE_MS, Date.now, true);

export type { ReadTicket };
