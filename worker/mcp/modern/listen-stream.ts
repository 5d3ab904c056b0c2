import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import type { ServerId } from "../../../policies/catalog.ts";
import { type Caller, loadRequestContext, type RequestContext } from "../../authz/request-context.ts";
import type { BridgeRoute } from "../../bridge/router.ts";
import type { Database } from "../../db/database.ts";
import { HttpError } from "../../http/errors.ts";
import { SERVER_INFO } from "../server-info.ts";
import { type BridgeListen, openBridgeListen } from "./listen-bridge.ts";

/**
 * The life of one `subscriptions/listen` stream (listen.ts decides what it relays): the acknowledgment first,
 * then the servers' change notifications as the rules let them through, a keep-alive comment, a re-read of
 * the caller's standing and grants every `recheckMs`, and an end: the client closing it, the caller losing
 * standing (a JSON-RPC error), or `maxMs` (the revision's graceful `subscriptions/listen` result).
 *
 * One stream toward the bridge per server the rules want (listen-bridge.ts). Locally those are `fetch()`es
 * to the bridge process, which count against Workers' six simultaneous connections per request: four
 * catalog servers fit; a catalog that grows past five needs one multiplexed bridge stream instead.
 */

export interface ListenTimings {
  readonly recheckMs: number;
  readonly maxMs: number;
  readonly keepAliveMs: number;
}

export interface ListenRules {
  /** The servers to listen to, each with the server's own resource URIs to subscribe to. */
  wanted(ctx: RequestContext): ReadonlyMap<ServerId, readonly string[]>;
  /** The notification to send for one a server sent (without `_meta`), or `null`: not for this caller. */
  relay(
    ctx: RequestContext,
    server: ServerId,
    message: Record<string, unknown>,
  ): { readonly method: string; readonly params?: Record<string, unknown> } | null;
  /** The `list_changed` methods a change of the caller's grants calls for. */
  policyChanges(before: RequestContext, after: RequestContext): readonly string[];
}

export interface ListenOptions {
  readonly id: string | number;
  readonly caller: Caller;
  readonly ctx: RequestContext;
  readonly db: Kysely<Database>;
  readonly route: BridgeRoute;
  readonly honored: object;
  readonly rules: ListenRules;
  readonly timings: ListenTimings;
  readonly signal: AbortSignal | undefined;
}

const SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId";
const SERVER_INFO_META = "io.modelcontextprotocol/serverInfo";
const encoder = new TextEncoder();

type Ending =
  | { readonly kind: "cancelled" }
  | { readonly kind: "graceful" }
  | { readonly kind: "error"; readonly error: HttpError };

export class ListenStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly #o: ListenOptions;
  #ctx: RequestContext;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #closed = false;
  #checking = false;
  readonly #bridges = new Map<ServerId, { readonly listen: BridgeListen; readonly resources: string }>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #maxTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ListenOptions) {
    this.#o = options;
    this.#ctx = options.ctx;
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        this.#start();
      },
      cancel: () => this.#end({ kind: "cancelled" }),
    });
  }

  #start(): void {
    const { honored, timings, signal } = this.#o;
    // The revision: the acknowledgment is the first message, carrying what is honored.
    this.#notify("notifications/subscriptions/acknowledged", { notifications: honored });
    if (Object.keys(honored).length === 0) {
      this.#end({ kind: "graceful" });
      return;
    }
    this.#attach(this.#ctx);
    this.#timers.push(setInterval(() => void this.#recheck(), timings.recheckMs));
    this.#timers.push(setInterval(() => this.#write(": keepalive\n\n"), timings.keepAliveMs));
    this.#maxTimer = setTimeout(() => this.#end({ kind: "graceful" }), timings.maxMs);
    if (signal?.aborted) this.#end({ kind: "cancelled" });
    signal?.addEventListener("abort", () => this.#end({ kind: "cancelled" }), { once: true });
  }

  /** Listens to the servers the rules want now, with the URIs they want; lets go of the others. */
  #attach(ctx: RequestContext): void {
    const wanted = this.#o.rules.wanted(ctx);
    for (const [server, bridge] of this.#bridges) {
      if (wanted.get(server)?.join("\n") === bridge.resources) continue;
      this.#bridges.delete(server);
      bridge.listen.close();
    }
    for (const [server, resources] of wanted) {
      if (this.#bridges.has(server)) continue;
      const listen = openBridgeListen(this.#o.route, this.#o.caller.principal, server, resources, {
        message: (message) => this.#fromServer(server, message),
        // Tried again at the next check (a container asleep, a bridge restarting).
        ended: () => {
          if (this.#bridges.get(server)?.listen === listen) this.#bridges.delete(server);
        },
      });
      this.#bridges.set(server, { listen, resources: resources.join("\n") });
    }
  }

  #fromServer(server: ServerId, message: Record<string, unknown>): void {
    if (this.#closed) return;
    const out = this.#o.rules.relay(this.#ctx, server, message);
    if (out) this.#notify(out.method, out.params ?? {});
  }

  /**
   * SECURITY: the caller's standing and grants, read again. A refusal (blocked, revoked: 401; the database
   * down: 503, fail closed) ends the stream with that error; changed grants emit the lists' `list_changed`.
   */
  async #recheck(): Promise<void> {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      const after = await loadRequestContext(this.#o.db, this.#o.caller, null);
      if (this.#closed) return;
      for (const method of this.#o.rules.policyChanges(this.#ctx, after)) this.#notify(method, {});
      this.#ctx = after;
      this.#attach(after);
    } catch (error) {
      const refusal =
        error instanceof HttpError
          ? error
          : new HttpError(500, "Internal error.", { rpcCode: ErrorCode.InternalError });
      if (!(error instanceof HttpError)) console.error(JSON.stringify({ event: "listen_error", error: String(error) }));
      this.#end({ kind: "error", error: refusal });
    } finally {
      this.#checking = false;
    }
  }

  #notify(method: string, params: Record<string, unknown>): void {
    const meta = { [SUBSCRIPTION_ID]: this.#o.id };
    this.#event({ jsonrpc: "2.0", method, params: { ...params, _meta: meta } });
  }

  #event(message: unknown): void {
    this.#write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  #write(text: string): void {
    if (this.#closed || !this.#controller) return;
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.#end({ kind: "cancelled" });
    }
  }

  #end(ending: Ending): void {
    if (this.#closed) return;
    const id = this.#o.id;
    if (ending.kind === "graceful") {
      const meta = { [SUBSCRIPTION_ID]: id, [SERVER_INFO_META]: SERVER_INFO };
      this.#event({ jsonrpc: "2.0", id, result: { resultType: "complete", _meta: meta } });
    } else if (ending.kind === "error") {
      this.#event({ jsonrpc: "2.0", id, error: { code: ending.error.rpcCode, message: ending.error.publicMessage } });
    }
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    if (this.#maxTimer !== undefined) clearTimeout(this.#maxTimer);
    for (const bridge of this.#bridges.values()) bridge.listen.close();
    this.#bridges.clear();
    if (ending.kind !== "cancelled") {
      try {
        this.#controller?.close();
      } catch {
        // Already closed by the client.
      }
    }
  }
}
