import type { FakeUpstream } from "../oauth/fakes/fake-network.ts";

/**
 * FakeUpstreamOAuth: a stand-in for a provider people connect (GitHub, Linear…), which cannot run here.
 * It issues real, single-use codes bound to a PKCE challenge and redirect URI, real access tokens that
 * expire, and rotating refresh tokens; `mode` makes its token endpoint fail (5xx), hang, or refuse refreshes.
 */
export const FAKE_UPSTREAM = "https://fake-upstream.test";

export class FakeUpstreamOAuth implements FakeUpstream {
  mode: "ok" | "5xx" | "hang" | "refuse_refresh" = "ok";
  expiresInSeconds = 3_600;
  readonly codes = new Map<string, { login: string; challenge: string; redirectUri: string; used: boolean }>();
  readonly access = new Map<string, { login: string; expiresAtMs: number }>();
  readonly refresh = new Map<string, string>();
  /** Every access token presented at userinfo. */
  readonly seen: string[] = [];
  #n = 0;

  handles(url: URL): boolean {
    return url.origin === FAKE_UPSTREAM;
  }

  /** What the person does at the upstream's consent page: approve as `login`. Returns the code. */
  async approve(
    authorizationUrl: string,
    login: string,
  ): Promise<{ code: string; state: string; redirectUri: string }> {
    const url = new URL(authorizationUrl);
    const challenge = url.searchParams.get("code_challenge") ?? "";
    const redirectUri = url.searchParams.get("redirect_uri") ?? "";
    if (url.searchParams.get("code_challenge_method") !== "S256" || !challenge) throw new Error("no PKCE");
    const code = `code-${++this.#n}`;
    this.codes.set(code, { login, challenge, redirectUri, used: false });
    return { code, state: url.searchParams.get("state") ?? "", redirectUri };
  }

  /** The issuer its discovery document names (another one: a confused or compromised document). */
  discoveryIssuer = FAKE_UPSTREAM;
  /** Discovery documents served (RFC 8414 / OpenID Connect Discovery §4). */
  discoveries = 0;

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/.well-known/openid-configuration")) {
      this.discoveries++;
      return Response.json({
        issuer: this.discoveryIssuer,
        authorization_endpoint: `${FAKE_UPSTREAM}/authorize`,
        token_endpoint: `${FAKE_UPSTREAM}/token`,
      });
    }
    if (url.pathname === "/userinfo") {
      const token = (request.headers.get("Authorization") ?? "").replace(/^Bearer /, "");
      this.seen.push(token);
      const record = this.access.get(token);
      if (!record || record.expiresAtMs < Date.now()) return Response.json({ error: "invalid_token" }, { status: 401 });
      return Response.json({ login: record.login });
    }
    if (url.pathname !== "/token" || request.method !== "POST") return new Response("not found", { status: 404 });
    if (this.mode === "5xx") return new Response("upstream broke", { status: 503 });
    if (this.mode === "hang") return new Promise<Response>(() => {});
    const form = new URLSearchParams(await request.text());
    if (form.get("grant_type") === "authorization_code") {
      const code = this.codes.get(form.get("code") ?? "");
      const verifier = form.get("code_verifier") ?? "";
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
      const challenge = btoa(String.fromCharCode(...digest))
        .replaceAll("+", "-")
        .replaceAll("/", "_")
        .replace(/=+$/, "");
      if (!code || code.used || code.challenge !== challenge || code.redirectUri !== form.get("redirect_uri")) {
        if (code) code.used = true;
        return Response.json({ error: "invalid_grant" }, { status: 400 });
      }
      code.used = true;
      return this.#issue(code.login);
    }
    if (form.get("grant_type") === "refresh_token") {
      const login = this.refresh.get(form.get("refresh_token") ?? "");
      this.refresh.delete(form.get("refresh_token") ?? "");
      if (!login || this.mode === "refuse_refresh") return Response.json({ error: "invalid_grant" }, { status: 400 });
      return this.#issue(login);
    }
    return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
  }

  #issue(login: string): Response {
    const accessToken = `fake-at-${login}-${++this.#n}`;
    const refreshToken = `fake-rt-${login}-${this.#n}`;
    this.access.set(accessToken, { login, expiresAtMs: Date.now() + this.expiresInSeconds * 1000 });
    this.refresh.set(refreshToken, login);
    return Response.json({
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: "bearer",
      expires_in: this.expiresInSeconds,
      scope: "profile",
    });
  }
}
