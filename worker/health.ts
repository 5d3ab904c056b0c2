import { z } from "zod";
import { BRIDGE_ROUTES } from "../container/src/contract.ts";
import type { Config } from "./config.ts";
import { pingDatabase } from "./db/database.ts";
import type { Env } from "./env.ts";

/** A health probe that does not answer within this is "down": monitors poll often and want an answer. */
const PROBE_TIMEOUT_MS = 3_000;
/**
 * Deployed, the probe wakes a container; monitors poll /health every few seconds, so one isolate asks at
 * most this often and answers from the last result in between.
 */
const DEPLOYED_PROBE_CACHE_MS = 10_000;
/** The Container instance the deployed probe uses: its own, so no person's container is started for it. */
export const HEALTH_CONTAINER_NAME = "health";

/** What the bridge's `/health` says, narrowed to what /health shows (no pids, no exit details). */
const BridgeHealth = z.object({
  status: z.string(),
  servers: z.record(
    z.string(),
    z
      .object({
        available: z.boolean(),
        running: z.number(),
        restarts: z.number(),
        // Its data directories (issue 13): a refused or failed save is shown here and in the bridge's log.
        state: z
          .object({
            persisted: z.boolean(),
            saves: z.number(),
            refused: z.number(),
            failed: z.number(),
            problems: z.array(z.string()),
          })
          .optional(),
      })
      .loose(),
  ),
});

/** A server's data directories, as /health shows them: counts, and the last problem of each process. */
export interface StateHealth {
  readonly persisted: boolean;
  readonly saves: number;
  readonly refused: number;
  readonly failed: number;
  readonly problems: readonly string[];
}

export interface PartHealth {
  readonly ok: boolean;
  readonly detail: string;
  readonly servers?: Readonly<
    Record<string, { available: boolean; running: number; restarts: number; state?: StateHealth }>
  >;
}

/**
 * The gateway's health: the Worker itself, D1, and the bridge that runs the catalog's servers (locally
 * the bridge process, deployed a Container probed through its own instance). 200 only when every part
 * can answer; otherwise 503 naming what is down. It shows no principal, secret or process detail.
 */
export function healthRoute(config: Config, loginProvider: string) {
  let cached: { at: number; bridge: PartHealth } | null = null;
  return async function health(env: Env): Promise<Response> {
    const now = Date.now();
    const bridgePromise =
      config.gateway.insecureDevBridgeUrl === null && cached && now - cached.at < DEPLOYED_PROBE_CACHE_MS
        ? Promise.resolve(cached.bridge)
        : probeBridge(config, env);
    const [bridge, database] = await Promise.all([bridgePromise, probeDatabase(env)]);
    if (config.gateway.insecureDevBridgeUrl === null) cached = { at: now, bridge };
    const down = [...(bridge.ok ? [] : ["bridge"]), ...(database.ok ? [] : ["database"])];
    return Response.json(
      {
        ok: down.length === 0,
        environment: config.environment,
        login: loginProvider,
        ...(down.length > 0 ? { down } : {}),
        parts: { worker: { ok: true, detail: "serving" }, database, bridge },
      },
      { status: down.length === 0 ? 200 : 503, headers: { "Cache-Control": "no-store" } },
    );
  };
}

async function probeBridge(config: Config, env: Env): Promise<PartHealth> {
  const local = config.gateway.insecureDevBridgeUrl;
  const where = local === null ? "container" : "bridge process";
  try {
    const response = await fetchBridgeHealth(config, env);
    if (response === null) return { ok: false, detail: "no bridge is configured for this deployment" };
    const parsed = BridgeHealth.safeParse(await response.json().catch(() => null));
    if (!parsed.success)
      return { ok: false, detail: `the ${where} answered ${response.status} without its health report` };
    const servers = Object.fromEntries(
      Object.entries(parsed.data.servers).map(([id, s]) => [
        id,
        {
          available: s.available,
          running: s.running,
          restarts: s.restarts,
          ...(s.state === undefined ? {} : { state: s.state }),
        },
      ]),
    );
    const unavailable = Object.entries(servers)
      .filter(([, s]) => !s.available)
      .map(([id]) => id);
    // A refused save (over its size limit) or a failing store does not stop a server from answering, so the
    // bridge stays "ok"; the detail says which servers keep data they cannot currently save.
    const unsaved = Object.entries(servers)
      .filter(([, s]) => (s.state?.problems.length ?? 0) > 0)
      .map(([id]) => id);
    const stateNote = unsaved.length > 0 ? `; data directory saves refused or failing: ${unsaved.join(", ")}` : "";
    if (response.ok && unavailable.length === 0) {
      return { ok: true, detail: `the ${where} answers${stateNote}`, servers };
    }
    return {
      ok: false,
      detail:
        unavailable.length > 0
          ? `servers not available (crash loop): ${unavailable.join(", ")}`
          : `the ${where} answered ${response.status}`,
      servers,
    };
  } catch (error) {
    const reason =
      error instanceof Error && error.name === "TimeoutError" ? "did not answer in time" : "is unreachable";
    return { ok: false, detail: `the ${where} ${reason}` };
  }
}

/**
 * The bridge's own `/health` answer (locally the bridge process, deployed the `health` container), or
 * `null` when no bridge is configured. Throws when it does not answer in time. The admin console reads its
 * per-child detail (states, exits, in flight, dropped messages), which the public /health leaves out.
 */
export async function fetchBridgeHealth(config: Config, env: Env): Promise<Response | null> {
  const local = config.gateway.insecureDevBridgeUrl;
  if (local !== null) {
    return fetch(new URL(BRIDGE_ROUTES.health, local), { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  }
  if (!env.BRIDGE) return null;
  const stub = env.BRIDGE.get(env.BRIDGE.idFromName(HEALTH_CONTAINER_NAME));
  return stub.fetch(new Request(`http://bridge${BRIDGE_ROUTES.health}`), {
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
}

async function probeDatabase(env: Env): Promise<PartHealth> {
  try {
    await pingDatabase(env.DB);
    return { ok: true, detail: "D1 answers" };
  } catch {
    return { ok: false, detail: "D1 is unreachable" };
  }
}
