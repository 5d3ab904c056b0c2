import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { EXECUTE_EVENTS, type ExecuteInputEvent, type ExecuteModern } from "./contract.ts";
import { isJsonObject, type JsonObject, type JsonRpcId, RPC_ERROR, withId } from "./jsonrpc.ts";
import type { Logger } from "./log.ts";
import type { Multiplexer } from "./multiplexer.ts";
import { type CallSink, type ClientCaps, LOG_SEVERITY, type PendingCall, type Port } from "./port.ts";
import { SSE_HEADERS } from "./sse.ts";

/**
 * A 2026-07-28 call through `/execute` (MCP basic/patterns/mrtr): the bridge's half of Multi Round-Trip
 * Requests for a stdio server, which knows nothing of them and simply asks its client (sampling,
 * elicitation, roots) in the middle of a call and waits.
 *
 * The call is sent to the child as any other. Its answer to the Worker is an SSE stream (contract.ts,
 * EXECUTE_EVENTS): notifications about the call (progress, log lines at or above the request's level), then
 * the call's response, or, when the child asks its client something, an `input` event carrying the child's
 * request(s). The HTTP exchange then ends but the CALL DOES NOT: it stays in flight toward the child, which
 * is still waiting for its answer, and is kept here under a random id until the client's retry brings the
 * answers (`resume`): they are written to the child as the answers to its requests, and the same call goes
 * on, on the retry's exchange, until its response or its next question.
 *
 * SECURITY: a waiting call is found by (id, principal, server, binding, round) together: the principal comes
 * from the retry's verified credential, the binding (the Worker's digest of the tool and arguments) must be
 * the first leg's, and the round must be the one whose questions are being answered, so a requestState is
 * good for one retry only. Any mismatch is the same 404 as an unknown id: nothing tells a caller that someone
 * else's call exists. The Worker checks its own MAC over the same facts first (worker/mcp/modern/).
 *
 * TIMEOUT: a call waiting for input is still a call in flight, bounded by the bridge's call timeout
 * (HATAGO_BRIDGE_CALL_TIMEOUT_MS, 60 s by default) counted from when it was sent, like a legacy session's
 * call waiting for its client's sampling answer. When it runs out, the child's outstanding request(s) are
 * answered with a JSON-RPC error, the call is cancelled toward the child (`notifications/cancelled`), and
 * the call is forgotten: a retry after that gets 404.
 */

/** `RPC_ERROR.requestTimeout`: what the child's request gets when the client never answered it. */
const NOT_ANSWERED_IN_TIME = "bridge: the client did not answer in time";
/**
 * The wait ends this much before the call's own timer (multiplexer.ts) would: the child then hears why (its
 * request answered with NOT_ANSWERED_IN_TIME, then `notifications/cancelled`) instead of a bare timeout.
 */
const DEADLINE_LEAD_MS = 50;

/** The port of one modern call: one principal, the capabilities and log level of its current request. */
export class ModernPort implements Port {
  readonly principal: string;
  readonly label = "modern";
  caps: ClientCaps;
  #minLogSeverity: number | undefined;
  readonly calls = new Map<JsonRpcId, PendingCall>();
  readonly subscriptions = new Set<string>();

  constructor(principal: string, modern: ExecuteModern) {
    this.principal = principal;
    this.caps = modern.caps;
    this.#minLogSeverity = severityOf(modern.logLevel);
  }

  /** A retry brings its own request's capabilities and log level. */
  update(modern: ExecuteModern): void {
    this.caps = modern.caps;
    this.#minLogSeverity = severityOf(modern.logLevel);
  }

  deliver(): void {}

  /** The revision: no `notifications/message` for a request that set no log level; else at or above it. */
  acceptsLog(level: unknown): boolean {
    if (this.#minLogSeverity === undefined) return false;
    const severity = typeof level === "string" ? LOG_SEVERITY[level] : undefined;
    return severity === undefined || severity >= this.#minLogSeverity;
  }
}

function severityOf(level: string | null): number | undefined {
  return level !== null && Object.hasOwn(LOG_SEVERITY, level) ? LOG_SEVERITY[level] : undefined;
}

/** The methods a server may ask its client through MRTR (mrtr: "Supported Requests" of InputRequests). */
const INPUT_METHODS: ReadonlySet<string> = new Set(["elicitation/create", "sampling/createMessage", "roots/list"]);

type Phase = "attached" | "waiting" | "ended";

interface Asked {
  readonly bridgeId: number;
  readonly method: string;
  readonly params: unknown;
}

export interface ModernCallInit {
  readonly mux: Multiplexer;
  readonly port: ModernPort;
  readonly server: string;
  readonly binding: string;
  /** The first leg's JSON-RPC id: the id the multiplexer knows the call by. */
  readonly clientId: JsonRpcId;
  readonly callTimeoutMs: number;
  readonly registry: PendingCalls;
  readonly log: Logger;
}

export class ModernCall implements CallSink {
  /** 128 random bits, base64url: the handle the Worker seals into its requestState. */
  readonly id = randomBytes(16).toString("base64url");
  readonly #o: ModernCallInit;
  readonly #sentAtMs = Date.now();
  #phase: Phase = "attached";
  #res: ServerResponse | undefined;
  /** The current leg's JSON-RPC id: the response is relabelled to it. */
  #legId: JsonRpcId;
  #round = 0;
  /** The child's requests not yet sent to the client, and those sent in the current round, by key. */
  readonly #queued = new Map<string, Asked>();
  readonly #asked = new Map<string, Asked>();
  #flushScheduled = false;
  /** The call's response when it came while nobody was attached (the child gave up waiting, say). */
  #final: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #cleaned = false;

