import { Container, type OutboundHandlerContext } from "@cloudflare/containers";
import {
  BRIDGE_CONNECTION_HOST,
  BRIDGE_STATE_HOST,
  type BridgeKey,
  importBridgeKey,
  ReplayCache,
} from "../../container/src/contract.ts";
import { secretsFor, secretVariable } from "../../container/src/secrets.ts";
import { catalog, connectionOf, isServerId } from "../../policies/catalog.ts";
import { parseConfig } from "../config.ts";
import {
  type ConnectRuntime,
  connectRuntime,
  type EgressRule,
  egressRules,
  handleBridgeConnectionRequest,
  handleEgressRequest,
  resolveConnection,
} from "../connect/index.ts";
import type { Env } from "../env.ts";
import { handleBridgeStateRequest } from "./state.ts";

interface ContainerEnv {
  readonly HATAGO_BRIDGE_SECRET?: string;
  readonly BRIDGE?: DurableObjectNamespace;
  readonly BRIDGE_STATE?: R2Bucket;
}

/** The port the bridge listens on inside the image (container/Dockerfile EXPOSEs it). */
export const BRIDGE_PORT = 8080;
/** The longest idle timeout in the catalog: a container outlives its idlest server, then sleeps. */
const SLEEP_AFTER_SECONDS = Math.max(...Object.values(catalog).map((e) => e.idleTimeoutSeconds));

/**
 * The bridge image running in Cloudflare Containers, one instance per (server, principal) or per server
 * (worker/bridge/router.ts names them). Only the Worker can reach it, and every request still carries a
 * signed credential the bridge verifies.
 */
export class BridgeContainer extends Container<ContainerEnv> {
  override defaultPort = BRIDGE_PORT;
  override sleepAfter = SLEEP_AFTER_SECONDS;
  // SECURITY: stdio servers get no outbound internet unless a deployment opts in; most need none.
  override enableInternet = false;
  // HTTPS is intercepted (per host, the egress hosts only) when a connection is injected at egress (issue 17).
  override interceptHttps = EGRESS_RULES.size > 0;

  constructor(ctx: ConstructorParameters<typeof Container>[0], env: ContainerEnv) {
    super(ctx, env);
    this.envVars = {
      HATAGO_BRIDGE_SECRET: env.HATAGO_BRIDGE_SECRET ?? "",
      PORT: String(BRIDGE_PORT),
      HOST: "0.0.0.0",
      ...containerStateEnv(ctx.id.name),
      ...containerSecretEnv(ctx.id.name, env as unknown as Readonly<Record<string, unknown>>),
    };
  }

  /** Its own name (`ctx.id.name`), asked by the egress handler, which sees only the id (connect/egress.ts). */
  async ownName(): Promise<string | null> {
    return this.ctx.id.name ?? null;
  }

  override onError(error: unknown): unknown {
    console.error(JSON.stringify({ event: "container_error", error: String(error) }));
    throw error;
  }
}

/**
 * What a container needs to keep its data directories (issue 13), from the name the router gave it
 * (`user:<server>:<principal>` or `shared:<server>`, router.ts): it hosts that one server, and restores and
 * saves through BRIDGE_STATE_HOST. Any other instance (the `health` probe's) hosts every server and keeps no
 * state: it serves no person's calls. `ctx.id.name` is the name given to `idFromName` (workerd, 2026-03).
 */
export function containerStateEnv(name: string | undefined): Record<string, string> {
  const match = /^(?:user|shared):([a-z0-9-]+)(?::|$)/.exec(name ?? "");
  const server = match?.[1];
  if (server === undefined || !isServerId(server)) return {};
  return {
    HATAGO_BRIDGE_SERVERS: server,
    HATAGO_BRIDGE_STATE_URL: `http://${BRIDGE_STATE_HOST}`,
    // A server that acts as each person fetches that person's token through the connection host (issue 17).
    ...(connectionOf(server) ? { HATAGO_BRIDGE_CONNECTIONS_URL: `http://${BRIDGE_CONNECTION_HOST}` } : {}),
  };
}

/**
 * SECURITY: a server's secrets (Worker secret bindings `HATAGO_SECRET_<SERVER>__<NAME>`, from the stack's
 * Pulumi secrets: infra/server-secrets.ts) reach only the containers of that server: the container named
 * for it by the router. The `health` probe's container and every other server's get none.
 */
export function containerSecretEnv(
  name: string | undefined,
  env: Readonly<Record<string, unknown>>,
): Record<string, string> {
  const server = containerStateEnv(name).HATAGO_BRIDGE_SERVERS;
  if (server === undefined || !isServerId(server)) return {};
  // The bridge's own reader of a server's secrets (the variables carry the server id), renamed back.
  const strings = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === "string")) as Record<
    string,
    string
  >;
  const values: Record<string, string> = {};
  for (const [secret, value] of Object.entries(secretsFor(server, catalog[server], strings))) {
    values[secretVariable(server, secret)] = value;
  }
  return values;
}

