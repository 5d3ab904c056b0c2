import { workerFor } from "./boot.ts";
import type { Env } from "./env.ts";

/**
 * The Worker: OAuth 2.1 authorization server (workers-oauth-provider) with our consent page and upstream
 * login, and the protected API. Configuration is read from `env` on the first request (boot.ts).
 */
export default {
  fetch(request, env, ctx) {
    return workerFor(env).fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

// Runs the container's outbound handlers (BridgeContainer.outboundByHost: the state host); the library
// finds it by this export name.
export { ContainerProxy } from "@cloudflare/containers";
export { createWorker, type HatagoWorker } from "./app.ts";
// Durable Object classes the runtime instantiates (bindings in wrangler.jsonc / the generated deploy config).
export { AuditLedger } from "./audit/ledger.ts";
export { BridgeContainer } from "./bridge/container.ts";
export { type Config, parseConfig } from "./config.ts";
export { McpSession } from "./mcp/session.ts";