  constructor(init: ModernCallInit) {
    this.#o = init;
    this.#legId = init.clientId;
  }

  get principal(): string {
    return this.#o.port.principal;
  }

  get server(): string {
    return this.#o.server;
  }

  get binding(): string {
    return this.#o.binding;
  }

  get round(): number {
    return this.#round;
  }

  /** Waiting for a retry: nobody attached, and a round of questions sent. */
  get waiting(): boolean {
    return this.#phase === "waiting";
  }

  /** Starts the first leg's stream (headers at once: the Worker streams to its client from here). */
  attach(res: ServerResponse): void {
    this.#res = res;
    res.writeHead(200, SSE_HEADERS);
    res.on("close", () => this.#clientGone(res));
  }

  // CallSink: what the multiplexer tells the call.

  message(json: string): void {
    if (this.#phase === "ended") return;
    let msg: unknown;
    try {
      msg = JSON.parse(json);
    } catch {
      return;
    }
    if (!isJsonObject(msg) || typeof msg.method !== "string") return;
    if (msg.id !== undefined) {
      this.#childAsks(msg.id, msg.method, msg);
      return;
    }
    if (msg.method === "notifications/cancelled") {
      // The child withdrew one of its requests (routing.ts gave us its bridge id): nothing left to ask.
      const requestId = isJsonObject(msg.params) ? msg.params.requestId : undefined;
      this.#forget(String(requestId));
      return;
    }
    // Progress and log lines belong to the exchange that carries the call; while it waits there is none.
    if (this.#phase === "attached") this.#write(EXECUTE_EVENTS.notification, json);
  }

  done(json: string): void {
    if (this.#phase === "ended") return;
    if (this.#phase === "waiting") {
      // Kept for the retry until the call's deadline; the child's requests can no longer matter.
      this.#final = json;
      this.#cleanup();
      return;
    }
    this.#write(EXECUTE_EVENTS.response, relabel(json, this.#o.clientId, this.#legId));
    this.#end();
  }

  abandon(): void {
    if (this.#phase === "ended") return;
    this.#end();
  }

  /**
   * A retry: the client's answers go to the child's requests of this round (an answer that is not an
   * object, or a missing one, leaves its request to be asked again, as the revision suggests), and the call
   * continues on `res`.
   */
  resume(
    res: ServerResponse,
    legId: JsonRpcId,
    modern: ExecuteModern & { resume: NonNullable<ExecuteModern["resume"]> },
  ) {
    this.#o.port.update(modern);
    this.#legId = legId;
    const responses = modern.resume.responses;
    for (const [key, asked] of this.#asked) {
      const answer = Object.hasOwn(responses, key) ? responses[key] : undefined;
      if (isJsonObject(answer)) {
        this.#o.mux.answer(
          this.#o.port,
          asked.bridgeId,
          { jsonrpc: "2.0", id: asked.bridgeId, result: answer },
          undefined,
        );
      } else {
        this.#queued.set(key, asked);
      }
    }
    this.#asked.clear();
    this.#phase = "attached";
    this.attach(res);
    if (this.#final !== undefined) {
      this.#write(EXECUTE_EVENTS.response, relabel(this.#final, this.#o.clientId, legId));
      this.#end();
      return;
    }
    if (this.#queued.size > 0) this.#flush();
  }

  /** The retry was refused by the Worker (the decision changed): the call ends here. */
  cancel(reason: string): void {
    this.#answerChildRequests(RPC_ERROR.internalError, `bridge: ${reason}`);
    if (this.#final === undefined) this.#o.mux.cancel(this.#o.port, this.#o.clientId, reason);
    this.#end();
  }

  #childAsks(id: unknown, method: string, msg: JsonObject): void {
    if (typeof id !== "number") return;
    if (!INPUT_METHODS.has(method)) {
      // MRTR carries only sampling, elicitation and roots; anything else the child asks is not supported.
      this.#o.mux.answer(
        this.#o.port,
        id,
        errorMessage(id, RPC_ERROR.methodNotFound, `bridge: ${method} is not supported`),
        undefined,
      );
      return;
    }
    this.#queued.set(String(id), { bridgeId: id, method, params: msg.params });
    if (this.#phase === "attached" && !this.#flushScheduled) {
      // A child that asks several things at once writes them back to back: one round carries them all.
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        if (this.#phase === "attached" && this.#queued.size > 0) this.#flush();
      });
    }
  }

  /** Sends the queued questions to the client and ends this exchange; the call waits for the retry. */
  #flush(): void {
    const requests: Record<string, { method: string; params?: unknown }> = {};
    for (const [key, asked] of this.#queued) {
      requests[key] =
        asked.params === undefined ? { method: asked.method } : { method: asked.method, params: asked.params };
      this.#asked.set(key, asked);
    }
    this.#queued.clear();
    this.#round += 1;
    const event: ExecuteInputEvent = { pending: this.id, round: this.#round, requests };
    this.#write(EXECUTE_EVENTS.input, JSON.stringify(event));
    this.#phase = "waiting";
    const res = this.#res;
    this.#res = undefined;
    res?.end();
    this.#o.registry.add(this);
    if (!this.#timer) {
      const left = Math.max(0, this.#sentAtMs + this.#o.callTimeoutMs - DEADLINE_LEAD_MS - Date.now());
      this.#timer = setTimeout(() => this.#deadline(), left);
      this.#timer.unref();
    }
    this.#o.log.debug("modern.waiting_for_input", { child: this.#o.mux.label, round: this.#round });
  }

  #deadline(): void {
    this.#timer = undefined;
    if (this.#phase !== "waiting") return;
    if (this.#final === undefined) {
      // SECURITY/REL: the child is not left waiting for an answer that will never come, nor left working.
      this.#answerChildRequests(RPC_ERROR.requestTimeout, NOT_ANSWERED_IN_TIME);
      this.#o.mux.cancel(this.#o.port, this.#o.clientId, "the client did not answer in time");
      this.#o.log.info("modern.input_timed_out", { child: this.#o.mux.label, ms: this.#o.callTimeoutMs });
    }
    this.#end();
  }

  #forget(key: string): void {
    this.#queued.delete(key);
    this.#asked.delete(key);
  }

  #answerChildRequests(code: number, message: string): void {
    for (const asked of [...this.#asked.values(), ...this.#queued.values()]) {
      this.#o.mux.answer(this.#o.port, asked.bridgeId, errorMessage(asked.bridgeId, code, message), undefined);
    }
    this.#asked.clear();
    this.#queued.clear();
  }

  /** The client went away mid-exchange: that cancels the call (streamable-http, "Cancellation"). */
  #clientGone(res: ServerResponse): void {
    if (this.#res !== res || res.writableEnded || this.#phase !== "attached") return;
    this.#o.mux.cancel(this.#o.port, this.#o.clientId, "client disconnected");
    this.#end();
  }

  #write(event: string, json: string): void {
    const res = this.#res;
    if (res && !res.destroyed && !res.writableEnded) res.write(`event: ${event}\ndata: ${json}\n\n`);
  }

  #end(): void {
    this.#phase = "ended";
    const res = this.#res;
    this.#res = undefined;
    if (res && !res.writableEnded) res.end();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.registry.remove(this);
    this.#cleanup();
  }

  /** Once the call is over: whatever the child still asks of this port is answered with an error. */
  #cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.#queued.clear();
    this.#asked.clear();
    this.#o.mux.detach(this.#o.port);
  }
}

/**
 * The calls waiting for their clients' answers, by id. SECURITY: `find` matches every fact at once and
 * says nothing about which one failed.
 */
export class PendingCalls {
  readonly #calls = new Map<string, ModernCall>();

