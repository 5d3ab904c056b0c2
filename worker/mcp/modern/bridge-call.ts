import {
  BRIDGE_ROUTES,
  EXECUTE_EVENTS,
  type ExecuteInputEvent,
  type ExecuteModern,
  type ExecuteRequestBody,
} from "../../../container/src/contract.ts";
import type { ServerId } from "../../../policies/catalog.ts";
import type { BridgeFetch } from "../backends.ts";

/**
 * One modern call on the bridge's `/execute` (contract.ts, ExecuteModern): the request, then the bridge's
 * stream of events read as they come: notifications about the call are handed on at once, and the stream
 * ends with the call's response, or with the input its server asked for (the call then waits at the bridge).
 */

export type BridgeCallEnd =
  | { readonly kind: "response"; readonly message: unknown }
  | { readonly kind: "input"; readonly event: ExecuteInputEvent }
  /** A retry's call is not waiting (any more) for this caller: the bridge's one 404 for every reason. */
  | { readonly kind: "not_waiting" };

/** The largest event the Worker buffers: a child's line may be 16 MiB (the bridge's cap), plus framing. */
const MAX_EVENT_BYTES = 17 * 1024 * 1024;

export async function callOnBridge(
  fetchBridge: BridgeFetch,
  server: ServerId,
  message: ExecuteRequestBody["message"],
  modern: ExecuteModern,
  signal: AbortSignal,
  onNotification: (message: Record<string, unknown>) => void,
): Promise<BridgeCallEnd> {
  const body: ExecuteRequestBody = { server, message, modern };
  const response = await fetchBridge(server, BRIDGE_ROUTES.execute, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  if (response.status === 404 && modern.resume) {
    const refused = (await response.json().catch(() => null)) as { error?: { code?: unknown } } | null;
    if (refused?.error?.code === "call_not_waiting") return { kind: "not_waiting" };
  }
  if (!response.ok || !response.body) {
    const text = await response.text().catch(() => "");
    throw new Error(`bridge answered ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    throw new Error("the bridge's answer to a modern call is not a stream");
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  // The text of events not yet complete, as chunks: a large answer comes in many, and joining and scanning
  // the whole of it at each one cost a 1 MiB echo ~0.1 s (bench/RESULTS.md, "Modern client"). Each chunk is
  // scanned once for an event's end (with the character before it: "\n\n" may straddle two chunks).
  let chunks: string[] = [];
  let size = 0;
  let last = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      if (size > MAX_EVENT_BYTES) throw new Error("the bridge sent an event larger than the limit");
      const ends = (last + value).includes("\n\n");
      last = value.slice(-1) || last;
      if (!ends) continue;
      let buffered = chunks.join("");
      for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = parseEvent(block);
        if (!event) continue;
        if (event.name === EXECUTE_EVENTS.notification) {
          if (isObject(event.data)) onNotification(event.data);
        } else if (event.name === EXECUTE_EVENTS.response) {
          return { kind: "response", message: event.data };
        } else if (event.name === EXECUTE_EVENTS.input) {
          const input = inputEventOf(event.data);
          if (!input) throw new Error("the bridge sent a malformed input event");
          return { kind: "input", event: input };
        }
      }
      chunks = buffered === "" ? [] : [buffered];
      size = buffered.length;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  throw new Error("the bridge's stream ended without an answer");
}

/** One `event: …` / `data: …` block (the bridge writes JSON on one data line). */
function parseEvent(block: string): { readonly name: string; readonly data: unknown } | null {
  let name = "message";
  let data: string | null = null;
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data = line.slice(6);
  }
  if (data === null) return null;
  try {
    return { name, data: JSON.parse(data) };
  } catch {
    return null;
  }
}

function inputEventOf(value: unknown): ExecuteInputEvent | null {
  if (!isObject(value) || typeof value.pending !== "string" || !Number.isSafeInteger(value.round)) return null;
  if (!isObject(value.requests)) return null;
  const requests: Record<string, { method: string; params?: unknown }> = {};
  for (const [key, request] of Object.entries(value.requests)) {
    if (!isObject(request) || typeof request.method !== "string") return null;
    requests[key] =
      request.params === undefined ? { method: request.method } : { method: request.method, params: request.params };
  }
  return { pending: value.pending, round: value.round as number, requests };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How long the Worker waits for the bridge to end a waiting call it refused to continue. */
const CANCEL_TIMEOUT_MS = 10_000;

/**
 * Ends a call waiting at the bridge whose retry the Worker refused (the decision changed): the bridge answers
 * the child's requests with an error and cancels the call. Best effort: it times out at the bridge anyway.
 */
export async function cancelOnBridge(
  fetchBridge: BridgeFetch,
  server: ServerId,
  binding: string,
  pending: string,
  round: number,
): Promise<void> {
  const body: ExecuteRequestBody = {
    server,
    message: { jsonrpc: "2.0", id: "hatago-modern-cancel", method: "tools/call" },
    modern: {
      caps: { sampling: false, elicitationForm: false, elicitationUrl: false, roots: false },
      logLevel: null,
      binding,
      resume: { pending, round, responses: {}, cancel: true },
    },
  };
  try {
    const response = await fetchBridge(server, BRIDGE_ROUTES.execute, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
    });
    await response.body?.cancel();
  } catch (error) {
    console.error(JSON.stringify({ event: "modern_cancel_failed", server, error: String(error) }));
  }
}
