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

function logLevel(raw: string | undefined): LogLevel {
  if (raw === undefined || raw === "") return "info";
  if (!isLogLevel(raw)) throw new ConfigError(`HATAGO_BRIDGE_LOG_LEVEL must be debug, info, warn or error`);
  return raw;
}
