/**
 * The product Worker (worker/index.ts) with metered bindings, as a wrangler entry for measurement only:
 * `wrangler dev test/workers/metering/metered-worker.ts` (the bench does this; see bench/RESULTS.md).
 * Never deployed: the deployment's entry is worker/index.ts, and this file is not reachable from it.
 *
 * It runs the product's code unchanged. The only differences: `env.DB`, `env.OAUTH_KV`, `env.MCP_SESSIONS`
 * and `env.BRIDGE` are wrapped with counters (meter.ts), the session Durable Object's storage is counted,
 * outbound fetches are counted by host, and `/__meter` (GET: the tallies; POST: reset) answers the bench.
 */
import type { Env } from "../../../worker/env.ts";
import product, {
  BridgeContainer as ProductBridgeContainer,
  McpSession as ProductMcpSession,
} from "../../../worker/index.ts";
import {
  meterD1,
  meterDurableObjects,
  meterGlobalFetch,
  meterKv,
  meterReset,
  meterSnapshot,
  meterStorage,
  meterTime,
} from "./meter.ts";

/** Not exported: a Worker entry may export only handlers and classes. The bench uses the same path. */
const METER_PATH = "/__meter";

meterGlobalFetch();

/** One metered env per real env: the Worker caches its build per env object (worker/boot.ts). */
const meteredEnvs = new WeakMap<object, Env>();

function metered<E extends Env | ProductSessionEnv>(env: E): E {
  const cached = meteredEnvs.get(env) as E | undefined;
  if (cached) return cached;
  const wrapped: E = {
    ...env,
    DB: meterD1(env.DB),
    ...("OAUTH_KV" in env && env.OAUTH_KV ? { OAUTH_KV: meterKv(env.OAUTH_KV) } : {}),
    ...(env.MCP_SESSIONS ? { MCP_SESSIONS: meterDurableObjects(env.MCP_SESSIONS, "session") } : {}),
    ...(env.BRIDGE ? { BRIDGE: meterDurableObjects(env.BRIDGE, "bridge") } : {}),
  };
  meteredEnvs.set(env, wrapped as Env);
  return wrapped;
}

type ProductSessionEnv = ConstructorParameters<typeof ProductMcpSession>[1];

export class McpSession extends ProductMcpSession {
  constructor(ctx: DurableObjectState, env: ProductSessionEnv) {
    meterStorage(ctx.storage, "session");
    super(ctx, metered(env));
  }

  override fetch(request: Request): Promise<Response> {
    return meterTime("do.session.handler", () => super.fetch(request));
  }
}

export class BridgeContainer extends ProductBridgeContainer {}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === METER_PATH) {
      if (request.method === "POST") meterReset();
      return Response.json(meterSnapshot());
    }
    return meterTime("worker.request", () => product.fetch(request, metered(env), ctx));
  },
} satisfies ExportedHandler<Env>;
