import type { FakeUpstream } from "./fake-network.ts";
import { basicCredentials, s256Matches } from "./pkce-check.ts";

export interface FakeGitHubUser {
  id: number;
  login: string;
  name?: string | null;
  emails: { email: string; verified: boolean; primary: boolean }[];
  orgs: string[];
  /** `org/team-slug` */
  teams: string[];
}

interface PendingCode {
  readonly redirectUri: string;
  readonly challenge: string;
  readonly user: FakeGitHubUser;
}

/**
 * FakeGitHub: github.com's OAuth endpoints and the four REST calls the login makes, with GitHub's own
 * quirks (a bad code is HTTP 200 with an `error` member; the API wants a User-Agent). It cannot run here.
 */
export class FakeGitHub implements FakeUpstream {
  readonly clientId: string;
  readonly clientSecret: string;
  user: FakeGitHubUser = { id: 583231, login: "Octo-Cat", emails: [], orgs: [], teams: [] };
  /** Answer the REST API with this status (to simulate an outage). */
  apiStatus = 200;
  readonly #codes = new Map<string, PendingCode>();
  readonly #tokens = new Map<string, FakeGitHubUser>();

  constructor(clientId = "gh-client-id", clientSecret = "gh-client-secret") {
    this.clientId = clientId;
    this.clientSecret = clientSecret;
  }

  handles(url: URL): boolean {
    return url.host === "github.com" || url.host === "api.github.com";
  }

  /** The browser at github.com/login/oauth/authorize: the person approves the OAuth app. Returns the callback URL. */
  authorize(location: string, outcome: "approved" | "declined" = "approved"): string {
    const url = new URL(location);
    if (`${url.origin}${url.pathname}` !== "https://github.com/login/oauth/authorize")
      throw new Error(`FakeGitHub: not the authorize endpoint: ${location}`);
    const q = url.searchParams;
    if (q.get("client_id") !== this.clientId) throw new Error("FakeGitHub: unknown client_id");
    if (q.get("code_challenge_method") !== "S256" || !q.get("code_challenge"))
      throw new Error("FakeGitHub: PKCE S256 expected");
    const scopes = q.get("scope")?.split(" ") ?? [];
    for (const needed of ["read:user", "user:email", "read:org"]) {
      if (!scopes.includes(needed)) throw new Error(`FakeGitHub: scope ${needed} expected`);
    }
    const callback = new URL(q.get("redirect_uri") ?? "");
    callback.searchParams.set("state", q.get("state") ?? "");
    if (outcome === "declined") {
      callback.searchParams.set("error", "access_denied");
      return callback.toString();
    }
    const code = crypto.randomUUID().replaceAll("-", "");
    this.#codes.set(code, {
      redirectUri: callback.origin + callback.pathname,
      challenge: q.get("code_challenge") ?? "",
      user: this.user,
    });
    callback.searchParams.set("code", code);
    return callback.toString();
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.host === "github.com" && url.pathname === "/login/oauth/access_token" && request.method === "POST") {
      return this.#token(request);
    }
    if (url.host === "api.github.com") return this.#api(request, url);
    return new Response("not found", { status: 404 });
  }

  async #token(request: Request): Promise<Response> {
    const client = basicCredentials(request);
    if (client?.id !== this.clientId || client.secret !== this.clientSecret) {
      return Response.json({ error: "incorrect_client_credentials" });
    }
    const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
    const code = form.get("code") ?? "";
    const pending = this.#codes.get(code);
    this.#codes.delete(code);
    // GitHub's quirk: errors are HTTP 200 with an `error` member.
    if (!pending || form.get("redirect_uri") !== pending.redirectUri)
      return Response.json({ error: "bad_verification_code" });
    if (!(await s256Matches(form.get("code_verifier") ?? "", pending.challenge))) {
      return Response.json({ error: "bad_verification_code", error_description: "PKCE" });
    }
    const token = `gho_fake_${crypto.randomUUID().replaceAll("-", "")}`;
    this.#tokens.set(token, pending.user);
    return Response.json({ access_token: token, token_type: "bearer", scope: "read:org,read:user,user:email" });
  }

  #api(request: Request, url: URL): Response {
    if (!request.headers.get("User-Agent")) return new Response("User-Agent required", { status: 403 });
    const user = this.#tokens.get(request.headers.get("Authorization")?.replace(/^Bearer /, "") ?? "");
    if (!user) return Response.json({ message: "Bad credentials" }, { status: 401 });
    if (this.apiStatus !== 200) return Response.json({ message: "unavailable" }, { status: this.apiStatus });
    switch (url.pathname) {
      case "/user":
        return Response.json({ id: user.id, login: user.login, name: user.name ?? null, type: "User" });
      case "/user/emails":
        return Response.json(user.emails.map((e) => ({ ...e, visibility: null })));
      case "/user/orgs":
        return Response.json(user.orgs.map((login, i) => ({ login, id: 1000 + i })));
      case "/user/teams":
        return Response.json(
          user.teams.map((t) => {
            const [org = "", slug = ""] = t.split("/");
            return { slug, name: slug, organization: { login: org } };
          }),
        );
      default:
        return Response.json({ message: "Not Found" }, { status: 404 });
    }
  }
}
