import { MIN_SECRET_BYTES } from "../../container/src/contract.ts";

/** The bindings and settings the gateway reads (names: worker/bindings.ts). */
export interface SessionEnv {
  readonly DB: D1Database;
  readonly MCP_SESSIONS?: DurableObjectNamespace;
  readonly BRIDGE?: DurableObjectNamespace;
  readonly HATAGO_ENVIRONMENT?: string;
  readonly HATAGO_BRIDGE_SECRET?: string;
  readonly HATAGO_INSECURE_DEV_BRIDGE_URL?: string;
}

export interface GatewaySettings {
  /** Signs the per-request bridge credentials; the audit digest key is derived from it too. */
  readonly bridgeSecret: string;
  /**
   * UNSAFE, local development only: a bridge process's URL used instead of the Container binding.
   * Refused in production and for any host other than loopback.
   */
  readonly insecureDevBridgeUrl: string | null;
}

export class GatewaySettingsError extends Error {
  constructor(setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.name = "GatewaySettingsError";
  }
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function gatewaySettingsFrom(env: SessionEnv): GatewaySettings {
  const secret = env.HATAGO_BRIDGE_SECRET ?? "";
  if (new TextEncoder().encode(secret).byteLength < MIN_SECRET_BYTES) {
    throw new GatewaySettingsError(
      "HATAGO_BRIDGE_SECRET",
      `must be set to a random secret of at least ${MIN_SECRET_BYTES} bytes`,
    );
  }
  const devUrl = env.HATAGO_INSECURE_DEV_BRIDGE_URL?.trim() || null;
  if (devUrl !== null) {
    if (env.HATAGO_ENVIRONMENT === "prod") {
      throw new GatewaySettingsError(
        "HATAGO_INSECURE_DEV_BRIDGE_URL",
        "is for local development and is refused in production",
      );
    }
    let url: URL;
    try {
      url = new URL(devUrl);
    } catch {
      throw new GatewaySettingsError("HATAGO_INSECURE_DEV_BRIDGE_URL", "is not a URL");
    }
    if (url.protocol !== "http:" || !LOOPBACK_HOSTS.has(url.hostname)) {
      throw new GatewaySettingsError(
        "HATAGO_INSECURE_DEV_BRIDGE_URL",
        "must be an http:// URL on 127.0.0.1, localhost or [::1]",
      );
    }
  }
  return { bridgeSecret: secret, insecureDevBridgeUrl: devUrl };
}
