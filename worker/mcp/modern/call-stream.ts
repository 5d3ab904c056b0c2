/**
 * The HTTP response to one modern request that runs something (a tools/call), per the revision's
 * Streamable HTTP (basic/transports/streamable-http, "Receiving Messages" and "Cancellation").
 *
 * The format is chosen lazily, like the bridge's PostExchange: an answer that comes at once (a refusal, a
 * quick call) is one JSON body with its own status (a 400 for -32021, say). Once the request has something
 * to say before its answer (progress, a log line), or has run for STREAM_AFTER_MS, the response becomes an
 * SSE stream: those notifications, then the answer, then the end.
 *
 * Closing the stream cancels the request: the revision makes it the client's only cancellation signal. A
 * Worker learns that its client left when a write to the response fails (workerd cancels the body), so an
 * open stream carries an SSE comment every KEEPALIVE_MS, which also keeps intermediaries from cutting a
 * quiet call; `signal` then aborts, and the request's work toward the bridge with it. `waitUntil` keeps the
 * invocation alive after the client left, so the call's audit row is still written.
 */

/** A call still running after this long answers as a stream: it can be cancelled from then on. */
export const STREAM_AFTER_MS = 1_000;
/** An open stream's heartbeat: at most this long between the client leaving and the call being cancelled. */
export const KEEPALIVE_MS = 2_000;

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  // The revision: servers SHOULD send this on SSE responses, so proxies do not buffer the stream.
  "x-accel-buffering": "no",
} as const;

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

export interface CallOutput {
  /** A notification about this request, sent before its answer. */
  notify(message: Record<string, unknown>): void;
  /** Aborts when the client went away (closed the stream). */
  readonly signal: AbortSignal;
}

/** How the request ended: the JSON-RPC message to send, and the HTTP status if it is still ours to choose. */
export interface CallAnswer {
  readonly message: Record<string, unknown>;
  readonly status: number;
}

const encoder = new TextEncoder();

export function respondToCall(
  work: (out: CallOutput) => Promise<CallAnswer>,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<Response> {
  const abort = new AbortController();
  let mode: "undecided" | "stream" | "done" = "undecided";
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const queued: string[] = [];
  let keepalive: ReturnType<typeof setInterval> | undefined;
  let resolveResponse: (response: Response) => void = () => {};
  const response = new Promise<Response>((resolve) => {
    resolveResponse = resolve;
  });

  const stop = () => {
    if (keepalive !== undefined) clearInterval(keepalive);
    keepalive = undefined;
  };
  const gone = () => {
    stop();
    mode = "done";
    abort.abort(new Error("the client closed the response stream"));
  };
  const enqueue = (text: string): void => {
    try {
      controller?.enqueue(encoder.encode(text));
    } catch {
      gone();
    }
  };
  const startStream = () => {
    if (mode !== "undecided") return;
    mode = "stream";
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      // workerd cancels the body when the client disconnects.
      cancel: gone,
    });
    for (const text of queued.splice(0)) enqueue(text);
    keepalive = setInterval(() => enqueue(": keepalive\n\n"), KEEPALIVE_MS);
    resolveResponse(new Response(body, { status: 200, headers: SSE_HEADERS }));
  };
  const event = (message: Record<string, unknown>) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;

  const timer = setTimeout(startStream, STREAM_AFTER_MS);
  const out: CallOutput = {
    signal: abort.signal,
    notify(message) {
      if (mode === "done") return;
      if (mode === "undecided") {
        queued.push(event(message));
        startStream();
        return;
      }
      enqueue(event(message));
    },
  };
  const finished = work(out).then(
    (answer) => {
      clearTimeout(timer);
      if (mode === "undecided") {
        mode = "done";
        resolveResponse(new Response(JSON.stringify(answer.message), { status: answer.status, headers: JSON_HEADERS }));
        return;
      }
      if (mode === "stream") {
        enqueue(event(answer.message));
        stop();
        mode = "done";
        try {
          controller?.close();
        } catch {
          // Already cancelled by the client.
        }
      }
    },
    (error: unknown) => {
      clearTimeout(timer);
      stop();
      if (mode === "undecided") {
        mode = "done";
        // Not a HttpError the caller expected: a bug, logged by the runtime as the 500 it becomes.
        return Promise.reject(error);
      }
      mode = "done";
      console.error(JSON.stringify({ event: "modern_call_failed", error: String(error) }));
      try {
        controller?.error(error);
      } catch {
        // Already cancelled by the client.
      }
      return undefined;
    },
  );
  // The call's row is written even if the client goes away mid-call.
  waitUntil(finished.catch(() => {}));
  return Promise.race([response, finished.then(() => response)]);
}
