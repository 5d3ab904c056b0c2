import { BRIDGE_ROUTES, type ListenRequestBody } from "../../../container/src/contract.ts";
import type { ServerId } from "../../../policies/catalog.ts";
import { type BridgeRoute, bridgeFetchFor, containerName } from "../../bridge/router.ts";

/**
 * One server's change notifications for one principal, from the bridge's `POST /listen`
 * (container/src/listen.ts): what `subscriptions/listen` (listen.ts) hears its servers through.
 *
 * The bridge's stream is passive (it neither starts the server's process nor keeps it running). Deployed,
 * reaching it would still START a stopped container (@cloudflare/containers starts one for any request), so a
 * container that is not running is not asked at all: `getState()` on its Durable Object reads the state
 * without starting it or renewing its activity, and a stopped container is tried again at the listen's next
 * check. A stopped container runs no process, so it has nothing to announce. SECURITY/cost: an open stream is
 * an in-flight request, which keeps a running container awake (the library counts it as activity) for as
 * long as the listen lasts (bounded by LISTEN_MAX_MS, listen.ts).
 */
export interface BridgeListen {
  /** Ends the stream toward the bridge (the bridge then forgets the listener). */
  close(): void;
}

export interface BridgeListenHandlers {
  /** One change notification, as the server sent it (parsed JSON). */
  message(message: Record<string, unknown>): void;
  /** The stream ended or could not be opened (bridge down, container asleep): the listen retries later. */
  ended(reason: string): void;
}

/** The container states in which a container is up (@cloudflare/containers `State.status`). */
const AWAKE = new Set(["running", "healthy"]);

export function openBridgeListen(
  route: BridgeRoute,
  principal: string,
  server: ServerId,
  resources: readonly string[],
  handlers: BridgeListenHandlers,
): BridgeListen {
  const abort = new AbortController();
  let reader: ReadableStreamDefaultReader<string> | null = null;
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    abort.abort();
    // The body too: a stream handed over before the abort is not always ended by it.
    reader?.cancel().catch(() => {});
    handlers.ended(reason);
  };
  void (async () => {
    try {
      if (!(await containerAwake(route, server, principal))) return end("container not running");
      const body: ListenRequestBody = { server, resources };
      const response = await bridgeFetchFor(route, principal)(server, BRIDGE_ROUTES.listen, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: abort.signal,
      });
      if (response.status !== 200 || !response.body) {
        await response.body?.cancel();
        return end(`bridge answered ${response.status}`);
      }
      reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      if (ended) await reader.cancel();
      await readEvents(reader, (data) => {
        if (ended) return;
        try {
          const parsed: unknown = JSON.parse(data);
          if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
            handlers.message(parsed as Record<string, unknown>);
          }
        } catch {
          // Not JSON: the bridge writes only what the server sent as one JSON line; nothing to relay.
        }
      });
      end("bridge stream ended");
    } catch (error) {
      end(String(error));
    }
  })();
  return { close: () => end("closed") };
}

/**
 * Whether the server's container is up. Locally (a bridge process, no containers) it always is. A failure to
 * ask is taken as "not running": a listen never starts a container, so when in doubt it does not ask the bridge.
 */
async function containerAwake(route: BridgeRoute, server: ServerId, principal: string): Promise<boolean> {
  if (route.insecureDevBridgeUrl !== null || !route.containers) return true;
  const stub = route.containers.get(route.containers.idFromName(containerName(server, principal)));
  const state = await (stub as unknown as { getState(): Promise<{ status?: unknown }> }).getState();
  return typeof state?.status === "string" && AWAKE.has(state.status);
}

/** A change notification is a few hundred bytes; an event longer than this ends the stream (never buffered on). */
const MAX_EVENT_CHARS = 1024 * 1024;

/** Calls `onData` with each event's `data` of a Server-Sent Events body, until it ends. */
async function readEvents(reader: ReadableStreamDefaultReader<string>, onData: (data: string) => void): Promise<void> {
  let buffered = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    buffered += chunk.value;
    for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data !== "") onData(data);
    }
    if (buffered.length > MAX_EVENT_CHARS) throw new Error("an event from the bridge is too long");
  }
}
