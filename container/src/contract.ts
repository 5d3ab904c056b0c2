/**
 * The Worker ⇄ bridge contract: routes, header names, limits, and the per-request credential.
 *
 * The Worker imports this file to MINT credentials and the bridge imports it to VERIFY them, so it runs in
 * both workerd and Node: WebCrypto (`crypto.subtle`, HMAC-SHA-256) and standard globals only, no `node:`
 * imports, no dependencies. Keep it small enough to review on its own.
 *
 * Credential format (one header, `Hatago-Bridge-Credential`):
 *
 *     v1.<base64url(JSON claims)>.<base64url(HMAC-SHA-256(secret, "v1." + base64url(JSON claims)))>
 *
 * Claims: `sub` principal, `srv` server id, `use` route kind, `sid` MCP session id (absent for a new
 * session and for /execute), `iat`/`exp` seconds since the epoch, `jti` a random nonce.
 *
 * SECURITY: everything the bridge believes about a caller comes from verified claims: the principal,
 * the server, and the session. No other header is trusted for identity; the `Mcp-Session-Id` header
 * must equal the credential's `sid`, so a session id can only be used by whoever the Worker minted it for.
 * SECURITY: a credential is single-use (the bridge remembers each `jti` until it expires) and short-lived
 * (the bridge refuses lifetimes over MAX_CREDENTIAL_LIFETIME_SECONDS, which also bounds replay memory).
 */

/** The header that carries the credential. Lowercase: Node and workerd both normalise header names. */
export const BRIDGE_CREDENTIAL_HEADER = "hatago-bridge-credential";
/** The MCP Streamable HTTP session header; its value must equal the credential's `sid`. */
export const MCP_SESSION_HEADER = "mcp-session-id";

/** Routes the bridge serves. `/health` is the only one without a credential. */
export const BRIDGE_ROUTES = {
  health: "/health",
  execute: "/execute",
  /** `POST`: one server's change notifications for the credential's principal, as a stream (listen.ts). */
  listen: "/listen",
  mcpPrefix: "/servers/",
  mcpSuffix: "/mcp",
} as const;

/** The Streamable HTTP endpoint of one server (ids are plain lowercase words: no encoding needed). */
export function bridgeMcpPath(server: string): string {
  return `${BRIDGE_ROUTES.mcpPrefix}${server}${BRIDGE_ROUTES.mcpSuffix}`;
}

/**
 * The body of `POST /execute`: these fields and nothing else (a command, args, env or cwd is a 400). With
 * `modern`, the call is a 2026-07-28 one (worker/mcp/modern/) and the answer is a stream (EXECUTE_EVENTS).
 */
export interface ExecuteRequestBody {
  readonly server: string;
  readonly message: {
    readonly jsonrpc: "2.0";
    readonly id: string | number;
    readonly method: string;
    readonly params?: unknown;
  };
  readonly modern?: ExecuteModern;
}
export const EXECUTE_BODY_FIELDS = ["server", "message", "modern"] as const;

/**
 * A 2026-07-28 call through `/execute` (container/src/modern-call.ts). Its server→client requests (sampling,
 * elicitation, roots) become input requests the Worker returns to its client (MRTR); the call waits at the
 * bridge until the client's retry brings the answers (`resume`), bounded by the bridge's call timeout.
 */
export interface ExecuteModern {
  /** What this request's client declared (its `_meta`): only those input requests are offered. */
  readonly caps: {
    readonly sampling: boolean;
    readonly elicitationForm: boolean;
    readonly elicitationUrl: boolean;
    readonly roots: boolean;
  };
  /** The lowest `notifications/message` level to relay; `null`: none (the request set no log level). */
  readonly logLevel: string | null;
  /** The Worker's digest of the call (tool and arguments): a resume must name the same one. */
  readonly binding: string;
  /** Present on a retry: the waiting call, the round its input requests were sent in, the client's answers. */
  readonly resume?: {
    readonly pending: string;
    readonly round: number;
    readonly responses: Readonly<Record<string, unknown>>;
    /** End the waiting call instead (the retry was refused): the child's requests get errors. */
    readonly cancel?: boolean;
  };
}

