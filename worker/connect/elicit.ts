import type { Kysely } from "kysely";
import { connectionOf, isolationOf, type ServerId } from "../../policies/catalog.ts";
import { type Config, type ConnectConfig, type ConnectProviderConfig, parseConfig } from "../config.ts";
import { connectionExists } from "../db/connections.repository.ts";
import type { Database } from "../db/database.ts";
import { derivedHmacKey } from "../http/derived-key.ts";
import { base64url } from "../http/random.ts";

/**
 * Asking a person to connect, from inside a tool call (issue 17, MCP 2025-11-25 "URL mode elicitation"): a call
 * to a server whose connection the caller has not made asks the client to open the connect page, waits for the
 * connection to exist, and then goes on. The pieces here belong to no era: the request (a URL-mode
 * `elicitation/create` whose URL is bound to the person), recognising the answer, and looking for the new
 * connection. The legacy session path sends the request over its stream and waits in place
 * (`askForConnection`); the 2026-07-28 path carries the same request inside an InputRequiredResult and looks
 * again when the client retries.
 *
 * SECURITY (the specification's "Phishing" section): the link carries a tag that binds it to the person the
 * call was made for and to the provider. The connect page refuses it for anyone else, so a link passed to
 * another person cannot make them connect "for" the sender; and the token is always stored for whoever is
 * signed in at /connect, never for the person named by the link. The URL holds no personal data: the tag is a
 * MAC, not the principal.
 */

/**
 * How long a call waits for the person to finish connecting after their client opened the link: signing in
 * and the upstream's consent page take a person a minute or two. The client's own request timeout may be
 * shorter (the SDK's default is 60 s); the call then ends on the client's side and the next one succeeds.
 */
export const CONNECT_WAIT_MS = 300_000;
/** How often the wait looks for the connection: one D1 read by primary key. */
const CONNECT_POLL_MS = 1_000;
/** The query parameter of /connect/<provider> that carries the link's binding. */
export const ELICITATION_PARAM = "elicitation";
/** `<elicitationId>.<tag>`: a UUID, then 22 base64url characters (128 bits of HMAC-SHA-256). */
const LINK = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{22})$/;

/** One ask: what the client is shown and where the link leads. */
export interface ConnectionAsk {
  readonly server: ServerId;
  readonly provider: ConnectProviderConfig;
  readonly elicitationId: string;
  /** The connect page, bound to the person and provider (`?elicitation=<id>.<tag>`). */
  readonly url: string;
  readonly message: string;
}

/** The connect page of a provider without any binding, for error texts. */
export function connectPageUrl(publicUrl: string, provider: string): string {
  return `${publicUrl}/connect/${provider}`;
}

/** The settings an ask needs: where the gateway is, which providers exist, and the key ring to bind links with. */
export class ConnectElicitation {
  readonly publicUrl: string;
  readonly #providers: ReadonlyMap<string, ConnectProviderConfig>;
  readonly #keys: readonly { readonly id: string; readonly raw: Uint8Array }[];
  #macKeys: Promise<CryptoKey[]> | undefined;

  constructor(publicUrl: string, connect: ConnectConfig) {
    this.publicUrl = publicUrl;
    this.#providers = new Map(connect.providers.map((p) => [p.id, p]));
    this.#keys = connect.keys;
  }

  /**
   * The ask for a call of `principal` to `server`, or null when there is nothing to ask: the server acts with
   * no connection (or is not per-user), this gateway has no such provider, or the connection exists.
   */
  async missing(db: Kysely<Database>, principal: string, server: ServerId): Promise<ConnectionAsk | null> {
    const spec = connectionOf(server);
    if (!spec || isolationOf(server) !== "per-user") return null;
    const provider = this.#providers.get(spec.provider);
    if (!provider || (await connectionExists(db, principal, provider.id))) return null;
    const elicitationId = crypto.randomUUID();
    const tag = await this.#tag(0, elicitationId, principal, provider.id);
    const url = new URL(connectPageUrl(this.publicUrl, provider.id));
    url.searchParams.set(ELICITATION_PARAM, `${elicitationId}.${tag}`);
    return {
      server,
      provider,
      elicitationId,
      url: url.toString(),
      message:
        `The "${server}" server acts with your own ${provider.label} account, which you have not connected yet. ` +
        `Open this page to connect it; the call continues when you are done.`,
    };
  }

  /** A configured provider by id. */
  provider(id: string): ConnectProviderConfig | null {
    return this.#providers.get(id) ?? null;
  }

