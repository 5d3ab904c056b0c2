/** The public origin of the Worker under test (wrangler.jsonc's HATAGO_PUBLIC_URL). */
export const ORIGIN = "http://127.0.0.1:8787";
export const REDIRECT_URI = "https://client.example/callback";

export type Send = (request: Request) => Promise<Response>;

export interface Pkce {
  readonly verifier: string;
  readonly challenge: string;
}

export async function pkce(): Promise<Pkce> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))),
  );
  return { verifier, challenge };
}

export function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  resource?: string;
}

/**
 * An OAuth client as an MCP client drives it: dynamic registration, PKCE S256, the authorization URL,
 * and the token endpoint (code, refresh, revocation). Every call returns the raw Response too.
 */
export class OAuthTestClient {
  readonly clientId: string;
  readonly redirectUri: string;
  /** The authorization server (and resource) this client talks to. */
  readonly origin: string;
  /** Set for a confidential client (client_secret_basic). */
  readonly clientSecret: string | undefined;
  readonly #send: Send;

  constructor(send: Send, clientId: string, redirectUri: string, origin = ORIGIN, clientSecret?: string) {
    this.#send = send;
    this.clientId = clientId;
    this.redirectUri = redirectUri;
    this.origin = origin;
    this.clientSecret = clientSecret;
  }

  static async register(
    send: Send,
    metadata: { client_name?: string; redirect_uris?: string[]; token_endpoint_auth_method?: string } = {},
    origin = ORIGIN,
  ): Promise<OAuthTestClient> {
    const body = {
      client_name: "Test MCP client",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      ...metadata,
    };
    const response = await send(
      new Request(`${origin}/register`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" },
      }),
    );
    if (response.status !== 201) throw new Error(`register: ${response.status} ${await response.text()}`);
    const json = (await response.json()) as { client_id: string; client_secret?: string };
    return new OAuthTestClient(send, json.client_id, body.redirect_uris[0] ?? REDIRECT_URI, origin, json.client_secret);
  }

  authorizeUrl(p: Pkce, overrides: Record<string, string | null> = {}): string {
    const params: Record<string, string | null> = {
      response_type: "code",
      client_id: this.clientId,
      redirect_uri: this.redirectUri,
      code_challenge: p.challenge,
      code_challenge_method: "S256",
      state: "client-state-123",
      scope: "mcp",
      resource: this.origin,
      ...overrides,
    };
    const url = new URL(`${this.origin}/authorize`);
    for (const [name, value] of Object.entries(params)) if (value !== null) url.searchParams.set(name, value);
    return url.toString();
  }

  tokenRequest(fields: Record<string, string>, headers: HeadersInit = {}): Promise<Response> {
    const auth: Record<string, string> = this.clientSecret
      ? { Authorization: `Basic ${btoa(`${this.clientId}:${this.clientSecret}`)}` }
      : {};
    return this.#send(
      new Request(`${this.origin}/token`, {
        method: "POST",
        body: new URLSearchParams(fields).toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...auth, ...headers },
      }),
    );
  }

  exchange(code: string, verifier: string, extra: Record<string, string> = {}): Promise<Response> {
    return this.tokenRequest({
      grant_type: "authorization_code",
      code,
      redirect_uri: this.redirectUri,
      client_id: this.clientId,
      code_verifier: verifier,
      resource: this.origin,
      ...extra,
    });
  }

  refresh(refreshToken: string): Promise<Response> {
    return this.tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: this.clientId });
  }

  revoke(token: string): Promise<Response> {
    return this.tokenRequest({ token, client_id: this.clientId });
  }

  whoami(accessToken: string): Promise<Response> {
    return this.#send(
      new Request(`${this.origin}/api/whoami`, { headers: { Authorization: `Bearer ${accessToken}` } }),
    );
  }
}