/**
 * The SSE events of a modern `/execute` answer: `notification` (about the call: progress, a log line) any
 * number of times, then exactly one of `response` (the JSON-RPC response, with the message's id) or `input`
 * (an ExecuteInputEvent: the call waits for its client's answers).
 */
export const EXECUTE_EVENTS = { notification: "notification", response: "response", input: "input" } as const;

export interface ExecuteInputEvent {
  readonly pending: string;
  readonly round: number;
  /** Keys are the bridge's; values are the child's requests as it sent them (method, params). */
  readonly requests: Readonly<Record<string, { readonly method: string; readonly params?: unknown }>>;
}

/**
 * The body of `POST /listen` (MCP 2026-07-28 `subscriptions/listen`, container/src/listen.ts): the server, and
 * the resource URIs (the server's own) whose `notifications/resources/updated` the stream should carry. The
 * answer is an event stream of that server's `notifications/{tools,prompts,resources}/list_changed` and of
 * `notifications/resources/updated` for those URIs, as the server sent them; nothing else.
 */
export interface ListenRequestBody {
  readonly server: string;
  readonly resources: readonly string[];
}
export const LISTEN_BODY_FIELDS = ["server", "resources"] as const;
/** One listen names at most this many resources, each at most this long (a 400 beyond). */
/**
 * `/listen` bounds. `maxPerPrincipal`: open listen streams of one principal on one server. Every stream counts
 * against the server's session limit (HATAGO_BRIDGE_MAX_SESSIONS); without this, one person opening streams
 * in a loop could take every slot and leave nobody else able to listen or open a session. A client listens
 * once per server; eight leaves room for several clients and reconnects of one person.
 */
export const LISTEN_LIMITS = { maxResources: 100, maxUriChars: 2_048, maxPerPrincipal: 8 } as const;

export const BRIDGE_LIMITS = {
  /** Request body cap (413 beyond it): the MCP SDK's own 4 MiB limit, so a message the SDK accepts fits. */
  maxRequestBytes: 4 * 1024 * 1024,
  /** JSON-RPC batch length cap (the SDK's fix for GHSA-f897-62hf-6gxq uses the same number). */
  maxBatchMessages: 100,
} as const;

/**
 * The deepest nesting of objects and arrays accepted in one JSON body, by the Worker (every MCP message,
 * on every path, and the admin API) and by the bridge (/execute and /servers/<id>/mcp). A JSON-RPC message
 * spends two levels before a tool's arguments (message → params → arguments) and real arguments a few more;
 * 64 leaves room for any of them while keeping every recursive consumer further on (JSON.stringify,
 * schema validators, a server's own parser) far from its stack limit: Node's JSON.stringify overflows
 * at about 5,000 levels, which a 10 KB body reaches.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a parsed JSON value nests objects and arrays more than `maxDepth` levels (a scalar is 0 deep,
 * `{}` and `[]` are 1, `{"a":[]}` is 2).
 *
 * SECURITY: iterative, never recursive: an explicit stack, so no input can exhaust the call stack, and it
 * stops at the first value past the limit. (JSON.parse itself is iterative in V8 and workerd; what
 * overflowed before this bound was the code that walked the parsed value.) The one depth check of the
 * Worker and the bridge: do not write another.
 */
