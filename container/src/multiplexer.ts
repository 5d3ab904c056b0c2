import { ChildSupervisor, type SupervisorOptions, type SupervisorSnapshot } from "./child.ts";
import { toLine } from "./framing.ts";
import { INIT_ID, INIT_TIMEOUT_MS, INITIALIZE_LINE, INITIALIZED_LINE, ParkedError } from "./handshake.ts";
import {
  classify,
  errorResponse,
  isJsonRpcId,
  type JsonObject,
  type JsonRpcId,
  metaOf,
  notification,
  RPC_ERROR,
  withId,
} from "./jsonrpc.ts";
import type { ChangeListener } from "./listener.ts";
import type { Logger } from "./log.ts";
import type { CallSink, PendingCall, Port } from "./port.ts";
import { type RoutingHost, routeChildMessage } from "./routing.ts";

/**
 * One stdio server process shared by several ports (sessions of one principal, or everyone for a
 * `shared` server). It initializes the child once, then remaps every id that crosses it:
 *
 * - client request ids → a per-child counter (so two users' id 0 never meet) and back on the response;
 * - progress tokens → the same counter, so progress goes back to exactly the call that asked for it;
 * - server→client request ids → a bridge counter, and the client's answer is accepted only from the
 *   port the request was routed to.
 *
 * Messages without a causal link on the wire (logs, server→client requests) follow routing.ts.
 */

export interface ServerCounters {
  inFlight: number;
}

export interface MultiplexerOptions {
  readonly label: string;
  readonly isolation: "per-user" | "shared";
  readonly supervisor: Omit<SupervisorOptions, "label" | "log" | "onSpawn" | "onLine" | "onExit" | "wanted">;
  readonly log: Logger;
  readonly callTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly counters: ServerCounters;
  /** Called after an idle stop, so the owner can forget this multiplexer. */
  readonly onIdleStop: () => void;
  /** The last call in flight was answered (the data directory's keeper saves soon after). */
  readonly onQuiet?: () => void;
  /** The process exited, expectedly or not (its data directory is saved). */
  readonly onChildExit?: (expected: boolean) => void;
  /** The `/listen` streams on this process, looked up when a change arrives (listeners.ts). */
  readonly listeners?: () => Iterable<ChangeListener>;
  /** The process answered `initialize` (a new process: the listeners' resource subscriptions are sent again). */
  readonly onReady?: () => void;
}

type Phase = "down" | "initializing" | "ready";

export class Multiplexer implements RoutingHost {
  readonly label: string;
  readonly isolation: "per-user" | "shared";
  readonly #o: MultiplexerOptions;
  readonly #sup: ChildSupervisor;
  #phase: Phase = "down";
  #initResult: JsonObject | undefined;
  #initTimer: NodeJS.Timeout | undefined;
  #waiters: { resolve: (r: JsonObject) => void; reject: (e: Error) => void }[] = [];
  #nextId = INIT_ID + 1;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Every call not yet answered, by child id; `#queued` holds those not yet written. */
  readonly pending = new Map<number, PendingCall>();
  readonly #queued = new Set<PendingCall>();
  /** Server→client requests routed to a port: by the id the port saw, and by the child's id. */
  readonly serverRequests = new Map<number, { childId: JsonRpcId; port: Port }>();
  readonly serverRequestsByChild = new Map<JsonRpcId, number>();
  readonly ports = new Set<Port>();
  /** Ports with at least one call in flight. */
  readonly activePorts = new Set<Port>();
  droppedMessages = 0;

