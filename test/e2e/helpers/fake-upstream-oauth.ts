import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/**
 * FakeUpstreamOAuth: a stand-in for a provider people connect (GitHub, Linear…) on 127.0.0.1. Its authorize page
 * is a form (the upstream account's name, Allow or Deny); it issues single-use codes bound to the PKCE challenge
 * and the redirect URI, random access tokens that expire, rotating refresh tokens, and answers `userinfo` for a
 * bearer token, recording every token presented there.
 */
export class FakeUpstreamOAuth {
  readonly codes = new Map<string, { login: string; challenge: string; redirectUri: string }>();
  readonly access = new Map<string, string>();
  readonly refresh = new Map<string, string>();
  /** Every access token presented at userinfo, with the login it belongs to (null: unknown). */
  readonly seen: { token: string; login: string | null }[] = [];
  /** Token requests that did not authenticate the client: none are expected. */
  readonly badClients: string[] = [];
  readonly #server: Server;
  readonly #port: number;
  /** Where it listens: `http://127.0.0.1:<port>`. */
  readonly url: string;

  constructor(port: number) {
    this.#port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
    });
  }

  /** A local stack's `connect` option (scripts/lib/local-stack.ts) with the `demo` provider pointed here. */
  stackConnect(): {
    readonly workerSettings: Readonly<Record<string, string>>;
    readonly userinfoUrl: string;
  } {
    return {
      workerSettings: {
        HATAGO_CONNECT_DEMO_KIND: "oauth2",
        HATAGO_CONNECT_DEMO_LABEL: "Fake upstream",
        HATAGO_CONNECT_DEMO_CLIENT_ID: "e2e-app",
        HATAGO_CONNECT_DEMO_CLIENT_SECRET: "e2e-fake-secret",
        HATAGO_CONNECT_DEMO_AUTHORIZATION_URL: `${this.url}/authorize`,
        HATAGO_CONNECT_DEMO_TOKEN_URL: `${this.url}/token`,
      },
      userinfoUrl: `${this.url}/userinfo`,
    };
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.#port, "127.0.0.1", resolve));
  }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** The access tokens issued to `login`, oldest first. */
  tokensOf(login: string): string[] {
    return [...this.access].filter(([, l]) => l === login).map(([t]) => t);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const body = await new Promise<string>((resolve) => {
      let text = "";
      req.on("data", (c: Buffer) => {
        text += c.toString("utf8");
      });
      req.on("end", () => resolve(text));
    });
    if (url.pathname === "/authorize" && req.method === "GET") {
      const q = url.searchParams;
      if (q.get("code_challenge_method") !== "S256" || !q.get("code_challenge") || q.get("client_id") !== "e2e-app") {
        return void res.writeHead(400).end("bad authorization request");
      }
      const hidden = ["state", "redirect_uri", "code_challenge"]
        .map((n) => `<input type="hidden" name="${n}" value="${escapeHtml(q.get(n) ?? "")}">`)
        .join("");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><html lang="en"><title>Fake upstream</title><h1>Fake upstream</h1>
<form method="post" action="/authorize">${hidden}<label>Upstream account <input name="login"></label>
<button name="decision" value="allow">Allow</button><button name="decision" value="deny">Deny</button></form></html>`);
      return;
    }
    if (url.pathname === "/authorize" && req.method === "POST") {
      const form = new URLSearchParams(body);
      const target = new URL(form.get("redirect_uri") ?? "");
      target.searchParams.set("state", form.get("state") ?? "");
      if (form.get("decision") === "allow") {
        const code = randomBytes(16).toString("base64url");
        this.codes.set(code, {
          login: form.get("login") ?? "",
          challenge: form.get("code_challenge") ?? "",
          redirectUri: form.get("redirect_uri") ?? "",
        });
        target.searchParams.set("code", code);
      } else {
        target.searchParams.set("error", "access_denied");
      }
      return void res.writeHead(302, { location: target.toString() }).end();
    }
    if (url.pathname === "/token" && req.method === "POST") {
      const form = new URLSearchParams(body);
      const basic = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
      const clientOk =
        basic === "e2e-app:e2e-fake-secret" ||
        (form.get("client_id") === "e2e-app" && form.get("client_secret") === "e2e-fake-secret");
      if (!clientOk) {
        this.badClients.push(basic);
        return json(res, 401, { error: "invalid_client" });
      }
      if (form.get("grant_type") === "authorization_code") {
        const code = this.codes.get(form.get("code") ?? "");
        this.codes.delete(form.get("code") ?? "");
        const challenge = createHash("sha256")
          .update(form.get("code_verifier") ?? "")
          .digest("base64url");
        if (!code || code.challenge !== challenge || code.redirectUri !== form.get("redirect_uri")) {
          return json(res, 400, { error: "invalid_grant" });
        }
        return this.#issue(res, code.login);
      }
      if (form.get("grant_type") === "refresh_token") {
        const login = this.refresh.get(form.get("refresh_token") ?? "");
        this.refresh.delete(form.get("refresh_token") ?? "");
        if (!login) return json(res, 400, { error: "invalid_grant" });
        return this.#issue(res, login);
      }
      return json(res, 400, { error: "unsupported_grant_type" });
    }
    if (url.pathname === "/userinfo") {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
      const login = this.access.get(token) ?? null;
      this.seen.push({ token, login });
      return login === null ? json(res, 401, { error: "invalid_token" }) : json(res, 200, { login });
    }
    res.writeHead(404).end();
  }

  #issue(res: ServerResponse, login: string): void {
    const accessToken = `fake-at-${randomBytes(24).toString("base64url")}`;
    const refreshToken = `fake-rt-${randomBytes(24).toString("base64url")}`;
    this.access.set(accessToken, login);
    this.refresh.set(refreshToken, login);
    json(res, 200, {
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: "bearer",
      expires_in: 3_600,
      scope: "profile",
    });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
