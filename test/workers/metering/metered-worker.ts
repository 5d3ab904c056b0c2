/**
 * The product Worker (worker/index.ts) with metered bindings, as a wrangler entry for measurement only:
 * `wrangler dev test/workers/metering/metered-worker.ts` (the bench does this; see bench/RESULTS.md).
 * Never deployed: the deployment's entry is worker/index.ts, and this file is not reachable from it.
 *
 * It runs the product's code unchanged. The only differences: `env.DB`, `env.OAUTH_KV`, `env.MCP_SESSIONS`,
 * `env.BRIDGE` and `env.AUDIT_LEDGER` are wrapped with counters (meter.ts), the session Durable Object's
 * storage is counted, the audit ledgers' SQL and their own D1 (shipments: `d1.ledger.*`) are counted,
 * outbound fetches are counted by host, and `/__meter` (GET: the tallies; POST: reset) answers the bench.
 */
import type { Env } from "../../../worker/env.ts";
import product, {
  AuditLedger as ProductAuditLedger,
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
  meterSql,
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
    ...(env.AUDIT_LEDGER ? { AUDIT_LEDGER: meterDurableObjects(env.AUDIT_LEDGER, "ledger", LEDGER_RPC) } : {}),
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

/**
 * The ledger's RPC methods: `do.ledger.append` is the audit write a request waits for, `do.ledger.callsSince`
 * the rate limit's count (only for callers whose roles have a limit).
 */
const LEDGER_RPC = ["append", "callsSince", "ship", "state"] as const;

type ProductLedgerEnv = ConstructorParameters<typeof ProductAuditLedger>[1];

/** Shipments are the ledger's D1 use, after the answer: counted apart from the request path's D1. */
export class AuditLedger extends ProductAuditLedger {
  constructor(ctx: DurableObjectState, env: ProductLedgerEnv) {
    meterSql(ctx.storage, "ledger");
    super(ctx, { ...env, DB: meterD1(env.DB, "d1.ledger") });
  }
}

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
