import { getOAuthApi, OAuthProvider, type OAuthProviderOptions } from "@cloudflare/workers-oauth-provider";
import { Hono } from "hono";
import {
  BRIDGE_CONNECTION_PATH_PREFIX,
  BRIDGE_STATE_PATH_PREFIX,
  importBridgeKey,
  ReplayCache,
} from "../container/src/contract.ts";
import { ADMIN_PATH, createAdminRoutes } from "./admin/admin.routes.ts";
import { createConsole, isConsolePath } from "./admin/console.routes.ts";
import { CONSOLE_SCRIPT_PATH, consoleScriptResponse } from "./admin/console.script.ts";
import { devBridgeStateRoute } from "./bridge/state.ts";
import type { Config } from "./config.ts";
import { connectElicitationFor } from "./connect/elicit.ts";
import {
  connectRuntime,
  createConnectRoutes,
  handleBridgeConnectionRequest,
  registerEvictRoute,
} from "./connect/index.ts";
import type { Env } from "./env.ts";
import { healthRoute } from "./health.ts";
import { PROTECTED_RESOURCE_METADATA_PATH } from "./http/bearer.ts";
import { HttpError } from "./http/errors.ts";
import { homePage } from "./http/home.page.ts";
import { originGuard } from "./http/origin.ts";
import { errorPage, stylesheetResponse } from "./http/page.ts";
import { STYLESHEET_PATH } from "./http/security-headers.ts";
import { loginFor } from "./login/index.ts";
import { createMcpHandler, MCP_PATH, SSE_MESSAGE_PATH, SSE_PATH } from "./mcp/index.ts";
import {
  type AppEnv,
  apiApp,
  endpointMetadataPath,
  endpointMetadataResponse,
  guardTokenEndpoint,
  mountAuthorize,
  mountCallback,
  providerOptions,
  TOKEN_PATH,
} from "./oauth/index.ts";
import { forgettingOnRevoke, TokenVerdicts, withLibraryCorsHeaders } from "./oauth/token-verdicts.ts";

/** A Worker built from one configuration: what the default export runs, and what tests build directly. */
export interface HatagoWorker {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
}

/**
 * Builds the Worker for a parsed configuration. The default export (index.ts) calls this with the
 * configuration parsed from `env`; tests call it with other configurations (another login provider), so
 * both run exactly this code.
 */
