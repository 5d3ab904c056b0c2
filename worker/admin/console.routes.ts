import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { AuditEntry } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { Env } from "../env.ts";
import { expiredHostCookie, hostCookie, readCookie } from "../http/cookies.ts";
import { HttpError } from "../http/errors.ts";
import { readSingleValueForm } from "../http/form.ts";
import { html } from "../http/html.ts";
import { LoginError } from "../login/index.ts";
import { ACCESS_JWT_HEADER, verifyAccessJwt } from "./access-jwt.ts";
import type { AdminBindings } from "./admin-request.ts";
import { adminAudit } from "./admin-request.ts";
import { mountAuditPages } from "./audit.page.ts";
import { mountBlockPages } from "./blocks.page.ts";
import { forbiddenPage, plainPage, signInPage } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import {
  CONSOLE_CALLBACK_PATH,
  CONSOLE_PATH,
  type ConsoleDeps,
  checkConsoleSession,
  checkConsoleToken,
  consoleAuthorizeUrl,
  consoleClientId,
  pkceChallenge,
  postIsFromConsole,
  randomToken,
  SESSION_COOKIE,
  SIGN_IN_COOKIE,
  SIGN_IN_TTL_SECONDS,
} from "./console-session.ts";

import { mountHealthPage } from "./health.page.ts";
import { overviewPage } from "./overview.page.ts";
import { mountPeoplePages } from "./people.page.ts";
import { mountTokenPage } from "./token.page.ts";

/** Console forms carry a subject, a reason and a CSRF token: a few KiB at most. */
export const MAX_CONSOLE_FORM_BYTES = 8_192;

const TokenAnswer = z.object({ access_token: z.string().min(1).max(2048), expires_in: z.number().int().positive() });

/** Whether a path is the console's (served here, by browser session) rather than the JSON API's (by bearer token). */
export function isConsolePath(pathname: string): boolean {
  return pathname === "/admin" || pathname === `${CONSOLE_PATH}` || pathname.startsWith(`${CONSOLE_PATH}/`);
}

/**
 * The admin console: server-rendered pages for people, on the same origin as the JSON API. Signing in goes
 * through the same upstream login as every MCP client, as a first-party OAuth client of this server: the
 * console's own authorization request (PKCE S256) is stored by the OAuth library, the person signs in
 * upstream, our shared callback checks their standing and issues a code to the console's callback, which
 * redeems it at the token endpoint with every guard of that endpoint. The session is that access token,
 * in a `__Host-` cookie; every page re-checks the person's standing and admin level in D1.
 */