export function jsonDepthExceeds(value: unknown, maxDepth: number = MAX_JSON_DEPTH): boolean {
  if (typeof value !== "object" || value === null) return false;
  const pending: object[] = [value];
  const depths: number[] = [1];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const depth = depths.pop() ?? 0;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/** The members a JSON-RPC 2.0 request has (§4): nothing else may stand beside them. */
const REQUEST_MEMBERS: ReadonlySet<string> = new Set(["jsonrpc", "id", "method", "params"]);

/**
 * What keeps `value` from being exactly one MCP JSON-RPC request (jsonrpc "2.0", an id that is a string or
 * a number, a method, optional params that are an object, and no other member), in words for its sender;
 * `null` when it is one. `execute_stdio` in the Worker and `/execute` in the bridge both refuse anything
 * else at once: a server built on the MCP SDK drops such a message without answering (a top-level
 * `"command"` member, params that are an array), and the call would hold an in-flight slot until it timed
 * out. JSON-RPC 2.0 also allows params as an array; MCP's requests never use one, and its SDK's servers
 * do not answer one, so it is refused too.
 */
export function jsonRpcRequestProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "must be one JSON object";
  const message = value as Record<string, unknown>;
  for (const member of Object.keys(message)) {
    if (!REQUEST_MEMBERS.has(member)) return `member not allowed: ${member.slice(0, 64)}`;
  }
  if (message.jsonrpc !== "2.0") return 'jsonrpc must be "2.0"';
  const id = message.id;
  if (typeof id !== "string" && (typeof id !== "number" || !Number.isFinite(id))) {
    return "id must be a string or a number";
  }
  if (typeof message.method !== "string" || message.method.length === 0) return "method must be a non-empty string";
  const params = message.params;
  if (Object.hasOwn(message, "params") && (typeof params !== "object" || params === null || Array.isArray(params))) {
    return "params must be an object";
  }
  return null;
}

/**
 * State that survives (issue 13): the bridge restores a process's data directory before the process starts
 * and saves it while it runs and when it stops, to storage the Worker owns (R2, worker/bridge/state.ts).
 *
 *     GET  <state origin>/bridge-state/v1/<server>   → 200 the archive | 404 nothing saved yet
 *     PUT  <state origin>/bridge-state/v1/<server>   body: the archive, `Hatago-State-Sha256: <digest>` → 204
 *
 * Deployed, the state origin is `http://bridge-state.hatago.internal`: a host that exists only inside the
 * container, whose requests the container's Durable Object intercepts (`@cloudflare/containers` outbound
 * handlers) and serves in the Worker. Locally it is the Worker's own URL (HATAGO_INSECURE_DEV_BRIDGE_URL mode).
 *
 * SECURITY: each request carries a credential with `use: "state"` minted by the bridge; the directory it
 * reaches is chosen by the credential's (`srv`, `sub`) and nothing else. The path must repeat `srv`; a save's
 * credential names its body's digest (`dig`), so it cannot carry another body.
 */
export const BRIDGE_STATE_PATH_PREFIX = "/bridge-state/v1/";
/** The host the container's outbound handler serves (never resolvable outside a container). */
export const BRIDGE_STATE_HOST = "bridge-state.hatago.internal";
/** base64url SHA-256 of a saved archive: sent with a save, returned with a restore. */
export const STATE_DIGEST_HEADER = "hatago-state-sha256";
/** The principal a `shared` server's state credential names: its directory belongs to no one person. */
export const SHARED_STATE_PRINCIPAL = "shared";
/**
 * A data directory's size limit when its catalog entry sets none (`stateMaxBytes`): 16 MiB holds a large
 * knowledge graph, and bounds what the bridge holds in memory while it saves (the archive is built whole).
 */
export const DEFAULT_STATE_MAX_BYTES = 16 * 1024 * 1024;
/**
 * The largest archive the Worker stores for a directory limit of `maxBytes`: the archive is compressed,
 * and compression can grow incompressible data a little (deflate: 5 bytes per 16 KiB block) plus the
 * per-file headers; the bridge checks the directory's own size against `maxBytes` before it sends.
 */
export function stateArchiveBoundBytes(maxBytes: number): number {
  return maxBytes + Math.ceil(maxBytes / 256) + 256 * 1024;
}