export function createWorker(config: Config): HatagoWorker {
  const login = loginFor(config);
  const mcp = createMcpHandler({
    allowedOrigins: [config.publicUrl, ...config.allowedOrigins],
    gateway: config.gateway,
    // Built once per Worker, from the configuration already parsed: not per request.
    connect: connectElicitationFor(config),
    listen: config.listen,
  });
  // Issue 18: the library's verdict on a token is reused on the MCP paths for ≤ 1 s (oauth/token-verdicts.ts).
  const verdicts = new TokenVerdicts({ isolateWide: true });
  const mcpAccepted = (request: Request, env: Env, ctx: ExecutionContext) => {
    verdicts.accepted(request, ctx as { props?: unknown; auth?: unknown });
    return mcp(request, env, ctx);
  };
  const admin = createAdminRoutes(config.adminAccess);
  const originAllowed = originGuard([config.publicUrl, ...config.allowedOrigins]);
  const app = new Hono<AppEnv>();
  // Set below; the routes only run after the provider exists.
  let options: OAuthProviderOptions<Env> | undefined;
  const deps = {
    config,
    login,
    mcpEndpointPath: MCP_PATH,
    oauth: (env: Env) => {
      if (!options) throw new Error("OAuth routes called before the provider was built");
      // Helpers built from our own options, never the `env.OAUTH_PROVIDER` the library may have left on a shared env.
      // Every grant they revoke (sign-out, burnt codes, refresh reuse) empties this isolate's token verdicts.
      return forgettingOnRevoke(getOAuthApi(options, env), () => verdicts.forget());
    },
  };

  let tokenEndpoint: ((request: Request, env: Env, ctx: ExecutionContext) => Promise<Response>) | undefined;
  const health = healthRoute(config, login.provider);
  app.get("/health", (c) => health(c.env));
  app.get("/", () => homePage(config.publicUrl, { connections: config.connect.providers.length > 0 }));
  app.get(STYLESHEET_PATH, () => stylesheetResponse());
  app.get(CONSOLE_SCRIPT_PATH, () => consoleScriptResponse());
  mountAuthorize(app, deps);
  mountCallback(app, deps);
  // Local development only (HATAGO_INSECURE_DEV_BRIDGE_URL): the bridge process's state requests.
  const devState = devBridgeStateRoute(config.gateway);
  if (devState) app.on(["GET", "PUT"], `${BRIDGE_STATE_PATH_PREFIX}*`, (c) => devState(c.req.raw, c.env));
  // Connections (issue 17): people's own upstream accounts, at /connect; off when no provider is configured.
  const bridgeKey = importBridgeKey(config.gateway.bridgeSecret);
  const evictRoute = { key: () => bridgeKey, insecureDevBridgeUrl: config.gateway.insecureDevBridgeUrl };
  registerEvictRoute(evictRoute);
  const connect = connectRuntime(config.connect, config.publicUrl, evictRoute);
  if (config.connect.providers.length > 0) {
    app.route(
      "/",
      createConnectRoutes(connect, {
        publicUrl: config.publicUrl,
        login,
        oauth: deps.oauth,
        token: (request, env, ctx) => {
          if (!tokenEndpoint) throw new Error("connect routes called before the provider was built");
          return tokenEndpoint(request, env, ctx);
        },
      }),
    );
    // Local development only (HATAGO_INSECURE_DEV_BRIDGE_URL): the bridge process's connection requests.
    if (config.gateway.insecureDevBridgeUrl !== null) {
      const replay = new ReplayCache(10_000);
      app.get(`${BRIDGE_CONNECTION_PATH_PREFIX}*`, async (c) =>
        handleBridgeConnectionRequest(c.req.raw, {
          runtime: connect,
          key: await bridgeKey,
          replay,
          env: c.env,
          containerId: null,
        }),
      );
    }
  }
  app.notFound((c) => c.json({ error: "not_found" }, 404));
  app.onError((error, c) => {
    if (error instanceof HttpError) {
      console.warn(`http: ${c.req.method} ${new URL(c.req.url).pathname} → ${error.status}: ${error.publicMessage}`);
      return errorPage(error);
    }
    console.error(`http: ${c.req.method} ${new URL(c.req.url).pathname} failed`, error);
    return c.json({ error: "server_error" }, 500);
  });

  options = providerOptions(config, {
    // Protected routes, all in one place. Each needs a valid access token for this server (audience = origin).
    apiHandlers: {
      "/api/": apiApp(),
      // The MCP gateway: Streamable HTTP at /mcp, legacy HTTP+SSE at /sse (+ /sse/message).
      [MCP_PATH]: { fetch: mcpAccepted },
      [SSE_PATH]: { fetch: mcpAccepted },
      // Admin endpoints (kill switch, audit log): the admin level on `*`, decided like every MCP call.
      [`${ADMIN_PATH}/`]: admin,
    },
    defaultHandler: { fetch: (request, env, ctx) => app.fetch(request, env, ctx) },
  });
  const provider = new OAuthProvider<Env>(options);
  /**
   * The library's token endpoint behind our checks (refresh token reuse, single-use codes, CIMD hosts), for
   * every path that reaches it (/token, the console's and the connect routes' own sign-ins). A refresh or a
   * revocation (RFC 7009) may end a token inside the library: once the request is over, whatever its outcome,
   * this isolate asks the library again (a check under way meanwhile is not kept: ReuseCache's generation).
   */
  const tokenRequest = async (
    request: Request,
    env: Env,
    ctx: ExecutionContext,
    endpointResource?: { origin: string; path: string },
  ): Promise<Response> => {
    try {
      return await guardTokenEndpoint(request, env, {
        oauth: deps.oauth,
        forward: (r) => provider.fetch(r, env, ctx),
        ...(endpointResource ? { endpointResource } : {}),
      });
    } finally {
      verdicts.forget();
    }
  };
  tokenEndpoint = tokenRequest;
  // The admin console (browser sessions); the JSON API under /admin/ stays a bearer-token route above.
  const adminConsole = createConsole({
    config,
    login,
    oauth: deps.oauth,
    token: (request, env, ctx) => tokenRequest(request, env, ctx),
    health: (env) => health(env),
  });

  // The library caches its helpers on `env.OAUTH_PROVIDER`; it gets a copy of `env` of this Worker's own,
  // so two Workers built from different configurations in one isolate (tests) never share them. One copy
  // per `env` (the same object for every request of a deployment), not one per request.
  const ownEnvs = new WeakMap<Env, Env>();
  const ownEnvOf = (env: Env): Env => {
    let own = ownEnvs.get(env);
    if (!own) {
      own = { ...env };
      Reflect.deleteProperty(own, "OAUTH_PROVIDER");
      ownEnvs.set(env, own);
    }
    return own;
  };

  return {
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      // SECURITY: one origin. Tokens, cookies and the issuer are bound to it; another host name for the
      // same Worker (workers.dev next to a custom domain) would split them, so it only serves /health.
      if (url.origin !== config.publicUrl && url.pathname !== "/health") {
        return Response.json(
          { error: "misdirected_request", error_description: `This service answers at ${config.publicUrl}` },
          { status: 421, headers: { "Cache-Control": "no-store" } },
        );
      }
      const ownEnv = ownEnvOf(env);
      // SECURITY: one Origin rule for every protected path, checked before the OAuth library (which would
      // reflect any Origin in Access-Control-Allow-Origin, preflights included).
      if (isProtectedPath(url.pathname) && !originAllowed(request)) {
        return Response.json(
          { error: "forbidden", error_description: "This Origin may not use this endpoint." },
          { status: 403, headers: { "Cache-Control": "no-store", Vary: "Origin" } },
        );
      }
      try {
        if (isConsolePath(url.pathname)) return await adminConsole.fetch(request, ownEnv, ctx);
        if (isMcpPath(url.pathname) && request.method !== "OPTIONS") {
          const verdict = verdicts.recall(request);
          if (verdict) {
            // The library accepted this token for this URL within the last second: its verdict, reused.
            const context = ctx as ExecutionContext & { props?: unknown; auth?: unknown };
            context.props = verdict.props;
            context.auth = verdict.auth;
            return withUnauthorizedBody(withLibraryCorsHeaders(await mcp(request, ownEnv, ctx), request));
          }
          verdicts.beforeLibrary(request);
        }
        if (url.pathname === TOKEN_PATH && request.method === "POST") {
          return await tokenRequest(request, ownEnv, ctx, { origin: config.publicUrl, path: MCP_PATH });
        }
        if (
          url.pathname === endpointMetadataPath(MCP_PATH) &&
          (request.method === "GET" || request.method === "HEAD")
        ) {
          // RFC 9728 §3.1: the endpoint's own metadata location, built from the library's root document.
          const root = new Request(`${config.publicUrl}${PROTECTED_RESOURCE_METADATA_PATH}`, {
            method: "GET",
            headers: request.headers,
          });
          const answered = await provider.fetch(root, ownEnv, ctx);
          return await endpointMetadataResponse(answered, config.publicUrl, MCP_PATH, request.method);
        }
        return withUnauthorizedBody(await provider.fetch(request, ownEnv, ctx));
      } catch (error) {
        console.error(`oauth: ${request.method} ${url.pathname} failed`, error);
        return Response.json({ error: "server_error" }, { status: 500, headers: { "Cache-Control": "no-store" } });
      }
    },
  };
}