export function createConsole(deps: ConsoleDeps) {
  const app = new Hono<ConsoleEnv>();
  const bindings = (env: Env): AdminBindings => ({
    DB: env.DB,
    AUDIT_LEDGER: env.AUDIT_LEDGER,
    MCP_SESSIONS: env.MCP_SESSIONS,
    ...(env.BRIDGE ? { BRIDGE: env.BRIDGE } : {}),
    OAUTH_PROVIDER: deps.oauth(env),
  });

  app.use("*", async (c, next) => {
    // With an Access application in front of /admin, the console needs its token too (as the JSON API does).
    const access = deps.config.adminAccess;
    if (access && !(await verifyAccessJwt(c.req.header(ACCESS_JWT_HEADER) ?? null, access))) {
      return plainPage(403, "Forbidden", html`<p>The console needs a Cloudflare Access sign-in.</p>`);
    }
    await next();
  });

  app.get(`${CONSOLE_PATH}/sign-in`, async (c) => {
    const oauth = deps.oauth(c.env);
    const { publicUrl } = deps.config;
    const clientId = await consoleClientId(oauth, c.env.OAUTH_KV, publicUrl);
    const state = randomToken();
    const verifier = randomToken();
    const request = await oauth.parseAuthRequest(
      new Request(consoleAuthorizeUrl(publicUrl, clientId, state, await pkceChallenge(verifier))),
    );
    const upstream = await deps.login.start().catch((cause: unknown) => {
      if (!(cause instanceof LoginError)) throw cause;
      throw new HttpError("upstream_unavailable", "The login provider cannot be reached right now; try again shortly", {
        cause,
      });
    });
    // No consent page: the client is this server's own console and the code comes back to this origin.
    // The state and the PKCE verifier stay in this browser, so a code sent to another browser is useless.
    const { state: upstreamState, headers } = await oauth.beginUpstream(request, { data: upstream.data });
    headers.append(
      "Set-Cookie",
      hostCookie(SIGN_IN_COOKIE, `${state}.${verifier}`, { maxAgeSeconds: SIGN_IN_TTL_SECONDS, sameSite: "Lax" }),
    );
    headers.set("Location", upstream.url(upstreamState));
    headers.set("Referrer-Policy", "no-referrer");
    return new Response(null, { status: 302, headers });
  });

  app.get(CONSOLE_CALLBACK_PATH, async (c) => {
    const url = new URL(c.req.url);
    const headers = new Headers({ "Set-Cookie": expiredHostCookie(SIGN_IN_COOKIE) });
    const [state, verifier] = (readCookie(c.req.raw, SIGN_IN_COOKIE) ?? "").split(".");
    const again = html`<p><a href="/admin/console/sign-in">Sign in again</a></p>`;
    // SECURITY: login CSRF. The code must come back to the browser that started this sign-in.
    if (!state || !verifier || url.searchParams.get("state") !== state) {
      return plainPage(
        400,
        "Sign-in stopped",
        html`<p>This sign-in was not started in this browser, or it took too long.</p>${again}`,
        headers,
      );
    }
    const error = url.searchParams.get("error");
    const code = url.searchParams.get("code");
    if (error || !code || url.searchParams.get("iss") !== deps.config.publicUrl) {
      const description = url.searchParams.get("error_description") ?? "The sign-in did not complete.";
      return plainPage(400, "Sign-in stopped", html`<p>${description.slice(0, 300)}</p>${again}`, headers);
    }
    const { publicUrl } = deps.config;
    const clientId = await consoleClientId(deps.oauth(c.env), c.env.OAUTH_KV, publicUrl);
    const answer = await deps.token(
      new Request(`${publicUrl}/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          client_id: clientId,
          redirect_uri: `${publicUrl}${CONSOLE_CALLBACK_PATH}`,
          code,
          code_verifier: verifier,
          resource: publicUrl,
        }),
      }),
      c.env,
      c.executionCtx as ExecutionContext,
    );
    const parsed = TokenAnswer.safeParse(await answer.json().catch(() => null));
    if (!answer.ok || !parsed.success) {
      // The token endpoint refused (a block or revocation since the sign-in, say) or is down.
      return plainPage(
        answer.status >= 500 ? 503 : 400,
        "Sign-in stopped",
        html`<p>The sign-in could not be completed (${String(answer.status)}).</p>${again}`,
        headers,
      );
    }
    const check = await checkConsoleToken(parsed.data.access_token, c.env, deps);
    if (check.kind === "not_admin") {
      // A grant that can never open the console is not kept around.
      await deps.oauth(c.env).revokeGrant(check.grantId, check.userId);
      await audit(c.env, check.context, { action: "admin:sign_in", decision: "deny", reason: "needs_admin" });
      console.info(JSON.stringify({ event: "console_sign_in", principal: check.principal, decision: "deny" }));
      return forbiddenPage(check.principal, headers);
    }
    if (check.kind === "none") {
      return plainPage(400, "Sign-in stopped", html`<p>The sign-in could not be completed.</p>${again}`, headers);
    }
    const { session } = check;
    await audit(c.env, session.admin, { action: "admin:sign_in", decision: "allow", reason: "granted" });
    console.info(JSON.stringify({ event: "console_sign_in", principal: session.props.principal, decision: "allow" }));
    // SameSite=Lax, not Strict: a sign-in through GitHub or Access ends in a redirect chain that began on
    // another site, where a Strict cookie would not be sent to the page it lands on. GET pages change
    // nothing; every change is a form post with the CSRF token and a same-origin check.
    headers.append(
      "Set-Cookie",
      hostCookie(SESSION_COOKIE, parsed.data.access_token, { maxAgeSeconds: parsed.data.expires_in, sameSite: "Lax" }),
    );
    headers.set("Location", "/admin");
    headers.set("Cache-Control", "no-store");
    return new Response(null, { status: 303, headers });
  });

  // Everything below needs an admin's session.
  const guard = createMiddleware<ConsoleEnv>(async (c, next) => {
    const check = await checkConsoleSession(c.req.raw, c.env, deps);
    if (check.kind === "none") {
      if (c.req.method === "GET" && new URL(c.req.url).pathname === "/admin") {
        const ended = readCookie(c.req.raw, SESSION_COOKIE) !== null;
        const headers = new Headers();
        if (ended) headers.append("Set-Cookie", expiredHostCookie(SESSION_COOKIE));
        return signInPage(deps.login.label, ended ? "Your console session has ended; sign in again." : null, headers);
      }
      return new Response(null, { status: 303, headers: { Location: "/admin", "Cache-Control": "no-store" } });
    }
    if (check.kind === "not_admin") {
      await audit(c.env, check.context, { action: "admin:request", decision: "deny", reason: "needs_admin" });
      return forbiddenPage(check.principal);
    }
    c.set("session", check.session);
    await next();
  });
  app.use("/admin", guard);
  app.use(`${CONSOLE_PATH}/*`, guard);
  // SECURITY: every console form post, whatever its path: bounded, from this origin, with the session's CSRF token.
  app.post(
    `${CONSOLE_PATH}/*`,
    bodyLimit({
      maxSize: MAX_CONSOLE_FORM_BYTES,
      onError: () => {
        throw new HttpError("payload_too_large", "The form is too large");
      },
    }),
    async (c, next) => {
      const form = await readSingleValueForm(c.req.raw.clone(), ["csrf"]);
      if (!postIsFromConsole(c.req.raw, c.get("session"), form.get("csrf"))) {
        throw new HttpError("forbidden", "This form must be sent from the console's own page; reload it and try again");
      }
      await next();
    },
  );

  app.get("/admin", async (c) => overviewPage(c.get("session"), c.env, deps));

  app.post(`${CONSOLE_PATH}/sign-out`, async (c) => {
    const session = c.get("session");
    await deps.oauth(c.env).revokeGrant(session.grantId, session.userId);
    const headers = new Headers({ "Set-Cookie": expiredHostCookie(SESSION_COOKIE) });
    return signInPage(deps.login.label, "Signed out. API tokens made in this session stop working too.", headers);
  });

  mountPeoplePages(app, deps);
  mountAuditPages(app, deps);
  mountBlockPages(app, bindings);
  mountHealthPage(app, deps);
  mountTokenPage(app, deps);

  app.all("*", () => plainPage(404, "Not found", html`<p>No such console page. <a href="/admin">Overview</a></p>`));

  app.onError((error, c) => {
    const headers = new Headers();
    if (error instanceof HttpError && error.status === 401) {
      // SECURITY: a blocked or revoked admin's session ends here, whatever page they asked for.
      headers.append("Set-Cookie", expiredHostCookie(SESSION_COOKIE));
      return plainPage(
        401,
        "Signed out",
        html`<p>${error.publicMessage}</p><p><a href="/admin">Console</a></p>`,
        headers,
      );
    }
    if (error instanceof HttpError) {
      if (error.retryAfterSeconds !== undefined) headers.set("Retry-After", String(error.retryAfterSeconds));
      return plainPage(error.status, "Something went wrong", html`<p>${error.publicMessage}</p>`, headers);
    }
    console.error(JSON.stringify({ event: "console_error", path: new URL(c.req.url).pathname, error: String(error) }));
    return plainPage(500, "Something went wrong", html`<p>Internal error.</p>`);
  });

  return app;
}

/** One admin audit row from the console (awaited: no row, no answer). */
export function audit(
  env: Env,
  admin: RequestContext,
  entry: Pick<AuditEntry, "action" | "decision" | "reason"> & Partial<Pick<AuditEntry, "subject" | "note">>,
): Promise<void> {
  return adminAudit(env, admin, entry);
}
