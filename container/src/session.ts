import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { ServerId } from "../../policies/catalog.ts";
import type { JsonRpcId } from "./jsonrpc.ts";
import type { Multiplexer } from "./multiplexer.ts";
import { type ClientCaps, LOG_SEVERITY, type PendingCall, type Port } from "./port.ts";
import { writeSseEvent, writeSseKeepAlive } from "./sse.ts";

/**
 * One MCP session: a client's view of one server, owned by one principal.
 *
 * SECURITY: a session is found by (id, server, principal) together; an id presented with another
 * principal's credential (or on another server's route) is "not found", the same 404 as an unknown id,
 * so session ids reveal nothing across users.
 */
export class Session implements Port {
  readonly id: string;
  readonly server: ServerId;
  readonly principal: string;
  readonly caps: ClientCaps;
  readonly protocolVersion: string;
  readonly mux: Multiplexer;
  readonly calls = new Map<JsonRpcId, PendingCall>();
  readonly subscriptions = new Set<string>();
  lastActivityMs = Date.now();
  #stream: ServerResponse | undefined;
  #minLogSeverity: number | undefined;

  constructor(init: {
    server: ServerId;
    principal: string;
    caps: ClientCaps;
    protocolVersion: string;
    mux: Multiplexer;
  }) {
    // 122 random bits, visible ASCII only (the spec's session id rule).
    this.id = randomUUID();
    this.server = init.server;
    this.principal = init.principal;
    this.caps = init.caps;
    this.protocolVersion = init.protocolVersion;
    this.mux = init.mux;
  }

  get label(): string {
    return this.id;
  }

  get hasStream(): boolean {
    return this.#stream !== undefined;
  }

  deliver(json: string): void {
    // Without a GET stream the spec lets the server drop what it has nowhere to send.
    if (this.#stream) writeSseEvent(this.#stream, json);
  }

  acceptsLog(level: unknown): boolean {
    if (this.#minLogSeverity === undefined) return true;
    const severity = typeof level === "string" ? LOG_SEVERITY[level] : undefined;
    return severity === undefined || severity >= this.#minLogSeverity;
  }

  /**
   * `logging/setLevel` is answered by the bridge, per session: forwarded, it would change the level
   * for every session sharing the child. The child keeps sending everything; the bridge filters.
   */
  setLogLevel(level: unknown): boolean {
    const severity = typeof level === "string" && Object.hasOwn(LOG_SEVERITY, level) ? LOG_SEVERITY[level] : undefined;
    if (severity === undefined) return false;
    this.#minLogSeverity = severity;
    return true;
  }

  /** The GET stream. One per session: a second one is refused (409) rather than silently split. */
  openStream(res: ServerResponse): boolean {
    if (this.#stream) return false;
    this.#stream = res;
    res.on("close", () => {
      if (this.#stream === res) this.#stream = undefined;
      this.lastActivityMs = Date.now();
    });
    return true;
  }

  keepAlive(): void {
    if (this.#stream) writeSseKeepAlive(this.#stream);
  }

  close(): void {
    this.mux.detach(this);
    this.#stream?.end();
    this.#stream = undefined;
  }
}

/** All sessions, with per-server counts for the session limit and an idle sweep. */
export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  readonly #perServer = new Map<ServerId, number>();
  readonly #idleMs: number;
  readonly #sweep: NodeJS.Timeout;

  constructor(idleMs: number, keepAliveMs: number) {
    this.#idleMs = idleMs;
    this.#sweep = setInterval(() => this.#tick(), keepAliveMs);
    this.#sweep.unref();
  }

  count(server: ServerId): number {
    return this.#perServer.get(server) ?? 0;
  }

  add(session: Session): void {
    this.#sessions.set(session.id, session);
    this.#perServer.set(session.server, this.count(session.server) + 1);
    session.mux.attach(session);
  }

  /** The session only if it belongs to this server and principal (else `undefined`: a 404). */
  find(id: string, server: ServerId, principal: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (!session || session.server !== server || session.principal !== principal) return undefined;
    session.lastActivityMs = Date.now();
    return session;
  }

  remove(session: Session): void {
    if (!this.#sessions.delete(session.id)) return;
    this.#perServer.set(session.server, this.count(session.server) - 1);
    session.close();
  }

  closeAll(): void {
    clearInterval(this.#sweep);
    for (const session of [...this.#sessions.values()]) this.remove(session);
  }

  #tick(): void {
    const now = Date.now();
    for (const session of [...this.#sessions.values()]) {
      session.keepAlive();
      // A session nobody has used for a while, with no stream and no call, is gone (its client will
      // get 404 and initialize again, as the spec prescribes); this bounds memory and lets children idle.
      if (!session.hasStream && session.calls.size === 0 && now - session.lastActivityMs > this.#idleMs) {
        this.remove(session);
      }
    }
  }
}
