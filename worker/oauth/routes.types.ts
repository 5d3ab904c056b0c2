import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import type { Config } from "../config.ts";
import type { Env } from "../env.ts";
import type { UpstreamLogin } from "../login/index.ts";

/** Hono's environment for our routes. */
export interface AppEnv {
  Bindings: Env;
}

/** What the interactive OAuth routes need, built once per Worker instance by app.ts. */
export interface OAuthRouteDeps {
  readonly config: Config;
  readonly login: UpstreamLogin;
  /** The MCP endpoint's path (`/mcp`): `resource=<origin><path>` names this server too (endpoint-resource.ts). */
  readonly mcpEndpointPath: string;
  /** The OAuth library's helpers for this request's env (parse, consent, upstream state, complete). */
  oauth(env: Env): OAuthHelpers;
}

/** The one scope this server grants: "use MCP tools as me". What a person may do is the policy's business. */
export const MCP_SCOPE = "mcp";