/** The MCP handler's own paths: the only ones where a token verdict is reused. */
function isMcpPath(pathname: string): boolean {
  return pathname === MCP_PATH || pathname === SSE_PATH || pathname === SSE_MESSAGE_PATH;
}

/** The paths that need a bearer token (app.ts's apiHandlers). */
function isProtectedPath(pathname: string): boolean {
  return (
    pathname === MCP_PATH ||
    pathname === SSE_PATH ||
    pathname.startsWith(`${SSE_PATH}/`) ||
    pathname.startsWith("/api/") ||
    pathname === ADMIN_PATH ||
    pathname.startsWith(`${ADMIN_PATH}/`)
  );
}

/**
 * The OAuth library answers a request without a token with `401` and an empty body (its challenge header
 * is right). Some clients show an empty body as a blank error, so every 401 gets a short JSON body.
 */
function withUnauthorizedBody(response: Response): Response {
  if (response.status !== 401 || response.body !== null) return response;
  const headers = new Headers(response.headers);
  headers.set("Content-Type", "application/json");
  return new Response(
    JSON.stringify({
      error: "unauthorized",
      error_description: `Sign in first: this endpoint needs an OAuth access token (see ${PROTECTED_RESOURCE_METADATA_PATH}).`,
    }),
    { status: 401, headers },
  );
}