/**
 * Connections (issue 17): a person's upstream token, fetched by the bridge right before it starts (or calls)
 * that person's process of a server that declares one:
 *
 *     GET <connection origin>/bridge-connection/v1/<server>?tool=<name>   → 200 ConnectionAnswer | 503
 *
 * `connection` credentials are minted by the bridge and name exactly one (server, principal); deployed, the
 * origin is BRIDGE_CONNECTION_HOST, intercepted by the container's Durable Object like the state host, which
 * also checks the (server, principal) is that container's own. The Worker tells the bridge to drop a token
 * at once (disconnect, block) with `DELETE /connections/<server>` and a `connection-evict` credential.
 */
export const BRIDGE_CONNECTION_PATH_PREFIX = "/bridge-connection/v1/";
export const BRIDGE_CONNECTION_HOST = "bridge-connection.hatago.internal";
export const BRIDGE_EVICT_PREFIX = "/connections/";

/** What the Worker answers a bridge's connection request with. The token is in `connected` only. */
export type ConnectionAnswer =
  | { readonly status: "connected"; readonly token: string; readonly fingerprint: string }
  | { readonly status: "missing"; readonly connectUrl: string; readonly message: string };

export function bridgeConnectionPath(server: string): string {
  return `${BRIDGE_CONNECTION_PATH_PREFIX}${server}`;
}

/** The state path of one server. */
export function bridgeStatePath(server: string): string {
  return `${BRIDGE_STATE_PATH_PREFIX}${server}`;
}

/** base64url SHA-256 of bytes (the `dig` claim and `Hatago-State-Sha256`). */
export async function stateDigest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** Lifetime the Worker gives a credential: one request, plus clock skew between Worker and container. */
export const CREDENTIAL_TTL_SECONDS = 30;
/** The bridge refuses longer-lived credentials: this bounds how long a `jti` must be remembered. */
export const MAX_CREDENTIAL_LIFETIME_SECONDS = 60;
/** Tolerated clock difference between the Worker and the container. */
export const CLOCK_SKEW_SECONDS = 5;
/** HMAC-SHA-256 wants a key at least as long as its output; a shorter secret is refused at start-up. */
export const MIN_SECRET_BYTES = 32;
/** Longer tokens are malformed without parsing (claims are a few hundred bytes). */
const MAX_TOKEN_CHARS = 4096;
const VERSION = "v1";

/**
 * `mcp`, `execute` and `listen`: Worker → bridge. `state`: bridge → Worker, to restore or save one process's data
 * directory (container/src/state/, worker/bridge/state.ts); its `sub` and `srv` name the one directory.
 */
export type CredentialUse = "mcp" | "execute" | "listen" | "state" | "connection" | "connection-evict";

const CREDENTIAL_USES: readonly CredentialUse[] = [
  "mcp",
  "execute",
  "listen",
  "state",
  "connection",
  "connection-evict",
];

export interface BridgeClaims {
  readonly sub: string;
  readonly srv: string;
  readonly use: CredentialUse;
  readonly sid?: string;
  /** `state` saves only: base64url SHA-256 of the request body, so a credential cannot carry another body. */
  readonly dig?: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
}

export type CredentialFailure =
  | "missing"
  | "malformed"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "lifetime_too_long"
  | "wrong_server"
  | "wrong_use"
  | "wrong_session"
  | "wrong_body"
  | "replayed"
  | "replay_cache_full";

export type VerifyResult =
  | { readonly ok: true; readonly claims: BridgeClaims }
  | { readonly ok: false; readonly reason: CredentialFailure; readonly status: 401 | 403 | 503 };

