import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { type ReadTicket, ReuseCache } from "../authz/reuse-cache.ts";

/**
 * The OAuth library's verdicts on access tokens, reused for at most a second per isolate (issue 18, goal 3).
 *
 * Per MCP request the library hashes the token, reads its record from KV, imports two keys, unwraps the
 * props' key and decrypts them: ~0.25 ms of the Worker's CPU and a KV read. A client sends the same token
 * on every call, so the verdict on a token the library accepted is kept here and a request carrying it
 * again within REUSE_MAX_AGE_MS goes to the MCP handler with the props the library gave, without asking it
 * again. The library still validates every token: nothing enters this cache that it did not accept for
 * this exact URL, and nothing is derived here from a token but the lookup key (RFC 7662 §4 on caching a
 * token's validation: "a trade-off between performance and revocation latency").
 *
 * SECURITY: what the second costs, and why it is bounded:
 * - A token revoked or rotated by its client (the library deletes its record) can be accepted for at most
 *   REUSE_MAX_AGE_MS more by an isolate that saw it. Deployed, the library's KV read itself may see a
 *   deleted record for up to 60 s at another location (Workers KV is eventually consistent; reads are
 *   cached at the edge), so the second adds nothing new. In the isolate that serves the revocation, every
 *   verdict is dropped at once: after every token endpoint request, and after every grant our code
 *   revokes (`forgettingOnRevoke`: console sign-out, burnt codes, refresh token reuse).
 * - The kill switch (block, revoke) does not rest on this: the person's standing is part of the decision
 *   facts, checked on every request within the same bound, and the isolate making the block forgets every
 *   verdict at once (`forgetAllReused`).
 * - An entry never outlives the token's own expiry (`expiresAt`; the library accepts until that second
 *   ends, this stops at its start).
 * - The key is the exact token and the exact resource URL the library checked its audience against
 *   (scheme, host, path, query), so another path, another audience or a token differing in one character
 *   is a miss and goes to the library. The Authorization header is parsed with the library's own pattern:
 *   a header it would refuse never matches.
 * - Only MCP paths use it (app.ts): the admin API and /api/ always go through the library.
 */
export interface TokenVerdict {
  /** What the library set as `ctx.props` (the grant's decrypted props). */
  readonly props: unknown;
  /** What the library set as `ctx.auth`. */
  readonly auth: Readonly<Record<string, unknown>> & { readonly expiresAt?: number };
}

/** The library's bearer pattern (workers-oauth-provider 1.2.3, handleApiRequest), used as is. */
const BEARER = /^Bearer[\t ]+([^\s,]+)$/i;

/** At most this many tokens remembered per isolate: clients active within the last second. */
const MAX_VERDICTS = 1_000;
/**
 * A key (token and URL) longer than this is never remembered: a client's URL has no long query string, and
 * MAX_VERDICTS keys of this size hold at most ~2 MB, whatever a caller puts in the URL.
 */
const MAX_KEY_CHARS = 2_048;

export class TokenVerdicts {
  readonly #cache: ReuseCache<TokenVerdict>;
  /** Requests on their way to the library, with the ticket taken before it read the token's record. */
  readonly #pending = new WeakMap<Request, ReadTicket>();

  constructor(options: { maxAgeMs?: number; now?: () => number; isolateWide?: boolean } = {}) {
    this.#cache = new ReuseCache<TokenVerdict>({ ...options, maxEntries: MAX_VERDICTS });
  }

  /** A verdict the library gave on this request's token for this URL, if still usable. */
  recall(request: Request): TokenVerdict | null {
    const key = keyOf(request);
    return key === null ? null : this.#cache.fresh(key);
  }

  /** Called just before the request goes to the library, so a verdict's age counts from before its check. */
  beforeLibrary(request: Request): void {
    this.#pending.set(request, this.#cache.ticket());
  }

  /**
   * Called from the protected handler the library invoked: the library accepted this request's token, and
   * `ctx` holds what it concluded. Nothing is kept for a request that did not pass `beforeLibrary`.
   */
  accepted(request: Request, ctx: { readonly props?: unknown; readonly auth?: unknown }): void {
    const ticket = this.#pending.get(request);
    this.#pending.delete(request);
    const key = keyOf(request);
    const auth = ctx.auth as TokenVerdict["auth"] | undefined;
    if (!ticket || key === null || !auth || typeof auth.expiresAt !== "number") return;
    if (auth.token !== tokenOf(request)) return;
    this.#cache.remember(key, ticket, { props: ctx.props, auth }, auth.expiresAt * 1000);
  }

  forget(): void {
    this.#cache.forget();
  }

  get size(): number {
    return this.#cache.size;
  }
}

function tokenOf(request: Request): string | null {
  const header = request.headers.get("Authorization");
  return header === null ? null : (BEARER.exec(header)?.[1] ?? null);
}

/** The token and the URL its audience was checked against (the library's `resourceServer` string). */
function keyOf(request: Request): string | null {
  const token = tokenOf(request);
  if (token === null) return null;
  const url = new URL(request.url);
  const key = `${token}\n${url.protocol}//${url.host}${url.pathname}${url.search}`;
  return key.length > MAX_KEY_CHARS ? null : key;
}

/**
 * The headers the library adds to every protected route's answer (workers-oauth-provider 1.2.3,
 * `withCorsHeaders`), for answers given without it. test/workers/oauth/token-verdicts.test.ts compares the two
 * answers header by header, so a library upgrade that changes them fails there.
 */
export function withLibraryCorsHeaders(response: Response, request: Request): Response {
  const origin = request.headers.get("Origin");
  if (!origin) return response;
  const cors = new Response(response.body, response);
  const setUnlessPresent = (name: string, value: string) => {
    if (!cors.headers.has(name)) cors.headers.set(name, value);
  };
  setUnlessPresent("Access-Control-Allow-Origin", origin);
  setUnlessPresent("Access-Control-Allow-Methods", "*");
  setUnlessPresent("Access-Control-Allow-Headers", "Authorization, *");
  setUnlessPresent("Access-Control-Max-Age", "86400");
  appendListValue(cors.headers, "Vary", "Origin");
  appendListValue(cors.headers, "Access-Control-Expose-Headers", "WWW-Authenticate");
  appendListValue(cors.headers, "Access-Control-Expose-Headers", "Retry-After");
  return cors;
}

function appendListValue(headers: Headers, name: string, value: string): void {
  const values = (headers.get(name) ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  if (!values.some((item) => item.toLowerCase() === value.toLowerCase())) values.push(value);
  headers.set(name, values.join(", "));
}

/**
 * The library's helpers with `revokeGrant` followed by `forget` (whether it succeeded or not): every grant our
 * code revokes (a console sign-out, a burnt code, refresh token reuse) empties the isolate's verdicts, so
 * the revoked tokens are refused here from the next request. The library's own revocations (refresh
 * rotation, RFC 7009) happen inside the token endpoint, which forgets when it is done (app.ts).
 */
export function forgettingOnRevoke<H extends Pick<OAuthHelpers, "revokeGrant">>(helpers: H, forget: () => void): H {
  return new Proxy(helpers, {
    get(target, property, receiver) {
      if (property === "revokeGrant") {
        return async (...args: Parameters<OAuthHelpers["revokeGrant"]>) => {
          try {
            return await target.revokeGrant(...args);
          } finally {
            forget();
          }
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
