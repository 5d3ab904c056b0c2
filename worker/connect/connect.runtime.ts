import type { ConnectConfig } from "../config.ts";
import { ConnectElicitation } from "./elicit.ts";
import type { BridgeEvictRoute } from "./evict.ts";
import { importKeyRing, type KeyRing } from "./token-seal.ts";

/** What the connect routes and the bridge's token endpoint share: settings, the key ring, the way to the bridge. */
export interface ConnectRuntime {
  readonly config: ConnectConfig;
  readonly publicUrl: string;
  /** Imported once per isolate. */
  keys(): Promise<KeyRing>;
  readonly bridge: BridgeEvictRoute;
  /** Binds and checks the connect links a tool call's elicitation hands out (elicit.ts). */
  readonly links: ConnectElicitation;
}

export function connectRuntime(config: ConnectConfig, publicUrl: string, bridge: BridgeEvictRoute): ConnectRuntime {
  let ring: Promise<KeyRing> | undefined;
  return {
    config,
    publicUrl,
    bridge,
    links: new ConnectElicitation(publicUrl, config),
    keys: () => {
      ring ??= importKeyRing(config.keys);
      return ring;
    },
  };
}
