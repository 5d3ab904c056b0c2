import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { BridgeConfig } from "./config.ts";
import type { BridgeContext } from "./context.ts";
import { ReplayCache } from "./contract.ts";
import type { Logger } from "./log.ts";
import { importVerifyingKey } from "./mac.ts";
import { ServerPool } from "./pool.ts";
import { createHandler } from "./server.ts";
import { SessionRegistry } from "./session.ts";

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
  const pool = new ServerPool(config, log, appRoot);
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
