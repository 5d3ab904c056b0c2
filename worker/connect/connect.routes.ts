import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { catalog, connectionOf, serversUsingProvider } from "../../policies/catalog.ts";
import { writeAuditRow } from "../audit/audit.ts";
import { auditLog } from "../audit/ledger.ts";
import type { ConnectProviderConfig } from "../config.ts";
import { deleteConnection, listConnections, saveConnection } from "../db/connections.repository.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { expiredHostCookie, hostCookie, readCookie } from "../http/cookies.ts";
import { HttpError } from "../http/errors.ts";
import { readSingleValueForm } from "../http/form.ts";
import { html, type SafeHtml } from "../http/html.ts";
import { pageResponse } from "../http/page.ts";
import { subjectsOf } from "../oauth/props.ts";
import type { ConnectRuntime } from "./connect.runtime.ts";
import { ELICITATION_PARAM } from "./elicit.ts";
import { evictFromBridge } from "./evict.ts";
import { mockUpstreamRoutes } from "./mock-upstream.ts";
import {
  CONNECT_SESSION_CALLBACK_PATH,
  CONNECT_SIGN_IN_PATH,
  finishSignIn,
  type PersonSession,
  type PersonSessionDeps,
  personSession,
  safeNext,
  startSignIn,
} from "./person-session.ts";
import { providerClient } from "./provider-client.ts";
import { base64url } from "./token-seal.ts";
import { ConnectUpstreamError } from "./upstream-client.ts";

export const CONNECT_PATH = "/connect";
/** The upstream authorization in progress: `state` in this browser's cookie; its record in KV, single use. */
const STATE_COOKIE = "__Host-hatago-connect-state";
const STATE_KV_PREFIX = "connect-state:";
/** As long as the login's upstream state (a person reads the upstream's consent page). */
const STATE_TTL_SECONDS = 600;
const MAX_FORM_BYTES = 4_096;

const StateRecord = z.object({
  principal: z.string(),
  provider: z.string(),
  verifier: z.string(),
  scopes: z.array(z.string()),
});

/** The scopes a provider is asked for: the union of what its servers declare. */
export function scopesFor(provider: string): string[] {
  return [...new Set(serversUsingProvider(provider).flatMap((s) => connectionOf(s)?.scopes ?? []))].sort();
}

async function stateKey(state: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(state));
  return `${STATE_KV_PREFIX}${base64url(new Uint8Array(digest))}`;
}

function page(status: number, title: string, body: SafeHtml, headers = new Headers()): Response {
  headers.set("Cache-Control", "no-store");
  return pageResponse(status, title, html`<h1>${title}</h1>${body}`, headers);
}

const back = html`<p><a href="${CONNECT_PATH}">Your connections</a></p>`;

/**
 * `/connect`: a person's own upstream accounts (issue 17). Pages for people; nothing here is an MCP endpoint
 * and no token ever appears on a page, in a log line or in an audit row.
 */
