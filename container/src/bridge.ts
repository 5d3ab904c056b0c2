import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { BridgeConfig } from "./config.ts";
import { httpConnectionSource } from "./connections.ts";
import type { BridgeContext } from "./context.ts";
import { importBridgeKey, ReplayCache } from "./contract.ts";
import type { Logger } from "./log.ts";
import { importVerifyingKey } from "./mac.ts";
import { ServerPool } from "./pool.ts";
import { createHandler } from "./server.ts";
import { SessionRegistry } from "./session.ts";
import { httpStateStore } from "./state/store.ts";

/** How often open SSE streams get a keep-alive comment, and idle sessions are swept. */
const KEEPALIVE_INTERVAL_MS = 25_000;

export interface RunningBridge {
  readonly port: number;
  /** Graceful: stop listening, close sessions, stop every child (stdin, SIGTERM, SIGKILL). */
  shutdown(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL every child's process group. */
  killChildrenNow(): void;
}

/** Builds the bridge from its configuration and starts listening. */
export async function startBridge(config: BridgeConfig, log: Logger, appRoot: string): Promise<RunningBridge> {
  // State requests go the other way (bridge → Worker), so the bridge mints their credentials itself.
  const store = config.stateUrl === null ? null : httpStateStore(config.stateUrl, await importBridgeKey(config.secret));
  if (store === null) {
    log.warn("state.not_persisted", {
      message: "HATAGO_BRIDGE_STATE_URL is not set: data directories live only on this machine's disk",
    });
  }
  // Connection requests (issue 17) go bridge → Worker too, with `connection` credentials the bridge mints.
  const connections =
    config.connectionsUrl === null
      ? null
      : httpConnectionSource(config.connectionsUrl, await importBridgeKey(config.secret));
  const pool = new ServerPool(config, log, appRoot, store, connections);
  await pool.checkInstalled();
  const ctx: BridgeContext = {
    config,
    log,
    key: await importVerifyingKey(config.secret),
    replay: new ReplayCache(config.replayCacheEntries),
    pool,
    sessions: new SessionRegistry(config.sessionIdleMs, KEEPALIVE_INTERVAL_MS),
  };
  const server: Server = createServer({ keepAliveTimeout: 65_000 }, createHandler(ctx));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  server.on("clientError", (_error, socket) => socket.destroy());
  pool.prewarm();
  const { port } = server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    port,
    shutdown() {
      stopping ??= (async () => {
        log.info("bridge.stopping", {});
        server.close();
        ctx.sessions.closeAll();
        await pool.stopAll("shutdown");
        server.closeAllConnections();
        log.info("bridge.stopped", {});
      })();
      return stopping;
    },
    killChildrenNow: () => pool.killAll(),
  };
}
