import { Container } from "@cloudflare/containers";
import { catalog } from "../../policies/catalog.ts";

interface ContainerEnv {
  readonly HATAGO_BRIDGE_SECRET?: string;
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

  constructor(ctx: ConstructorParameters<typeof Container>[0], env: ContainerEnv) {
    super(ctx, env);
    this.envVars = {
      HATAGO_BRIDGE_SECRET: env.HATAGO_BRIDGE_SECRET ?? "",
      PORT: String(BRIDGE_PORT),
      HOST: "0.0.0.0",
    };
  }

  override onError(error: unknown): unknown {
    console.error(JSON.stringify({ event: "container_error", error: String(error) }));
    throw error;
  }
}