  /**
   * Whether a link's binding (`?elicitation=`) was made for this person and provider: any key of the ring
   * (a link made just before a rotation still opens). `absent` when the page was opened without one.
   */
  async checkLink(value: string | null, principal: string, provider: string): Promise<"absent" | "ours" | "not_ours"> {
    if (value === null) return "absent";
    const match = LINK.exec(value);
    if (!match?.[1] || !match[2]) return "not_ours";
    const keys = await this.#macs();
    for (let i = 0; i < keys.length; i++) {
      if (timingSafeEqual(await this.#tag(i, match[1], principal, provider), match[2])) return "ours";
    }
    return "not_ours";
  }

  async #tag(keyIndex: number, elicitationId: string, principal: string, provider: string): Promise<string> {
    const key = (await this.#macs())[keyIndex];
    if (!key) throw new Error("the connection key ring is empty");
    const data = new TextEncoder().encode(
      `hatago connect link v1\u0000${elicitationId}\u0000${principal}\u0000${provider}`,
    );
    return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, data))).slice(0, 22);
  }

  /** One MAC key per sealing key, derived (HKDF) so the sealing key itself never signs anything. */
  #macs(): Promise<CryptoKey[]> {
    this.#macKeys ??= Promise.all(this.#keys.map(({ raw }) => derivedHmacKey(raw, "hatago connect link v1")));
    return this.#macKeys;
  }
}

/** The asks of a parsed configuration; null when no provider is configured. */
export function connectElicitationFor(config: Config): ConnectElicitation | null {
  return config.connect.providers.length > 0 ? new ConnectElicitation(config.publicUrl, config.connect) : null;
}

/**
 * The same, for code that holds only `env` (the session Durable Object): built once per env object, as the
 * settings do not change while an isolate lives.
 */
const byEnv = new WeakMap<object, ConnectElicitation | null>();
export function connectElicitationOf(env: object): ConnectElicitation | null {
  let found = byEnv.get(env);
  if (found === undefined) {
    const parsed = parseConfig(env);
    found = parsed.ok ? connectElicitationFor(parsed.config) : null;
    byEnv.set(env, found);
  }
  return found;
}

/** The `elicitation/create` params of an ask, as MCP 2025-11-25 has them (with the id its notice names). */
export function elicitRequestParams(ask: ConnectionAsk) {
  return { mode: "url" as const, message: ask.message, url: ask.url, elicitationId: ask.elicitationId };
}

/**
 * The same ask as a 2026-07-28 input request (an entry of an InputRequiredResult's `inputRequests`): that
 * revision's URL mode has no `elicitationId` (the map's key names the request) and no completion notice.
 */
export function elicitInputRequest(ask: ConnectionAsk) {
  return {
    method: "elicitation/create" as const,
    params: { mode: "url" as const, message: ask.message, url: ask.url },
  };
}

/** The person's answer to the ask, from an ElicitResult as the client sent it (untrusted); null when it is not one. */
export function elicitAnswer(result: unknown): "accept" | "decline" | "cancel" | null {
  if (typeof result !== "object" || result === null) return null;
  const action: unknown = Reflect.get(result, "action");
  return action === "accept" || action === "decline" || action === "cancel" ? action : null;
}

/** Looks for the connection every second until it exists, the deadline passes, or the call is cancelled. */
export async function waitForConnection(
  db: Kysely<Database>,
  principal: string,
  provider: string,
  options: { readonly deadlineMs: number; readonly signal?: AbortSignal; readonly pollMs?: number },
): Promise<"connected" | "timeout" | "cancelled"> {
  const poll = options.pollMs ?? CONNECT_POLL_MS;
  for (;;) {
    if (options.signal?.aborted) return "cancelled";
    if (await connectionExists(db, principal, provider)) return "connected";
    const left = options.deadlineMs - Date.now();
    if (left <= 0) return "timeout";
    await sleep(Math.min(poll, left), options.signal);
  }
}

/** Why a call that asked for a connection ends without it: a tool error the person can act on. */
export function connectionRefusal(
  publicUrl: string,
  ask: Pick<ConnectionAsk, "server" | "provider">,
  why: "declined" | "cancelled" | "timeout" | "unanswered",
) {
  const page = connectPageUrl(publicUrl, ask.provider.id);
  const reason = {
    declined: `You declined to connect your ${ask.provider.label} account, so the "${ask.server}" server cannot act as you.`,
    cancelled: `Connecting your ${ask.provider.label} account was cancelled, so the "${ask.server}" server cannot act as you.`,
    timeout: `Your ${ask.provider.label} account was not connected in time, so the call was not made.`,
    unanswered: `The "${ask.server}" server acts with your own ${ask.provider.label} account, which you have not connected yet.`,
  }[why];
  return {
    content: [{ type: "text" as const, text: `${reason} Open ${page} to connect it, then call again.` }],
    isError: true,
  };
}

/** How the legacy session path talks to its client during one call (the SDK handler's `extra`). */
export interface AskChannel {
  /** Sends `elicitation/create` on the call's stream; resolves to the client's result. */
  elicit(params: ReturnType<typeof elicitRequestParams>, options: { timeout: number }): Promise<unknown>;
  /** Sends `notifications/elicitation/complete` on the call's stream. */
  complete(elicitationId: string): Promise<void>;
  readonly signal: AbortSignal;
}