/** The catalog's egress rules, checked when the Worker loads (an invalid declaration fails the deployment). */
const EGRESS_RULES = egressRules();
/** Container id → its Durable Object's name: fixed for the life of the id, so remembered (bounded). */
const containerNames = new Map<string, string>();
const MAX_REMEMBERED_NAMES = 1_000;

function egressHandler(rule: EgressRule) {
  return (request: Request, env: unknown, ctx: OutboundHandlerContext) => {
    const bindings = env as ContainerEnv;
    const connection = connectionRuntimeOf(env as object);
    if (!connection || !bindings.BRIDGE) return Response.json({ error: { code: "misconfigured" } }, { status: 503 });
    const containers = bindings.BRIDGE;
    return handleEgressRequest(request, rule, ctx.containerId, {
      nameOf: async (id) => {
        const known = containerNames.get(id);
        if (known !== undefined) return known;
        const stub = containers.get(containers.idFromString(id)) as unknown as { ownName(): Promise<string | null> };
        const name = await stub.ownName();
        if (name !== null) {
          if (containerNames.size >= MAX_REMEMBERED_NAMES) containerNames.clear();
          containerNames.set(id, name);
        }
        return name;
      },
      idOf: (name) => containers.idFromName(name).toString(),
      resolve: (server, principal) => resolveConnection(connection.runtime, env as Env, server, principal, null),
      fetch: (upstream) => fetch(upstream),
    });
  };
}

/** One key per secret and one replay cache per isolate, for the state requests containers make. */
let stateKey: { secret: string; key: Promise<BridgeKey> } | undefined;
const stateReplay = new ReplayCache(10_000);

/**
 * The connection runtime of the configuration in `env`, built once per `env` (as boot.ts caches the
 * Worker): the connection host is on the path of every tool call to a server that uses a connection.
 * `null` when the configuration is invalid (answered 503).
 */
const connectionByEnv = new WeakMap<object, { runtime: ConnectRuntime; key: Promise<BridgeKey> } | null>();
const connectionReplay = new ReplayCache(10_000);

function connectionRuntimeOf(env: object): { runtime: ConnectRuntime; key: Promise<BridgeKey> } | null {
  let entry = connectionByEnv.get(env);
  if (entry === undefined) {
    const parsed = parseConfig(env);
    if (parsed.ok) {
      const key = importBridgeKey(parsed.config.gateway.bridgeSecret);
      const runtime = connectRuntime(parsed.config.connect, parsed.config.publicUrl, {
        key: () => key,
        insecureDevBridgeUrl: null,
      });
      entry = { runtime, key };
    } else {
      entry = null;
    }
    connectionByEnv.set(env, entry);
  }
  return entry;
}

/**
 * SECURITY: requests from inside a container to BRIDGE_STATE_HOST never leave Cloudflare: the container's
 * Durable Object intercepts them (`@cloudflare/containers` outbound handlers, run by `ContainerProxy`, which
 * worker/index.ts exports) and they are served here with the intercepting container's own id, which the
 * container cannot choose. Every other host stays unreachable (`enableInternet = false`). Assigned, not
 * declared as a static field: the library registers handlers through its static setter.
 */
BridgeContainer.outboundByHost = {
  // Issue 17: the hosts where a connection's token is added at egress (none unless the catalog declares one).
  ...Object.fromEntries([...EGRESS_RULES].map(([host, rule]) => [host, egressHandler(rule)])),
  // SECURITY: like the state host: served in the Worker with the intercepting container's own id, so a
  // container gets the token of its own (server, principal) only (bridge-token.ts checks it).
  [BRIDGE_CONNECTION_HOST]: async (request: Request, env: unknown, ctx: OutboundHandlerContext) => {
    const connection = connectionRuntimeOf(env as object);
    if (!connection) return Response.json({ error: { code: "misconfigured" } }, { status: 503 });
    return handleBridgeConnectionRequest(request, {
      runtime: connection.runtime,
      key: await connection.key,
      replay: connectionReplay,
      env: env as Env,
      containerId: ctx.containerId,
    });
  },
  [BRIDGE_STATE_HOST]: async (request: Request, env: unknown, ctx: OutboundHandlerContext) => {
    const bindings = env as ContainerEnv;
    const secret = bindings.HATAGO_BRIDGE_SECRET ?? "";
    if (stateKey?.secret !== secret) stateKey = { secret, key: importBridgeKey(secret) };
    return handleBridgeStateRequest(request, {
      key: await stateKey.key,
      replay: stateReplay,
      bucket: bindings.BRIDGE_STATE,
      containerId: ctx.containerId,
      containers: bindings.BRIDGE,
    });
  },
};