  get size(): number {
    return this.#calls.size;
  }

  add(call: ModernCall): void {
    this.#calls.set(call.id, call);
  }

  remove(call: ModernCall): void {
    if (this.#calls.get(call.id) === call) this.#calls.delete(call.id);
  }

  find(id: string, principal: string, server: string, binding: string, round: number): ModernCall | undefined {
    const call = this.#calls.get(id);
    if (!call?.waiting) return undefined;
    if (call.principal !== principal || call.server !== server) return undefined;
    if (call.binding !== binding || call.round !== round) return undefined;
    return call;
  }
}

const registries = new WeakMap<object, PendingCalls>();

/** The waiting calls of one bridge (keyed by its pool: one per process, created on first use). */
export function pendingCallsOf(owner: object): PendingCalls {
  let registry = registries.get(owner);
  if (!registry) {
    registry = new PendingCalls();
    registries.set(owner, registry);
  }
  return registry;
}

function errorMessage(id: number, code: number, message: string): JsonObject {
  return { jsonrpc: "2.0", id, error: { code, message } };
}

/** `json` (a response with `oldId`) with `newId` instead. */
function relabel(json: string, oldId: JsonRpcId, newId: JsonRpcId): string {
  if (oldId === newId) return json;
  // The multiplexer's responses end with the id (jsonrpc.ts, withId): no need to parse a large result.
  if (json.endsWith(`,"id":${JSON.stringify(oldId)}}`)) return withId(json, {}, oldId, newId);
  let msg: unknown;
  try {
    msg = JSON.parse(json);
  } catch {
    return json;
  }
  return isJsonObject(msg) ? withId(json, msg, oldId, newId) : json;
}
