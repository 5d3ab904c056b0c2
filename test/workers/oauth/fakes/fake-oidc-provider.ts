import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import type { FakeUpstream } from "./fake-network.ts";
import { basicCredentials, s256Matches } from "./pkce-check.ts";

export interface FakeIdentity {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  groups?: unknown;
}

/** Ways to make the next ID token wrong, for the hostile tests. Each names the check it must trip. */
export interface IdTokenTampering {
  /** Sign with a key that is not in the JWKS (same `kid`). */
  foreignKey?: boolean;
  iss?: string;
  aud?: string | string[];
  azp?: string;
  /** Seconds from now; negative = already expired. */
  expiresIn?: number;
  /** Replace the nonce (e.g. with one from an earlier sign-in). */
  nonce?: string;
  alg?: "HS256";
}

interface Keys {
  readonly privateKey: CryptoKey;
  readonly foreignKey: CryptoKey;
  readonly jwk: JWK;
  readonly alg: string;
}
interface Endpoints {
  readonly authorization: string;
  readonly token: string;
  readonly jwks: string;
}

interface PendingCode {
  readonly redirectUri: string;
  readonly challenge: string;
  readonly nonce: string;
  readonly identity: FakeIdentity;
}

/**
 * FakeOidcProvider: an OpenID provider (discovery, authorization, token, JWKS) that signs real ID tokens
 * with a real key pair generated here, so the Worker's jose verification runs for real. It stands in for
 * Cloudflare Access (a SaaS OIDC app) and for generic providers (Okta, Auth0, …), which cannot run here.
 */
export class FakeOidcProvider implements FakeUpstream {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Who signs in at the next authorization. */
  identity: FakeIdentity = { sub: "user-1" };
  tampering: IdTokenTampering = {};
  /** The nonces the Worker sent, in order (to replay one). */
  readonly nonces: string[] = [];
  tokenRequests = 0;
  readonly #codes = new Map<string, PendingCode>();
  readonly #keys: Keys;
  readonly #endpoints: Endpoints;

  private constructor(issuer: string, clientId: string, clientSecret: string, keys: Keys, endpoints: Endpoints) {
    this.issuer = issuer;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.#keys = keys;
    this.#endpoints = endpoints;
  }

  /** `paths` places the endpoints under the issuer (Access: /authorization, /token, /jwks). */
  static async create(options: {
    issuer: string;
    clientId: string;
    clientSecret: string;
    alg?: "ES256" | "RS256";
    paths?: Endpoints;
  }): Promise<FakeOidcProvider> {
    const alg = options.alg ?? "ES256";
    const pair = await generateKeyPair(alg, { extractable: true });
    const foreign = await generateKeyPair(alg);
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "fake-key-1", alg, use: "sig" };
    const paths = options.paths ?? { authorization: "/authorize", token: "/token", jwks: "/jwks" };
    const base = options.issuer.replace(/\/$/, "");
    return new FakeOidcProvider(
      options.issuer,
      options.clientId,
      options.clientSecret,
      { privateKey: pair.privateKey, foreignKey: foreign.privateKey, jwk, alg },
      { authorization: base + paths.authorization, token: base + paths.token, jwks: base + paths.jwks },
    );
  }

  handles(url: URL): boolean {
    return url.href.startsWith(this.issuer.replace(/\/$/, ""));
  }

  /**
   * The browser at the provider's authorization endpoint: checks what a real provider checks, the person
   * signs in as `identity`, and the provider redirects to the callback. Returns that callback URL.
   */
  authorize(location: string, outcome: "signed-in" | "declined" = "signed-in"): string {
    const url = new URL(location);
    if (!url.href.startsWith(this.#endpoints.authorization))
      throw new Error(`FakeOidcProvider: not my endpoint: ${url.origin}${url.pathname}`);
    const q = url.searchParams;
    const redirectUri = q.get("redirect_uri") ?? "";
    if (q.get("client_id") !== this.clientId) throw new Error("FakeOidcProvider: unknown client_id");
    if (q.get("response_type") !== "code") throw new Error("FakeOidcProvider: response_type must be code");
    if (q.get("code_challenge_method") !== "S256") throw new Error("FakeOidcProvider: PKCE S256 expected");
    if (!q.get("scope")?.split(" ").includes("openid")) throw new Error("FakeOidcProvider: openid scope expected");
    const nonce = q.get("nonce");
    if (!nonce) throw new Error("FakeOidcProvider: nonce expected");
    this.nonces.push(nonce);
    const callback = new URL(redirectUri);
    callback.searchParams.set("state", q.get("state") ?? "");
    if (outcome === "declined") {
      callback.searchParams.set("error", "access_denied");
      return callback.toString();
    }
    const code = `fake-code-${crypto.randomUUID()}`;
    this.#codes.set(code, {
      redirectUri,
      challenge: q.get("code_challenge") ?? "",
      nonce,
      identity: { ...this.identity },
    });
    callback.searchParams.set("code", code);
    return callback.toString();
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const here = `${url.origin}${url.pathname}`;
    if (here === `${this.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`) {
      return Response.json({
        issuer: this.issuer,
        authorization_endpoint: this.#endpoints.authorization,
        token_endpoint: this.#endpoints.token,
        jwks_uri: this.#endpoints.jwks,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: [this.#keys.alg],
        code_challenge_methods_supported: ["S256"],
      });
    }
    if (here === this.#endpoints.jwks) return Response.json({ keys: [this.#keys.jwk] });
    if (here === this.#endpoints.token && request.method === "POST") return this.#token(request);
    return new Response("not found", { status: 404 });
  }

  async #token(request: Request): Promise<Response> {
    this.tokenRequests += 1;
    const client = basicCredentials(request);
    if (client?.id !== this.clientId || client.secret !== this.clientSecret) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
    const code = form.get("code") ?? "";
    const pending = this.#codes.get(code);
    this.#codes.delete(code);
    if (!pending || form.get("redirect_uri") !== pending.redirectUri)
      return Response.json({ error: "invalid_grant" }, { status: 400 });
    if (!(await s256Matches(form.get("code_verifier") ?? "", pending.challenge))) {
      return Response.json({ error: "invalid_grant", error_description: "PKCE" }, { status: 400 });
    }
    return Response.json({
      access_token: `fake-upstream-access-${crypto.randomUUID()}`,
      token_type: "Bearer",
      expires_in: 300,
      id_token: await this.#idToken(pending),
    });
  }

  async #idToken(pending: PendingCode): Promise<string> {
    const t = this.tampering;
    const now = Math.floor(Date.now() / 1000);
    const claims: JWTPayload = { ...pending.identity, nonce: t.nonce ?? pending.nonce };
    if (t.azp !== undefined) claims.azp = t.azp;
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: t.alg ?? this.#keys.alg, kid: "fake-key-1", typ: "JWT" })
      .setIssuer(t.iss ?? this.issuer)
      .setAudience(t.aud ?? this.clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + (t.expiresIn ?? 300));
    if (t.alg === "HS256") return jwt.sign(new TextEncoder().encode(this.clientSecret));
    return jwt.sign(t.foreignKey ? this.#keys.foreignKey : this.#keys.privateKey);
  }
}
