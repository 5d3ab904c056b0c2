import { z } from "zod";
import { BRIDGE_ROUTES } from "../container/src/contract.ts";
import type { Config } from "./config.ts";
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
    z.object({ available: z.boolean(), running: z.number(), restarts: z.number() }).loose(),
  ),
});

export interface PartHealth {
  readonly ok: boolean;
  readonly detail: string;
  readonly servers?: Readonly<Record<string, { available: boolean; running: number; restarts: number }>>;
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
    let response: Response;
    if (local !== null) {
      response = await fetch(new URL(BRIDGE_ROUTES.health, local), { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    } else if (env.BRIDGE) {
      const stub = env.BRIDGE.get(env.BRIDGE.idFromName(HEALTH_CONTAINER_NAME));
      response = await stub.fetch(new Request(`http://bridge${BRIDGE_ROUTES.health}`), {
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
    } else {
      return { ok: false, detail: "no bridge is configured for this deployment" };
    }
    const parsed = BridgeHealth.safeParse(await response.json().catch(() => null));
    if (!parsed.success)
      return { ok: false, detail: `the ${where} answered ${response.status} without its health report` };
    const servers = Object.fromEntries(
      Object.entries(parsed.data.servers).map(([id, s]) => [
        id,
        { available: s.available, running: s.running, restarts: s.restarts },
      ]),
    );
    const unavailable = Object.entries(servers)
      .filter(([, s]) => !s.available)
      .map(([id]) => id);
    if (response.ok && unavailable.length === 0) return { ok: true, detail: `the ${where} answers`, servers };
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

async function probeDatabase(env: Env): Promise<PartHealth> {
  try {
    await env.DB.prepare("SELECT 1").first();
    return { ok: true, detail: "D1 answers" };
  } catch {
    return { ok: false, detail: "D1 is unreachable" };
  }
}
