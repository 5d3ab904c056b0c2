import { Hono } from "hono";
import { z } from "zod";
import type { ConnectProviderConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { readSingleValueForm } from "../http/form.ts";
import { html } from "../http/html.ts";
import { pageResponse } from "../http/page.ts";
import { base64url, type TokenSet } from "./token-seal.ts";
import { ConnectUpstreamError } from "./upstream-client.ts";

/**
 * UNSAFE, local development and tests only: a mock upstream provider (HATAGO_CONNECT_<ID>_KIND=mock, refused
 * in production by worker/config.ts). Like the mock login, a form lets anyone say who they are upstream. It
 * issues real, expiring access tokens and rotating refresh tokens (KV, `connect-mock:`), checks PKCE and the
 * exact redirect URI, and answers `userinfo` for a bearer token, so `npm start` shows a server acting as
 * each person without any account anywhere.
 */
export const MOCK_UPSTREAM_PREFIX = "/connect/mock-upstream";
const KV_PREFIX = "connect-mock:";
const CODE_TTL_SECONDS = 120;
/** An hour, like most providers; KV needs at least 60 s. */
export const MOCK_ACCESS_TOKEN_TTL_SECONDS = 3_600;
const REFRESH_TTL_SECONDS = 30 * 86_400;
const NAME = /^[a-z0-9][a-z0-9._-]{0,38}$/;

const CodeRecord = z.object({ login: z.string(), challenge: z.string(), redirectUri: z.string(), scope: z.string() });
const TokenRecord = z.object({ login: z.string(), provider: z.string() });

async function hash(value: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value))));
}
const random = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

export function mockUpstreamRoutes(providers: readonly ConnectProviderConfig[], callbackUrlOf: (id: string) => string) {
  const app = new Hono<{ Bindings: Env }>();
  const mocks = new Map(providers.filter((p) => p.kind === "mock").map((p) => [p.id, p]));

  app.get(`${MOCK_UPSTREAM_PREFIX}/:id/authorize`, (c) => {
    const provider = mocks.get(c.req.param("id"));
    if (!provider) return c.notFound();
    const q = new URL(c.req.url).searchParams;
    const fields = ["state", "redirect_uri", "code_challenge", "scope"].map(
      (name) => html`<input type="hidden" name="${name}" value="${q.get(name) ?? ""}">`,
    );
    return pageResponse(
      200,
      `${provider.label}: sign in`,
      html`<h1>${provider.label}</h1>
<p class="warning">A mock upstream for local development: type any account name.</p>
<form method="post" class="stack">${fields}
<label for="login">Upstream account</label>
<input type="text" id="login" name="login" required pattern="[a-z0-9][a-z0-9._\\-]{0,38}">
<div class="actions"><button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></div>
</form>`,
    );
  });

  app.post(`${MOCK_UPSTREAM_PREFIX}/:id/authorize`, async (c) => {
    const provider = mocks.get(c.req.param("id"));
    if (!provider) return c.notFound();
    const form = await readSingleValueForm(c.req.raw, [
      "state",
      "redirect_uri",
      "code_challenge",
      "scope",
      "login",
      "decision",
    ]);
    const redirectUri = form.get("redirect_uri") ?? "";
    // Exact redirect URI: the mock sends codes only to our own callback for this provider.
    if (redirectUri !== callbackUrlOf(provider.id)) return c.text("redirect_uri mismatch", 400);
    const target = new URL(redirectUri);
    target.searchParams.set("state", form.get("state") ?? "");
    const login = form.get("login") ?? "";
    if (form.get("decision") !== "allow") {
      target.searchParams.set("error", "access_denied");
    } else {
      if (!NAME.test(login) || !form.get("code_challenge"))
        return c.text("a name and a PKCE challenge are needed", 400);
      const code = random();
      const record = {
        login,
        challenge: form.get("code_challenge") ?? "",
        redirectUri,
        scope: form.get("scope") ?? "",
      } satisfies z.infer<typeof CodeRecord>;
      await c.env.OAUTH_KV.put(`${KV_PREFIX}code:${await hash(code)}`, JSON.stringify(record), {
        expirationTtl: CODE_TTL_SECONDS,
      });
      target.searchParams.set("code", code);
    }
    return new Response(null, { status: 302, headers: { Location: target.toString(), "Cache-Control": "no-store" } });
  });

  app.get(`${MOCK_UPSTREAM_PREFIX}/:id/userinfo`, async (c) => {
    if (!mocks.has(c.req.param("id"))) return c.notFound();
    const token = /^Bearer (\S+)$/.exec(c.req.header("Authorization") ?? "")?.[1];
    const record = token
      ? TokenRecord.safeParse(await c.env.OAUTH_KV.get(`${KV_PREFIX}access:${await hash(token)}`, "json"))
      : null;
    if (!record?.success || record.data.provider !== c.req.param("id")) {
      return c.json({ error: "invalid_token" }, 401, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
    }
    return c.json({ login: record.data.login, sub: record.data.login });
  });
  return app;
}

async function issue(
  kv: KVNamespace,
  provider: string,
  login: string,
  scopes: string[],
  now: number,
): Promise<TokenSet> {
  const accessToken = `mock-at-${random()}`;
  const refreshToken = `mock-rt-${random()}`;
  const record = JSON.stringify({ login, provider } satisfies z.infer<typeof TokenRecord>);
  await kv.put(`${KV_PREFIX}access:${await hash(accessToken)}`, record, {
    expirationTtl: MOCK_ACCESS_TOKEN_TTL_SECONDS,
  });
  await kv.put(`${KV_PREFIX}refresh:${await hash(refreshToken)}`, JSON.stringify({ login, provider, scopes }), {
    expirationTtl: REFRESH_TTL_SECONDS,
  });
  return { accessToken, refreshToken, expiresAtMs: now + MOCK_ACCESS_TOKEN_TTL_SECONDS * 1000, scopes };
}

/** The mock's token endpoint, in-process: a single-use code, its PKCE verifier and the same redirect URI. */
export async function mockExchange(
  kv: KVNamespace,
  provider: string,
  code: string,
  verifier: string,
  redirectUri: string,
  now = Date.now(),
): Promise<TokenSet> {
  const key = `${KV_PREFIX}code:${await hash(code)}`;
  const record = CodeRecord.safeParse(await kv.get(key, "json"));
  await kv.delete(key);
  if (!record.success) throw new ConnectUpstreamError("refused", "the mock upstream does not know this code");
  if (record.data.redirectUri !== redirectUri || record.data.challenge !== (await hash(verifier))) {
    throw new ConnectUpstreamError("refused", "the mock upstream's PKCE or redirect URI check failed");
  }
  return issue(kv, provider, record.data.login, record.data.scope.split(" ").filter(Boolean), now);
}

/** Refresh-token rotation: the old refresh token stops working. */
export async function mockRefresh(
  kv: KVNamespace,
  provider: string,
  current: TokenSet,
  now = Date.now(),
): Promise<TokenSet> {
  if (current.refreshToken === null) throw new ConnectUpstreamError("refused", "no refresh token");
  const key = `${KV_PREFIX}refresh:${await hash(current.refreshToken)}`;
  const record = z
    .object({ login: z.string(), provider: z.string(), scopes: z.array(z.string()) })
    .safeParse(await kv.get(key, "json"));
  await kv.delete(key);
  if (!record.success || record.data.provider !== provider) {
    throw new ConnectUpstreamError("refused", "the mock upstream refused the refresh token");
  }
  return issue(kv, provider, record.data.login, record.data.scopes, now);
}
