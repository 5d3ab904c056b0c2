import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type JSONRPCMessage, JSONRPCMessageSchema, type MessageExtraInfo } from "@modelcontextprotocol/sdk/types.js";

/** A silent SSE stream can be cut by proxies; a comment line every so often keeps it open. */
export const SSE_KEEPALIVE_MS = 25_000;

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05), server side, on web streams. The SDK ships this
 * transport for Node's `http` only; Workers need one on `ReadableStream`.
 *
 * GET opens the event stream and first sends an `endpoint` event naming where to POST; each POST carries
 * one JSON-RPC message (or a batch) and is answered 202, the replies travel on the event stream.
 */
export class WebSseServerTransport implements Transport {
  readonly sessionId: string;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;

  readonly #endpoint: string;
  readonly #encoder = new TextEncoder();
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #keepalive: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  constructor(sessionId: string, endpoint: string) {
    this.sessionId = sessionId;
    this.#endpoint = endpoint;
  }

  /** The response for the GET that opens the stream. */
  response(): Response {
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        this.#write(`event: endpoint\ndata: ${this.#endpoint}\n\n`);
        this.#keepalive = setInterval(() => this.#write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
      },
      cancel: () => this.#finish(),
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" },
    });
  }

  get isOpen(): boolean {
    return this.#controller !== null && !this.#closed;
  }

  async start(): Promise<void> {}

  /** Hands one POSTed body (already parsed, size-checked) to the server. */
  handleMessages(body: unknown, extra: MessageExtraInfo): void {
    const messages = Array.isArray(body) ? body : [body];
    const parsed = messages.map((m) => JSONRPCMessageSchema.parse(m));
    for (const message of parsed) this.onmessage?.(message, extra);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.isOpen) throw new Error("SSE stream is closed");
    this.#write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#controller?.close();
    } catch {
      // Already errored or cancelled by the client.
    }
    this.#finish();
  }

  #write(chunk: string): void {
    if (this.#closed || !this.#controller) return;
    try {
      this.#controller.enqueue(this.#encoder.encode(chunk));
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
      this.#finish();
    }
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#keepalive) clearInterval(this.#keepalive);
    this.onclose?.();
  }
}