/**
 * The legacy era (2025-11-25 sessions whose client declared `elicitation.url`): before a call is sent to a
 * server whose connection the caller has not made, ask the client to open the connect page, wait for the
 * connection, tell the client the elicitation completed, and let the call go on (null). A refusal, a
 * cancellation, a timeout or an answer that is not one ends the call with a tool error that gives the
 * connect page (the same shape as the bridge's own answer for a missing connection).
 */
export async function askForConnection(
  elicitation: ConnectElicitation,
  db: Kysely<Database>,
  principal: string,
  server: ServerId,
  channel: AskChannel,
  wait: { readonly waitMs?: number; readonly pollMs?: number } = {},
): Promise<ReturnType<typeof connectionRefusal> | null> {
  const ask = await elicitation.missing(db, principal, server);
  if (!ask) return null;
  const waitMs = wait.waitMs ?? CONNECT_WAIT_MS;
  const deadlineMs = Date.now() + waitMs;
  let answer: ReturnType<typeof elicitAnswer>;
  try {
    answer = elicitAnswer(await channel.elicit(elicitRequestParams(ask), { timeout: waitMs }));
  } catch {
    // The client did not answer in time, refused the request, or the call was cancelled.
    return connectionRefusal(elicitation.publicUrl, ask, channel.signal.aborted ? "cancelled" : "unanswered");
  }
  if (answer !== "accept")
    return connectionRefusal(elicitation.publicUrl, ask, answer === "decline" ? "declined" : "cancelled");
  const waited = await waitForConnection(db, principal, ask.provider.id, {
    deadlineMs,
    signal: channel.signal,
    ...(wait.pollMs === undefined ? {} : { pollMs: wait.pollMs }),
  });
  if (waited !== "connected") return connectionRefusal(elicitation.publicUrl, ask, waited);
  // The specification's completion notice (2025-11-25, "Completion Notifications"): best effort, the call goes on.
  await channel.complete(ask.elicitationId).catch(() => {});
  return null;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The purpose a 2026-07-28 requestState names when the gateway asked to connect (its `gateway` origin). */
export const CONNECT_PURPOSE = "connect";
/** The key of the ask in an InputRequiredResult's `inputRequests`. */
export const CONNECT_INPUT_KEY = "hatago-connect";

export type ConnectionGate =
  /** Send the call: nothing is missing (or nothing can be asked). */
  | { readonly kind: "go" }
  /** Answer with an InputRequiredResult holding `request` under `key`; seal `data` into its requestState. */
  | {
      readonly kind: "ask";
      readonly key: string;
      readonly request: ReturnType<typeof elicitInputRequest>;
      readonly data: { readonly provider: string };
    }
  /** Answer with this tool error: declined, cancelled, not connected in time. */
  | { readonly kind: "answer"; readonly result: ReturnType<typeof connectionRefusal> };

/**
 * The 2026-07-28 era (MRTR, basic/patterns/mrtr): the same ask travels inside an InputRequiredResult, and the
 * retry carries the answer. `retry` is the gateway-origin retry of this call (its sealed provider and the
 * client's responses), or null for a call of its own. On `accept` the retry waits for the connection, as the
 * revision's URL-mode flow allows ("it may need to block until the request is fulfilled").
 */
export async function connectionGate(
  elicitation: ConnectElicitation,
  db: Kysely<Database>,
  principal: string,
  server: ServerId,
  declaresUrl: boolean,
  retry: { readonly provider: string; readonly responses: Readonly<Record<string, unknown>> } | null,
  options: { readonly signal?: AbortSignal; readonly waitMs?: number; readonly pollMs?: number } = {},
): Promise<ConnectionGate> {
  if (retry === null) {
    const ask = declaresUrl ? await elicitation.missing(db, principal, server) : null;
    return ask
      ? { kind: "ask", key: CONNECT_INPUT_KEY, request: elicitInputRequest(ask), data: { provider: ask.provider.id } }
      : { kind: "go" };
  }
  const spec = connectionOf(server);
  const provider = elicitation.provider(retry.provider);
  // A state sealed for another provider than the server's: not this call's ask (the MAC makes this a bug).
  if (!spec || !provider || spec.provider !== provider.id) return { kind: "go" };
  const ask = { server, provider };
  const answer = elicitAnswer(retry.responses[CONNECT_INPUT_KEY]);
  if (answer !== "accept") {
    return {
      kind: "answer",
      result: connectionRefusal(elicitation.publicUrl, ask, answer === "decline" ? "declined" : "cancelled"),
    };
  }
  const waited = await waitForConnection(db, principal, provider.id, {
    deadlineMs: Date.now() + (options.waitMs ?? CONNECT_WAIT_MS),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
  });
  return waited === "connected"
    ? { kind: "go" }
    : { kind: "answer", result: connectionRefusal(elicitation.publicUrl, ask, waited) };
}
