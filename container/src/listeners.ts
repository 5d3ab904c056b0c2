import type { ServerId } from "../../policies/catalog.ts";
import { isJsonObject } from "./jsonrpc.ts";
import type { ChangeListener } from "./listener.ts";
import type { Logger } from "./log.ts";
import type { Multiplexer } from "./multiplexer.ts";
import { type CallSink, SilentPort } from "./port.ts";

const NONE: ReadonlySet<ChangeListener> = new Set();

const principalKey = (server: ServerId, principal: string) => `${server}\n${principal}`;

/**
 * The open `/listen` streams (listen.ts), by process: the pool's key, (server, principal) for a `per-user`
 * server and the server for a `shared` one, so a per-user process is only ever heard by its own principal.
 * Kept here and not on the multiplexer, so a stream opened while the process is stopped (or before it was
 * ever started) hears it once it runs, and the multiplexer can come and go as it idles out.
 *
 * Resources: a process sends `notifications/resources/updated` only for URIs it was asked to subscribe to.
 * The registry asks it (`resources/subscribe`) when a listener names a URI while the process is ready, and
 * again for every listener when a new process becomes ready (a restarted process has no subscriptions);
 * it unsubscribes a URI when the last listener naming it goes and no session subscribed it either
 * (dispatch.ts keeps the child's subscription for the listeners the same way).
 */
export class ListenerRegistry {
  readonly #byKey = new Map<string, Set<ChangeListener>>();
  readonly #perServer = new Map<ServerId, number>();
  /** Open streams per (server, principal): one person may not take a server's every slot (listen.ts). */
  readonly #perPrincipal = new Map<string, number>();
  readonly #log: Logger;
  #serial = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The listeners of one process (the multiplexer reads them on every change notification). */
  of(key: string): ReadonlySet<ChangeListener> {
    return this.#byKey.get(key) ?? NONE;
  }

  /** Open listen streams on a server, for the admission limit. */
  count(server: ServerId): number {
    return this.#perServer.get(server) ?? 0;
  }

  /** Open listen streams of one principal on a server, for the per-person limit. */
  countOf(server: ServerId, principal: string): number {
    return this.#perPrincipal.get(principalKey(server, principal)) ?? 0;
  }

  /**
   * Adds a listener to the process `key`; `muxOf` finds that process's multiplexer if there is one now
   * (never creating it: a listen does not start a server). Returns the removal.
   */
  add(key: string, server: ServerId, listener: ChangeListener, muxOf: () => Multiplexer | undefined): () => void {
    const set = this.#byKey.get(key) ?? new Set<ChangeListener>();
    const mux = muxOf();
    const fresh = [...listener.resources].filter((uri) => !wanted(set, mux, uri));
    set.add(listener);
    this.#byKey.set(key, set);
    this.#perServer.set(server, this.count(server) + 1);
    const own = principalKey(server, listener.principal);
    this.#perPrincipal.set(own, this.countOf(server, listener.principal) + 1);
    if (mux && isReady(mux)) for (const uri of fresh) this.#send(mux, listener.principal, "resources/subscribe", uri);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(listener);
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
      this.#perServer.set(server, this.count(server) - 1);
      const left = this.countOf(server, listener.principal) - 1;
      if (left > 0) this.#perPrincipal.set(own, left);
      else this.#perPrincipal.delete(own);
      const now = muxOf();
      if (!now || !isReady(now)) return;
      for (const uri of listener.resources) {
        if (!wanted(set, now, uri)) this.#send(now, listener.principal, "resources/unsubscribe", uri);
      }
    };
  }

  /** A new process of `key` answered `initialize`: it has no subscriptions yet, so every listener's are sent. */
  ready(key: string, mux: Multiplexer): void {
    const sent = new Set<string>();
    for (const listener of this.of(key)) {
      for (const uri of listener.resources) {
        if (sent.has(uri)) continue;
        sent.add(uri);
        this.#send(mux, listener.principal, "resources/subscribe", uri);
      }
    }
  }

  /**
   * One request to the child on a port of its own, whose answer only matters for the log. A port, not a
   * raw write: the multiplexer remaps its id like any call's, so the child's answer can meet nobody else's.
   */
  #send(mux: Multiplexer, principal: string, method: "resources/subscribe" | "resources/unsubscribe", uri: string) {
    this.#serial += 1;
    const id = `listen-${this.#serial}`;
    const sink: CallSink = {
      message: () => {},
      abandon: () => {},
      done: (json) => {
        let failed = true;
        try {
          const answer: unknown = JSON.parse(json);
          failed = !isJsonObject(answer) || !("result" in answer);
        } catch {}
        if (failed) this.#log.info("listen.subscription_refused", { child: mux.label, method });
      },
    };
    mux.call(
      new SilentPort(principal, "listen"),
      id,
      method,
      { jsonrpc: "2.0", id, method, params: { uri } },
      undefined,
      sink,
    );
  }
}

/** Whether the child already holds (or must keep) a subscription to `uri`: a session or another listener has it. */
function wanted(listeners: ReadonlySet<ChangeListener>, mux: Multiplexer | undefined, uri: string): boolean {
  for (const listener of listeners) if (listener.resources.has(uri)) return true;
  return mux !== undefined && [...mux.ports].some((p) => p.subscriptions.has(uri));
}

/**
 * Only a running process is asked: a call to a stopped one would start it (the multiplexer starts its child
 * for a queued call), and a listen must not start a server. It is asked once it is up (`ready`).
 */
function isReady(mux: Multiplexer): boolean {
  return mux.snapshot().phase === "ready";
}