export function createConnectRoutes(runtime: ConnectRuntime, deps: PersonSessionDeps) {
  const app = new Hono<{ Bindings: Env }>();
  const { providers } = runtime.config;
  const byId = new Map(providers.map((p) => [p.id, p]));
  const ids = providers.map((p) => p.id);
  const limit = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new HttpError("payload_too_large", "The form is too large");
    },
  });

  app.route(
    "/",
    mockUpstreamRoutes(providers, (id) => `${deps.publicUrl}/connect/${id}/callback`),
  );

  app.get(CONNECT_SIGN_IN_PATH, (c) => startSignIn(c.env, deps, safeNext(c.req.query("next") ?? null, ids)));
  app.get(CONNECT_SESSION_CALLBACK_PATH, (c) =>
    finishSignIn(c.req.raw, c.env, c.executionCtx as ExecutionContext, deps),
  );

  const signInPage = (next: string) =>
    page(
      200,
      "Sign in to manage your connections",
      html`<p>Connections let the servers of this gateway act as you upstream, with your own account.</p>
<p><a href="${CONNECT_SIGN_IN_PATH}?next=${encodeURIComponent(next)}">Sign in with ${deps.login.label}</a></p>`,
    );

  app.get(CONNECT_PATH, async (c) => {
    const session = await personSession(c.req.raw, c.env, deps);
    if (!session) return signInPage(CONNECT_PATH);
    const connected = new Map(
      (await listConnections(database(c.env.DB), session.props.principal)).map((r) => [r.provider, r]),
    );
    const cards = providers.map((p) => {
      const row = connected.get(p.id);
      const servers = serversUsingProvider(p.id).join(", ") || "(no server uses it)";
      return row
        ? html`<div class="card"><strong>${p.label}</strong>: <span class="tag allow">connected</span>
<p class="muted">Used by: ${servers}. Scopes: ${row.scopes.join(" ") || "(none)"}. Since ${new Date(row.connectedAtMs).toISOString()}.</p>
<form method="post" action="${CONNECT_PATH}/${p.id}/disconnect"><input type="hidden" name="csrf" value="${session.csrf}">
<button class="danger" type="submit">Disconnect</button></form></div>`
        : html`<div class="card"><strong>${p.label}</strong>: <span class="tag">not connected</span>
<p class="muted">Used by: ${servers}.</p><p><a href="${CONNECT_PATH}/${p.id}">Connect</a></p></div>`;
    });
    return page(
      200,
      "Your connections",
      html`<p>Signed in as ${session.props.displayName} (<code>${session.props.principal}</code>).</p>${cards}`,
    );
  });

  const provider = (id: string): ConnectProviderConfig => {
    const found = byId.get(id);
    if (!found) throw new HttpError("bad_request", "There is no such provider to connect.");
    return found;
  };
  const requireSession = async (request: Request, env: Env, next: string): Promise<PersonSession | Response> =>
    (await personSession(request, env, deps)) ?? signInPage(next);

  app.get(`${CONNECT_PATH}/:provider`, async (c) => {
    const p = provider(c.req.param("provider"));
    const link = c.req.query(ELICITATION_PARAM) ?? null;
    const here = link === null ? `${CONNECT_PATH}/${p.id}` : `${CONNECT_PATH}/${p.id}?${ELICITATION_PARAM}=${link}`;
    const session = await requireSession(c.req.raw, c.env, here);
    if (session instanceof Response) return session;
    // SECURITY: a link a tool call handed out (elicit.ts) connects only the person it was made for: one passed
    // on to someone else (phishing, MCP 2025-11-25 elicitation §Phishing) stops here, before any upstream.
    if ((await runtime.links.checkLink(link, session.props.principal, p.id)) === "not_ours") {
      return page(
        403,
        "This link is not yours",
        html`<p>This connect link was made for another account's tool call. Nothing was connected.</p>
<p>To connect your own ${p.label} account, open <a href="${CONNECT_PATH}/${p.id}">${CONNECT_PATH}/${p.id}</a>.</p>`,
      );
    }
    const servers = serversUsingProvider(p.id).map(
      (s) =>
        html`<li><strong>${catalog[s].title}</strong> (<code>${s}</code>): scopes ${(connectionOf(s)?.scopes ?? []).join(" ")}</li>`,
    );
    return page(
      200,
      `Connect your ${p.label} account`,
      html`<p>These servers will act as <strong>you</strong> (<code>${session.props.principal}</code>) with your ${p.label} account, only in your own processes:</p>
<ul>${servers}</ul>
<p class="muted">The token is stored encrypted, never shown to any MCP client, and deleted when you disconnect.</p>
<form method="post" action="${CONNECT_PATH}/${p.id}"><input type="hidden" name="csrf" value="${session.csrf}">
<div class="actions"><button class="primary" type="submit">Continue to ${p.label}</button></div></form>${back}`,
    );
  });

  app.post(`${CONNECT_PATH}/:provider`, limit, async (c) => {
    const p = provider(c.req.param("provider"));
    const session = await personSession(c.req.raw, c.env, deps);
    const form = await readSingleValueForm(c.req.raw, ["csrf"]);
    if (!session || !postIsOurs(c.req.raw, session, form.get("csrf"))) {
      throw new HttpError("forbidden", "This form did not come from your connections page; open it again.");
    }
    const state = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const scopes = scopesFor(p.id);
    let location: string;
    try {
      location = await providerClient(p, deps.publicUrl, c.env.OAUTH_KV).authorizationUrl(state, verifier, scopes);
    } catch (cause) {
      // A provider named by its issuer whose discovery document cannot be read: nothing started.
      if (!(cause instanceof ConnectUpstreamError)) throw cause;
      console.warn(JSON.stringify({ event: "connect_discovery_failed", provider: p.id, error: cause.message }));
      return page(502, "Not connected", html`<p>${p.label} could not be reached; try again shortly.</p>${back}`);
    }
    const record = { principal: session.props.principal, provider: p.id, verifier, scopes } satisfies z.infer<
      typeof StateRecord
    >;
    await c.env.OAUTH_KV.put(await stateKey(state), JSON.stringify(record), { expirationTtl: STATE_TTL_SECONDS });
    const headers = new Headers({
      // SECURITY: the state is bound to this browser: the callback needs this cookie to carry the same value.
      "Set-Cookie": hostCookie(STATE_COOKIE, state, { maxAgeSeconds: STATE_TTL_SECONDS, sameSite: "Lax" }),
      Location: location,
      "Referrer-Policy": "no-referrer",
      "Cache-Control": "no-store",
    });
    return new Response(null, { status: 303, headers });
  });

  app.get(`${CONNECT_PATH}/:provider/callback`, async (c) => {
    const p = provider(c.req.param("provider"));
    const url = new URL(c.req.url);
    const headers = new Headers({ "Set-Cookie": expiredHostCookie(STATE_COOKIE) });
    const state = url.searchParams.get("state");
    // SECURITY: the state must come back to the browser that started this connection (CSRF, RFC 9700 §4.7).
    if (!state || readCookie(c.req.raw, STATE_COOKIE) !== state) {
      return page(
        400,
        "Connection stopped",
        html`<p>This connection was not started in this browser, or it took too long.</p>${back}`,
        headers,
      );
    }
    // SECURITY: single use. The record is deleted before anything else happens with it.
    const key = await stateKey(state);
    const stored = StateRecord.safeParse(await c.env.OAUTH_KV.get(key, "json"));
    await c.env.OAUTH_KV.delete(key);
    if (!stored.success) {
      return page(
        400,
        "Connection stopped",
        html`<p>This connection link was already used or has expired; start again.</p>${back}`,
        headers,
      );
    }
    const record = stored.data;
    const session = await personSession(c.req.raw, c.env, deps);
    // SECURITY: mix-up and session swap: the provider of this path, and the person who started it.
    if (record.provider !== p.id || session?.props.principal !== record.principal) {
      return page(
        400,
        "Connection stopped",
        html`<p>This connection was started for another account or provider; start again.</p>${back}`,
        headers,
      );
    }
    const error = url.searchParams.get("error");
    if (error !== null) {
      const declined = error === "access_denied";
      return page(
        declined ? 403 : 502,
        "Not connected",
        declined
          ? html`<p>You declined at ${p.label}. Nothing was stored.</p>${back}`
          : html`<p>${p.label} answered with an error (<code>${error.slice(0, 64)}</code>). Nothing was stored.</p>${back}`,
        headers,
      );
    }
    const code = url.searchParams.get("code");
    if (!code) return page(400, "Not connected", html`<p>${p.label} sent no authorization code.</p>${back}`, headers);
    let tokens: Awaited<ReturnType<ReturnType<typeof providerClient>["exchange"]>>;
    try {
      tokens = await providerClient(p, deps.publicUrl, c.env.OAUTH_KV).exchange(code, record.verifier, record.scopes);
    } catch (cause) {
      if (!(cause instanceof ConnectUpstreamError)) throw cause;
      console.warn(JSON.stringify({ event: "connect_failed", provider: p.id, kind: cause.kind, error: cause.message }));
      return page(
        cause.kind === "refused" ? 400 : 502,
        "Not connected",
        cause.kind === "refused"
          ? html`<p>${p.label} did not accept this authorization (it may have been used already). Nothing was stored.</p>${back}`
          : html`<p>${p.label} could not be reached or failed; try again shortly. Nothing was stored.</p>${back}`,
        headers,
      );
    }
    const db = database(c.env.DB);
    await saveConnection(db, await runtime.keys(), {
      principal: record.principal,
      provider: p.id,
      subjects: subjectsOf(session.props),
      tokens,
    });
    await writeAuditRow(
      auditLog(c.env),
      { principal: record.principal, clientId: null, sessionId: null, policyHash: null },
      { action: "connection:connect", server: null, tool: null, decision: "allow", reason: "connected", subject: p.id },
    );
    // A process that ran without a token (or with an older account) gets this one at its next call.
    const servers = serversUsingProvider(p.id);
    return page(
      200,
      `Connected to ${p.label}`,
      html`<p>Your ${p.label} account is connected. ${servers.join(", ")} will act as you from your next call.</p>
<p>You can go back to your application now.</p>${back}`,
      headers,
    );
  });

  app.post(`${CONNECT_PATH}/:provider/disconnect`, limit, async (c) => {
    const p = provider(c.req.param("provider"));
    const session = await personSession(c.req.raw, c.env, deps);
    const form = await readSingleValueForm(c.req.raw, ["csrf"]);
    if (!session || !postIsOurs(c.req.raw, session, form.get("csrf"))) {
      throw new HttpError("forbidden", "This form did not come from your connections page; open it again.");
    }
    const db = database(c.env.DB);
    const principal = session.props.principal;
    if (await deleteConnection(db, principal, p.id)) {
      await writeAuditRow(
        auditLog(c.env),
        { principal, clientId: null, sessionId: null, policyHash: null },
        {
          action: "connection:disconnect",
          server: null,
          tool: null,
          decision: "allow",
          reason: "by_person",
          subject: p.id,
        },
      );
      await evictFromBridge(runtime.bridge, c.env.BRIDGE, [{ principal, provider: p.id }]);
    }
    return new Response(null, { status: 303, headers: { Location: CONNECT_PATH, "Cache-Control": "no-store" } });
  });

  return app;
}

/** SECURITY: a form post of a connections page: same origin (when the browser says), and the session's CSRF value. */
function postIsOurs(request: Request, session: PersonSession, sent: string | undefined): boolean {
  const origin = request.headers.get("Origin");
  if (origin !== null && origin !== new URL(request.url).origin) return false;
  const site = request.headers.get("Sec-Fetch-Site");
  if (site !== null && site !== "same-origin") return false;
  if (sent === undefined || sent.length !== session.csrf.length) return false;
  let diff = 0;
  for (let i = 0; i < sent.length; i++) diff |= sent.charCodeAt(i) ^ session.csrf.charCodeAt(i);
  return diff === 0;
}
