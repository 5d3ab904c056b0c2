/**
 * How long something read for one request may be reused by later requests in the same isolate: the bound
 * within which a block, a revocation or a policy re-seed takes effect on every isolate (issue 18's goal: 1 s).
 * One bound for everything reused on the tool-call path: decision facts (decision-cache.ts) and the OAuth
 * library's token verdicts (oauth/token-verdicts.ts).
 */
export const REUSE_MAX_AGE_MS = 1_000;

/** When a read began (before its query was sent), and after how many `forget()`s. */
export interface ReadTicket {
  readonly readAtMs: number;
  readonly generation: number;
}

interface Entry<V> {
  readonly readAtMs: number;
  /** Exclusive: the entry is not used at or after this instant. */
  readonly usableUntilMs: number;
  readonly value: V;
}

/**
 * Per-isolate reuse of values read for earlier requests, each for at most `maxAgeMs` after its read BEGAN.
 *
 * The rules, one home for every cache on the hot path (bench/RESULTS.md, "Grants without a trip to the
 * primary"):
 * - An entry's age counts from `ticket()`, taken just before its read is sent, so the value reflects every
 *   write committed before that instant. Workers' clock only moves across I/O, so the instant taken is at
 *   or before the real one: an entry can only look older than it is, never younger.
 * - An entry is used while `readAtMs <= now < min(readAtMs + maxAgeMs, notAfterMs)`, then never again (no
 *   stale fallback). A clock that went backwards makes it unusable too.
 * - `forget()` drops every entry at once, and so is anything a read begun before it would bring back later
 *   (`ReadTicket.generation`). `forgetAllReused()` does that for every cache made with `isolateWide`.
 * - At most `maxEntries`: past it, expired entries go, then the oldest fills.
 */
export class ReuseCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  #generation = 0;
  readonly maxAgeMs: number;
  readonly now: () => number;
  readonly #maxEntries: number;

  /** `now` is injectable so tests move time instead of sleeping. */
  constructor(options: { maxAgeMs?: number; now?: () => number; maxEntries?: number; isolateWide?: boolean } = {}) {
    this.maxAgeMs = options.maxAgeMs ?? REUSE_MAX_AGE_MS;
    this.now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? 1_000;
    if (options.isolateWide) isolateWideCaches.add(new WeakRef(this as ReuseCache<unknown>));
  }

  /** The value kept under `key` if it may still be used; an expired entry is dropped. */
  fresh(key: string): V | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    const now = this.now();
    if (now < entry.readAtMs || now >= entry.usableUntilMs) {
      this.#entries.delete(key);
      return null;
    }
    return entry.value;
  }

  /** Taken just before a read is sent: when, and after which `forget()`. */
  ticket(): ReadTicket {
    return { readAtMs: this.now(), generation: this.#generation };
  }

  /**
   * Keeps what a read begun at `ticket` returned; nothing if everything was forgotten since (a block made
   * meanwhile may not be in it). `notAfterMs` shortens the entry's life (a token's own expiry).
   */
  remember(key: string, ticket: ReadTicket, value: V, notAfterMs: number = Number.POSITIVE_INFINITY): void {
    if (ticket.generation !== this.#generation) return;
    const usableUntilMs = Math.min(ticket.readAtMs + this.maxAgeMs, notAfterMs);
    if (usableUntilMs <= ticket.readAtMs) return;
    this.#entries.delete(key);
    this.#entries.set(key, { readAtMs: ticket.readAtMs, usableUntilMs, value });
    if (this.#entries.size > this.#maxEntries) this.#evict();
  }

  /** Drops one entry. */
  drop(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every entry, and whatever a read already under way would bring back. */
  forget(): void {
    this.#generation++;
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(): void {
    const now = this.now();
    for (const [key, entry] of this.#entries) {
      if (now < entry.readAtMs || now >= entry.usableUntilMs) this.#entries.delete(key);
    }
    // Map order is insertion order: the oldest fills go first.
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(key);
    }
  }
}

/** Weak: tests build many Workers in one isolate, each with its own caches. */
const isolateWideCaches = new Set<WeakRef<ReuseCache<unknown>>>();

/**
 * A block, revocation or lift was just written in this isolate: every isolate-wide cache forgets, so it
 * holds here from the next request (elsewhere within REUSE_MAX_AGE_MS).
 */
export function forgetAllReused(): void {
  for (const ref of isolateWideCaches) {
    const cache = ref.deref();
    if (cache) cache.forget();
    else isolateWideCaches.delete(ref);
  }
}
