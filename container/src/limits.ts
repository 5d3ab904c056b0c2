import { unavailable } from "./errors.ts";

/**
 * Admission limits per server. Beyond them the bridge answers 503 with Retry-After instead of queueing
 * without bound: a client (or the Worker) retries; the bridge's memory and the child stay bounded.
 */
export interface Limits {
  readonly maxSessionsPerServer: number;
  readonly maxInFlightPerServer: number;
}

/** Calls usually finish within a second; a client that waits this long mostly finds room. */
const RETRY_AFTER_SECONDS = 1;

export function admitSession(sessions: number, limits: Limits): void {
  if (sessions >= limits.maxSessionsPerServer) {
    throw unavailable("too_many_sessions", "this server has too many sessions; retry later", RETRY_AFTER_SECONDS);
  }
}

export function admitCalls(inFlight: number, requests: number, limits: Limits): void {
  if (requests > 0 && inFlight + requests > limits.maxInFlightPerServer) {
    throw unavailable("too_many_calls", "this server has too many calls in flight; retry later", RETRY_AFTER_SECONDS);
  }
}