/** 401: not a valid credential at all. 403: valid, but not for this request. 503: try again shortly. */
export const CREDENTIAL_FAILURE_STATUS: Readonly<Record<CredentialFailure, 401 | 403 | 503>> = {
  missing: 401,
  malformed: 401,
  bad_signature: 401,
  expired: 401,
  not_yet_valid: 401,
  lifetime_too_long: 401,
  replayed: 401,
  wrong_server: 403,
  wrong_use: 403,
  wrong_session: 403,
  wrong_body: 403,
  replay_cache_full: 503,
};

/** An imported HMAC key. Import once (at start-up) and reuse: importing per request costs CPU. */
export interface BridgeKey {
  readonly hmac: CryptoKey;
  /**
   * A synchronous check of an HMAC-SHA-256 tag over the same key, used instead of `crypto.subtle.verify`
   * when present. The bridge supplies one built on node:crypto (container/src/mac.ts): Node runs WebCrypto
   * on its thread pool, which costs ~50 µs of CPU and a thread round trip per request. SECURITY: it must
   * compare in constant time.
   */
  readonly verifyTag?: (tag: Uint8Array, data: Uint8Array) => boolean;
}

const encoder = new TextEncoder();

/** Refuses a secret shorter than MIN_SECRET_BYTES (UTF-8 bytes). SECURITY: there is no default secret. */
export async function importBridgeKey(secret: string): Promise<BridgeKey> {
  const bytes = encoder.encode(secret);
  if (bytes.byteLength < MIN_SECRET_BYTES) {
    throw new Error(`the bridge secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  const hmac = await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
  return { hmac };
}

export interface MintOptions {
  readonly principal: string;
  readonly server: string;
  readonly use: CredentialUse;
  /** The bridge's MCP session id, for every request of a session after `initialize`. */
  readonly sessionId?: string;
  /** `state` saves: base64url SHA-256 of the body (`bodyDigest`). */
  readonly bodyDigest?: string;
  readonly ttlSeconds?: number;
  /** Seconds since the epoch (tests). */
  readonly now?: number;
}

export async function mintBridgeCredential(key: BridgeKey, options: MintOptions): Promise<string> {
  const iat = options.now ?? nowSeconds();
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const claims: BridgeClaims = {
    sub: options.principal,
    srv: options.server,
    use: options.use,
    ...(options.sessionId === undefined ? {} : { sid: options.sessionId }),
    ...(options.bodyDigest === undefined ? {} : { dig: options.bodyDigest }),
    iat,
    exp: iat + (options.ttlSeconds ?? CREDENTIAL_TTL_SECONDS),
    jti: base64url(nonce),
  };
  const signed = `${VERSION}.${base64url(encoder.encode(JSON.stringify(claims)))}`;
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key.hmac, encoder.encode(signed)));
  return `${signed}.${base64url(signature)}`;
}

export interface VerifyOptions {
  readonly key: BridgeKey;
  readonly replay: ReplayCache;
  /** The server the request is for (from the route, or the /execute body). */
  readonly server: string;
  readonly use: CredentialUse;
  /** The request's `Mcp-Session-Id` header, `undefined` when absent. Must equal the claim `sid`. */
  readonly sessionId: string | undefined;
  /** The body's base64url SHA-256 for a `state` save; must equal the claim `dig` (both absent otherwise). */
  readonly bodyDigest?: string;
  readonly now?: number;
}

export async function verifyBridgeCredential(
  token: string | null | undefined,
  options: VerifyOptions,
): Promise<VerifyResult> {
  if (token === null || token === undefined || token === "") return fail("missing");
  if (token.length > MAX_TOKEN_CHARS) return fail("malformed");
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return fail("malformed");
  const [, payload = "", sig = ""] = parts;
  const signature = fromBase64url(sig);
  const payloadBytes = fromBase64url(payload);
  if (signature?.byteLength !== 32 || !payloadBytes) return fail("malformed");
  // SECURITY: check the MAC (constant time) before looking at any claim.
  const signed = encoder.encode(`${VERSION}.${payload}`);
  const valid = options.key.verifyTag
    ? options.key.verifyTag(signature, signed)
    : await crypto.subtle.verify("HMAC", options.key.hmac, signature, signed);
  if (!valid) return fail("bad_signature");
  const claims = parseClaims(payloadBytes);
  if (!claims) return fail("malformed");
  const now = options.now ?? nowSeconds();
  if (claims.exp - claims.iat > MAX_CREDENTIAL_LIFETIME_SECONDS) return fail("lifetime_too_long");
  if (claims.iat > now + CLOCK_SKEW_SECONDS) return fail("not_yet_valid");
  if (now > claims.exp + CLOCK_SKEW_SECONDS) return fail("expired");
  if (claims.srv !== options.server) return fail("wrong_server");
  if (claims.use !== options.use) return fail("wrong_use");
  if (claims.sid !== options.sessionId) return fail("wrong_session");
  if (claims.dig !== options.bodyDigest) return fail("wrong_body");
  // Last: only a credential that would otherwise be accepted spends its nonce.
  const claimed = options.replay.claim(claims.jti, claims.exp, now);
  if (claimed !== "fresh") return fail(claimed);
  return { ok: true, claims };
}

/**
 * The `jti` values seen and not yet expired. Bounded: when full of live entries it refuses new ones
 * (`replay_cache_full`, 503) rather than forgetting one, since forgetting would allow a replay.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#seen.size;
  }

  claim(jti: string, exp: number, now: number): "fresh" | "replayed" | "replay_cache_full" {
    if (this.#seen.has(jti)) return "replayed";
    // Entries go in roughly in expiry order, so expired ones gather at the front.
    for (const [seen, seenExp] of this.#seen) {
      if (seenExp + CLOCK_SKEW_SECONDS >= now) break;
      this.#seen.delete(seen);
    }
    if (this.#seen.size >= this.#maxEntries) {
      for (const [seen, seenExp] of this.#seen) if (seenExp + CLOCK_SKEW_SECONDS < now) this.#seen.delete(seen);
      if (this.#seen.size >= this.#maxEntries) return "replay_cache_full";
    }
    this.#seen.set(jti, exp);
    return "fresh";
  }
}

function fail(reason: CredentialFailure): VerifyResult {
  return { ok: false, reason, status: CREDENTIAL_FAILURE_STATUS[reason] };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const SESSION_ID = /^[\x21-\x7e]{1,128}$/;
const JTI = /^[A-Za-z0-9_-]{16,64}$/;
const DIGEST = /^[A-Za-z0-9_-]{43}$/;

/** Narrows the signed JSON field by field; anything unexpected is `malformed`. */
function parseClaims(bytes: Uint8Array): BridgeClaims | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const c = raw as Record<string, unknown>;
  const { sub, srv, use, sid, dig, iat, exp, jti } = c;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 512 || hasControlChars(sub)) return undefined;
  if (typeof srv !== "string" || srv.length === 0 || srv.length > 64) return undefined;
  const knownUse = CREDENTIAL_USES.find((u) => u === use);
  if (knownUse === undefined) return undefined;
  if (sid !== undefined && (typeof sid !== "string" || !SESSION_ID.test(sid))) return undefined;
  if (dig !== undefined && (typeof dig !== "string" || !DIGEST.test(dig))) return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return undefined;
  if (typeof iat !== "number" || typeof exp !== "number" || exp <= iat) return undefined;
  if (typeof jti !== "string" || !JTI.test(jti)) return undefined;
  return {
    sub,
    srv,
    use: knownUse,
    ...(sid === undefined ? {} : { sid }),
    ...(dig === undefined ? {} : { dig }),
    iat,
    exp,
    jti,
  };
}

function hasControlChars(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** base64url without padding (RFC 4648 §5): credentials here, and the Worker's tokens and states. */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Strict: anything outside the base64url alphabet (padding included) or undecodable is `undefined`. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}
