import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBridge } from "./bridge.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger, errorText } from "./log.ts";

/**
 * The bridge process (BRIDGE_COMMAND in entry.ts). Exits 1 when misconfigured, with the reason in a
 * JSON log line; on SIGTERM/SIGINT it stops its children and exits 0.
 */

/** The application root: two levels above this file (`<root>/container/src/main.ts`). */
const APP_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const bootLog = createLogger("info");
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (error) {
  bootLog.error("bridge.config_invalid", { error: error instanceof ConfigError ? error.message : errorText(error) });
  process.exit(1);
}

const log = createLogger(config.logLevel);
const bridge = await startBridge(config, log, APP_ROOT).catch((error: unknown) => {
  log.error("bridge.start_failed", { error: errorText(error) });
  process.exit(1);
});
log.info("bridge.listening", { host: config.host, port: bridge.port, servers: config.servers, pid: process.pid });

// No orphans, ever: whatever way this process ends, its children's process groups get SIGKILL.
process.on("exit", () => bridge.killChildrenNow());
process.on("uncaughtException", (error) => {
  log.error("bridge.crashed", { error: errorText(error) });
  process.exit(1);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info("bridge.signal", { signal });
    bridge.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error("bridge.shutdown_failed", { error: errorText(error) });
        process.exit(1);
      },
    );
  });
}