  constructor(options: MultiplexerOptions) {
    this.#o = options;
    this.label = options.label;
    this.isolation = options.isolation;
    this.#sup = new ChildSupervisor({
      ...options.supervisor,
      label: options.label,
      log: options.log,
      onSpawn: () => this.#onSpawn(),
      onLine: (line) => this.#onLine(line),
      onExit: (expected) => this.#onExit(expected),
      wanted: () => this.ports.size > 0 || this.#queued.size > 0 || this.#waiters.length > 0,
    });
  }

  /** A fresh id, unique on this child: for calls, progress tokens and server→client requests. */
  nextId(): number {
    return this.#nextId++;
  }

  get log(): Logger {
    return this.#o.log;
  }

  /** The child's InitializeResult, starting the child if needed. Rejects with ParkedError in a crash loop. */
  ready(): Promise<JsonObject> {
    this.#busy();
    if (this.#initResult && this.#phase === "ready") return Promise.resolve(this.#initResult);
    if (!this.#sup.ensureStarted()) return Promise.reject(this.#parkedError());
    // After a first successful start the cached result stays valid across restarts (same argv, same
    // server): answer now and let calls wait for the restart instead.
    if (this.#initResult) return Promise.resolve(this.#initResult);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Seconds a caller should wait before retrying, or 0 if the server can take calls now. */
  unavailableForSeconds(): number {
    const ms = this.#sup.parkedForMs();
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  attach(port: Port): void {
    this.ports.add(port);
    this.#busy();
  }

  /** A session ended: cancel its calls toward the child and refuse requests routed to it. */
  detach(port: Port): void {
    this.ports.delete(port);
    for (const call of [...port.calls.values()]) this.cancel(port, call.clientId, "session closed");
    for (const [bridgeId, request] of this.serverRequests) {
      if (request.port !== port) continue;
      this.serverRequests.delete(bridgeId);
      this.serverRequestsByChild.delete(request.childId);
      this.write(errorResponse(request.childId, RPC_ERROR.internalError, "the client session has closed"));
    }
    this.#maybeIdle();
  }

  /**
   * Forwards one client request. `raw` is its JSON text when the body held just this message (the id
   * is then spliced in place); otherwise the message is re-serialised.
   */
  call(port: Port, clientId: JsonRpcId, method: string, msg: JsonObject, raw: string | undefined, sink: CallSink) {
    if (port.calls.has(clientId)) {
      sink.done(errorResponse(clientId, RPC_ERROR.invalidRequest, "a request with this id is already in flight"));
      return;
    }
    const childId = this.nextId();
    const meta = metaOf(msg);
    const token = meta?.progressToken;
    let line: string;
    if (meta && token !== undefined) {
      // The child sees our id as the token; progress comes back to this call and nowhere else.
      meta.progressToken = childId;
      msg.id = childId;
      line = `${JSON.stringify(msg)}\n`;
    } else {
      line =
        raw === undefined
          ? `${JSON.stringify({ ...msg, id: childId })}\n`
          : toLine(withId(raw, msg, clientId, childId));
    }
    const call = {
      port,
      clientId,
      childId,
      sink,
      method,
      progressToken: isJsonRpcId(token) ? token : undefined,
      line: line as string | undefined,
      timer: undefined as NodeJS.Timeout | undefined,
    };
    this.#busy();
    port.calls.set(clientId, call);
    this.pending.set(childId, call);
    this.activePorts.add(port);
    this.#o.counters.inFlight += 1;
    call.timer = setTimeout(() => this.#timeout(call), this.#o.callTimeoutMs);
    if (this.#phase === "ready" && this.#sup.write(line)) {
      call.line = undefined;
      return;
    }
    this.#queued.add(call);
    if (!this.#sup.ensureStarted()) this.#fail(call, RPC_ERROR.connectionClosed, this.#parkedError().message);
  }

  /** `notifications/cancelled` from the client, or its HTTP exchange went away. */
  cancel(port: Port, clientId: JsonRpcId, reason: string): void {
    const call = port.calls.get(clientId);
    if (!call) return;
    if (call.line === undefined) {
      this.write(notification("notifications/cancelled", { requestId: call.childId, reason }));
    }
    this.#o.log.debug("call.cancelled", { child: this.label, port: port.label, reason });
    this.#settle(call);
    call.sink.abandon();
  }

  /** The client's answer to a server→client request: accepted only from the port it was routed to. */
  answer(port: Port, bridgeId: JsonRpcId, msg: JsonObject, raw: string | undefined): void {
    const request = typeof bridgeId === "number" ? this.serverRequests.get(bridgeId) : undefined;
    if (!request || request.port !== port) {
      this.#o.log.warn("client.response_unmatched", { child: this.label, port: port.label });
      return;
    }
    this.serverRequests.delete(bridgeId as number);
    this.serverRequestsByChild.delete(request.childId);
    this.write(
      raw === undefined ? JSON.stringify({ ...msg, id: request.childId }) : withId(raw, msg, bridgeId, request.childId),
    );
  }

  /** A client notification the child should see as is (e.g. `notifications/roots/list_changed`). */
  forward(json: string): void {
    this.write(json);
  }

  listeners(): Iterable<ChangeListener> {
    return this.#o.listeners?.() ?? [];
  }

  /** Writes a message to the child if it is up; dropped otherwise (it concerned the previous process). */
  write(json: string): void {
    if (this.#phase !== "down") this.#sup.write(toLine(json));
  }

  /** Delivers to the one call of `port` in flight (its POST stream) when there is one, else the port. */
  routeToPort(port: Port, json: string): void {
    const first = port.calls.values().next();
    if (!first.done && port.calls.size === 1) first.value.sink.message(json);
    else port.deliver(json);
  }

  /** Graceful stop (shutdown): the child's stdin is closed, then it is signalled. */
  stop(reason: string): Promise<void> {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    return this.#sup.stop(reason);
  }

  killNow(): void {
    this.#sup.killNow();
  }

  snapshot(): SupervisorSnapshot & { phase: Phase; sessions: number; inFlight: number; droppedMessages: number } {
    return {
      ...this.#sup.snapshot(),
      phase: this.#phase,
      sessions: this.ports.size,
      inFlight: this.pending.size,
      droppedMessages: this.droppedMessages,
    };
  }

  get parked(): boolean {
    return this.#sup.state === "parked";
  }

  #onSpawn(): void {
    this.#phase = "initializing";
    this.#sup.write(INITIALIZE_LINE);
    this.#initTimer = setTimeout(() => this.#sup.abort("no answer to initialize"), INIT_TIMEOUT_MS);
  }

  #onInitialized(msg: JsonObject): void {
    clearTimeout(this.#initTimer);
    const result = msg.result;
    if (typeof result !== "object" || result === null || Array.isArray(result)) {
      this.#sup.abort("initialize failed");
      return;
    }
    this.#initResult = result as JsonObject;
    this.#phase = "ready";
    this.#sup.write(INITIALIZED_LINE);
    this.#o.log.info("child.ready", { child: this.label });
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(this.#initResult);
    for (const call of this.#queued) {
      if (call.line === undefined || !this.#sup.write(call.line)) break;
      call.line = undefined;
      this.#queued.delete(call);
    }
    this.#o.onReady?.();
  }

  #onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.droppedMessages += 1;
      this.#o.log.warn("child.line_dropped", { child: this.label, reason: "not JSON", bytes: line.length });
      return;
    }
    const message = classify(parsed);
    if (message.kind === "invalid") {
      this.droppedMessages += 1;
      this.#o.log.warn("child.line_dropped", { child: this.label, reason: message.reason });
      return;
    }
    if (message.kind === "response") {
      if (message.id === INIT_ID && this.#phase === "initializing") {
        if ("error" in message.msg) this.#sup.abort("initialize failed");
        else this.#onInitialized(message.msg);
        return;
      }
      const call = typeof message.id === "number" ? this.pending.get(message.id) : undefined;
      if (!call || call.line !== undefined) {
        // A late answer to a call that timed out or was cancelled (the child ignored the cancellation).
        this.#o.log.warn("child.response_unmatched", { child: this.label, id: message.id });
        return;
      }
      this.#settle(call);
      call.sink.done(withId(line, message.msg, message.id, call.clientId));
      return;
    }
    routeChildMessage(this, message, line);
  }

  #onExit(expected: boolean): void {
    clearTimeout(this.#initTimer);
    this.#phase = "down";
    this.#o.onChildExit?.(expected);
    const parked = this.#sup.state === "parked";
    const reason = parked ? this.#parkedError().message : "the server process exited";
    for (const call of [...this.pending.values()]) {
      // Calls never written wait for the restart, unless there will be none soon.
      if (call.line === undefined || parked) this.#fail(call, RPC_ERROR.connectionClosed, reason);
    }
    for (const [bridgeId, request] of this.serverRequests) {
      this.routeToPort(request.port, notification("notifications/cancelled", { requestId: bridgeId, reason }));
    }
    this.serverRequests.clear();
    this.serverRequestsByChild.clear();
    if (parked) for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#parkedError());
    if (!expected) this.#o.log.debug("child.down", { child: this.label, parked });
    // A parked child nobody uses is forgotten after the idle timeout like any other.
    if (parked) this.#maybeIdle();
  }

  #timeout(call: PendingCall): void {
    call.timer = undefined;
    if (call.line === undefined) {
      // SECURITY/REL: tell the child to stop working on it; a late answer is dropped as unmatched.
      this.write(notification("notifications/cancelled", { requestId: call.childId, reason: "timeout" }));
    }
    this.#o.log.warn("call.timed_out", { child: this.label, method: call.method, ms: this.#o.callTimeoutMs });
    this.#fail(call, RPC_ERROR.requestTimeout, `Request timed out after ${this.#o.callTimeoutMs} ms`);
  }

  #fail(call: PendingCall, code: number, message: string): void {
    this.#settle(call);
    call.sink.done(errorResponse(call.clientId, code, message));
  }

  /** Forgets a call everywhere (exactly once). */
  #settle(call: PendingCall): void {
    if (!this.pending.delete(call.childId)) return;
    if (call.timer) clearTimeout(call.timer);
    this.#queued.delete(call);
    const { port } = call;
    port.calls.delete(call.clientId);
    if (port.calls.size === 0) this.activePorts.delete(port);
    this.#o.counters.inFlight -= 1;
    if (this.pending.size === 0) {
      this.#o.onQuiet?.();
      this.#maybeIdle();
    }
  }

  #busy(): void {
    if (this.#idleTimer) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  #maybeIdle(): void {
    if (this.ports.size > 0 || this.pending.size > 0 || this.#waiters.length > 0 || this.#idleTimer) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.ports.size > 0 || this.pending.size > 0) return;
      this.#o.log.info("child.idle", { child: this.label, idleMs: this.#o.idleTimeoutMs });
      void this.#sup.stop("idle").then(() => {
        if (this.ports.size === 0 && this.pending.size === 0) this.#o.onIdleStop();
      });
    }, this.#o.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #parkedError(): ParkedError {
    return new ParkedError(Math.max(1, this.unavailableForSeconds()));
  }
}
