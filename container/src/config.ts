import { tmpdir } from "node:os";
import path from "node:path";
import { isServerId, SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import { MIN_SECRET_BYTES } from "./contract.ts";
import { isLogLevel, type LogLevel } from "./log.ts";

/** The bridge's settings, all from the environment (README: "Configuration"). */
export interface BridgeConfig {
  readonly secret: string;
  readonly host: string;
  readonly port: number;
  readonly servers: readonly ServerId[];
  readonly dataDir: string;
  readonly callTimeoutMs: number;
  readonly maxSessionsPerServer: number;
  readonly maxInFlightPerServer: number;
  readonly maxLineBytes: number;
  readonly stopGraceMs: number;
  readonly sessionIdleMs: number;
  readonly replayCacheEntries: number;
  readonly logLevel: LogLevel;
  /**
   * Where data directories are restored from and saved to (container/src/state/): deployed, the host the
   * container's Durable Object intercepts; locally the Worker's URL. `null`: not persisted (a warning at start).
   */
  readonly stateUrl: string | null;
  /**
   * Where the bridge asks for a person's upstream token (issue 17: servers with a `connection`): deployed, the
   * connection host the container's Durable Object intercepts; locally the Worker's URL. `null`: such servers
   * run without a token and every call answers that connections are not available here.
   */
  readonly connectionsUrl: string | null;
  /** While a process runs, its data directory is saved at least this often (when it changed). */
  readonly stateSaveIntervalMs: number;
  /**
   * A catalog server that cannot start here (its runtime, program or a required secret is missing):
   * `fail` stops the bridge at start (the image, which the catalog built); `skip` serves the rest with
   * one line (`npm start` on a machine without, say, Python).
   */
  readonly missingServers: "fail" | "skip";
}

export class ConfigError extends Error {}

/** Loopback unless told otherwise: a bridge on a laptop should not listen on the LAN. The image sets 0.0.0.0. */
const DEFAULT_HOST = "127.0.0.1";
/** Cloudflare Containers' conventional port; the image EXPOSEs it. */
const DEFAULT_PORT = 8080;
/** A tool call that runs longer than a minute is almost always wedged; the Worker's own limits are similar. */
const DEFAULT_CALL_TIMEOUT_MS = 60_000;
/** Sessions are cheap (no process each); the cap bounds memory if a client leaks sessions. */
const DEFAULT_MAX_SESSIONS_PER_SERVER = 256;
/** Well above 8 sessions × 16 in-flight calls (the load we benchmark), low enough to bound queued bytes. */
const DEFAULT_MAX_IN_FLIGHT_PER_SERVER = 512;
/** Largest line a child may write: tool results carry images and files, so well above the request cap. */
const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
/** Each shutdown step (stdin closed, then SIGTERM) waits this long before the next. */
const DEFAULT_STOP_GRACE_MS = 3_000;
/** A session unused this long (no request, no stream) is forgotten. */
const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;
/**
 * A running process's data directory is saved this often when it changed (and also 1 s after each burst of
 * calls, and when it stops): with SIGKILL, under continuous load, at most two intervals are lost.
 */
const DEFAULT_STATE_SAVE_INTERVAL_MS = 30_000;
/** Live credential nonces remembered: ~3,000 requests/s for the 60 s maximum lifetime. */
const DEFAULT_REPLAY_CACHE_ENTRIES = 200_000;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): BridgeConfig {
  const secret = env.HATAGO_BRIDGE_SECRET;
  // SECURITY: no default secret, and no short one (a 32-byte minimum for an HMAC-SHA-256 key).
  if (!secret) throw new ConfigError("HATAGO_BRIDGE_SECRET is required (at least 32 bytes)");
  if (Buffer.byteLength(secret, "utf8") < MIN_SECRET_BYTES) {
    throw new ConfigError(`HATAGO_BRIDGE_SECRET must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return {
    secret,
    host: env.HOST || DEFAULT_HOST,
    port: integer(env, "PORT", DEFAULT_PORT, 0, 65_535),
    servers: servers(env.HATAGO_BRIDGE_SERVERS),
    dataDir: path.resolve(env.HATAGO_BRIDGE_DATA_DIR || path.join(tmpdir(), "hatago-bridge")),
    callTimeoutMs: integer(env, "HATAGO_BRIDGE_CALL_TIMEOUT_MS", DEFAULT_CALL_TIMEOUT_MS, 100, 3_600_000),
    maxSessionsPerServer: integer(env, "HATAGO_BRIDGE_MAX_SESSIONS", DEFAULT_MAX_SESSIONS_PER_SERVER, 1, 100_000),
    maxInFlightPerServer: integer(env, "HATAGO_BRIDGE_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT_PER_SERVER, 1, 100_000),
    maxLineBytes: integer(env, "HATAGO_BRIDGE_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES, 1024, 256 * 1024 * 1024),
    stopGraceMs: integer(env, "HATAGO_BRIDGE_STOP_GRACE_MS", DEFAULT_STOP_GRACE_MS, 0, 60_000),
    sessionIdleMs: integer(env, "HATAGO_BRIDGE_SESSION_IDLE_MS", DEFAULT_SESSION_IDLE_MS, 1_000, 86_400_000),
    replayCacheEntries: DEFAULT_REPLAY_CACHE_ENTRIES,
    logLevel: logLevel(env.HATAGO_BRIDGE_LOG_LEVEL),
    stateUrl: stateUrl(env.HATAGO_BRIDGE_STATE_URL),
    connectionsUrl: stateUrl(env.HATAGO_BRIDGE_CONNECTIONS_URL, "HATAGO_BRIDGE_CONNECTIONS_URL"),
    stateSaveIntervalMs: integer(
      env,
      "HATAGO_BRIDGE_STATE_SAVE_INTERVAL_MS",
      DEFAULT_STATE_SAVE_INTERVAL_MS,
      1_000,
      3_600_000,
    ),
    missingServers: missingServers(env.HATAGO_BRIDGE_MISSING_SERVERS),
  };
}

function integer(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function servers(raw: string | undefined): ServerId[] {
  if (raw === undefined || raw.trim() === "") return [...SERVER_IDS];
  const ids = raw.split(",").map((id) => id.trim());
  const unknown = ids.filter((id) => !isServerId(id));
  if (unknown.length > 0) {
    throw new ConfigError(`HATAGO_BRIDGE_SERVERS names unknown servers: ${unknown.join(", ")}`);
  }
  return [...new Set(ids as ServerId[])];
}

function missingServers(raw: string | undefined): "fail" | "skip" {
  if (raw === undefined || raw === "" || raw === "fail") return "fail";
  if (raw === "skip") return "skip";
  throw new ConfigError(`HATAGO_BRIDGE_MISSING_SERVERS must be fail or skip, got "${raw}"`);
}

/** An http(s) origin, no path: deployed `http://bridge-state.hatago.internal`, locally the Worker's URL. */
function stateUrl(raw: string | undefined, name = "HATAGO_BRIDGE_STATE_URL"): string | null {
  if (raw === undefined || raw.trim() === "") return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search || url.hash) {
    throw new ConfigError(`${name} must be an http(s) origin with no path, got "${raw}"`);
  }
  return url.origin;
}

function logLevel(raw: string | undefined): LogLevel {
  if (raw === undefined || raw === "") return "info";
  if (!isLogLevel(raw)) throw new ConfigError(`HATAGO_BRIDGE_LOG_LEVEL must be debug, info, warn or error`);
  return raw;
}
