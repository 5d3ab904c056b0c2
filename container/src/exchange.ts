import type { ServerResponse } from "node:http";
import type { JsonRpcId } from "./jsonrpc.ts";
import type { CallSink, Port } from "./port.ts";
import { SSE_HEADERS, writeSseEvent } from "./sse.ts";

/**
 * The HTTP response to one POST that carried requests (Streamable HTTP).
 *
 * The response format is chosen lazily: while nothing but responses arrive it stays plain JSON (one
 * write with a Content-Length, the cheapest thing for both ends); the first message about a call in
 * flight (progress, a log line, a sampling request) switches it to an SSE stream, if the client
 * accepts one, and the responses follow on that stream. A client that accepts only JSON gets such
 * messages on its GET stream instead.
 */
export class PostExchange implements CallSink {
  readonly #res: ServerResponse;
  readonly #port: Port | undefined;
  readonly #acceptsSse: boolean;
  readonly #acceptsJson: boolean;
  readonly #batch: boolean;
  readonly #headers: Readonly<Record<string, string>>;
  #pending = 0;
  #buffer: string[] = [];
  #mode: "undecided" | "sse" | "done" = "undecided";
  /** Ids this exchange is waiting on, to cancel them if the client goes away. */
  readonly ids: JsonRpcId[] = [];

  constructor(
    res: ServerResponse,
    options: {
      port: Port | undefined;
      acceptsSse: boolean;
      acceptsJson: boolean;
      batch: boolean;
      headers?: Readonly<Record<string, string>>;
    },
  ) {
    this.#res = res;
    this.#port = options.port;
    this.#acceptsSse = options.acceptsSse;
    this.#acceptsJson = options.acceptsJson;
    this.#batch = options.batch;
    this.#headers = options.headers ?? {};
  }

  get finished(): boolean {
    return this.#mode === "done";
  }

  /** Announces a request whose answer this response will carry. */
  expect(id: JsonRpcId): void {
    this.#pending += 1;
    this.ids.push(id);
  }

  message(json: string): void {
    if (this.#mode === "done") return;
    if (!this.#acceptsSse) {
      this.#port?.deliver(json);
      return;
    }
    this.#startSse();
    writeSseEvent(this.#res, json);
  }

  done(json: string): void {
    if (this.#mode === "done") return;
    this.#pending -= 1;
    if (this.#mode === "undecided" && !this.#acceptsJson) this.#startSse();
    if (this.#mode === "sse") writeSseEvent(this.#res, json);
    else this.#buffer.push(json);
    if (this.#pending <= 0) this.finish();
  }

  abandon(): void {
    if (this.#mode === "done") return;
    this.#pending -= 1;
    if (this.#pending <= 0) this.finish();
  }

  /** Ends the response once nothing is pending (also for a POST of notifications only: 202). */
  finish(): void {
    if (this.#mode === "done" || this.#pending > 0) return;
    const res = this.#res;
    if (this.#mode === "sse") {
      this.#mode = "done";
      res.end();
      return;
    }
    this.#mode = "done";
    if (this.#buffer.length === 0) {
      res.writeHead(202, this.#headers).end();
      return;
    }
    const body = this.#batch ? `[${this.#buffer.join(",")}]` : (this.#buffer[0] ?? "");
    res.writeHead(200, {
      ...this.#headers,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  #startSse(): void {
    if (this.#mode !== "undecided") return;
    this.#mode = "sse";
    this.#res.writeHead(200, { ...this.#headers, ...SSE_HEADERS });
    for (const json of this.#buffer) writeSseEvent(this.#res, json);
    this.#buffer = [];
  }
}
