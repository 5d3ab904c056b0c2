import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import { z } from "zod";
import type { DiscoveryDocument } from "./discovery.ts";
import { LoginError } from "./errors.ts";

/** Asymmetric algorithms only: `none` and HMAC (keyed with the client secret) are never accepted. */
const ASYMMETRIC_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
/** Clock skew tolerated on `exp`/`iat`/`nbf` between us and the provider. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** Signing keys are cached this long, and an unknown `kid` refetches at most every 30 s (jose's cooldown). */
const JWKS_CACHE_MAX_AGE_MS = 600_000;
const JWKS_TIMEOUT_MS = 5_000;

/** The claims we read, narrowed after the signature and registered claims were verified. */
const Claims = z.object({
  sub: z.string().min(1).max(255),
  nonce: z.string(),
  email: z.string().max(254).optional(),
  email_verified: z.boolean().optional(),
  name: z.string().max(200).optional(),
  preferred_username: z.string().max(200).optional(),
});
export type IdTokenClaims = z.infer<typeof Claims> & { readonly raw: JWTPayload };

/**
 * Verifies ID tokens for one issuer and client (OpenID Connect Core §3.1.3.7) with jose: signature
 * against the issuer's JWKS (cached in memory), `iss`, `aud` (and `azp` when there are several
 * audiences), `exp`/`iat`, and the `nonce` we sent. arctic only decodes ID tokens; it never verifies.
 */
export class IdTokenVerifier {
  readonly #issuer: string;
  readonly #clientId: string;
  #jwks: { uri: string; keys: ReturnType<typeof createRemoteJWKSet> } | undefined;

  constructor(issuer: string, clientId: string) {
    this.#issuer = issuer;
    this.#clientId = clientId;
  }

  async verify(idToken: string, discovery: DiscoveryDocument, expectedNonce: string): Promise<IdTokenClaims> {
    const keys = this.#keys(discovery.jwks_uri);
    const advertised = discovery.id_token_signing_alg_values_supported;
    const algorithms = advertised ? ASYMMETRIC_ALGS.filter((a) => advertised.includes(a)) : ASYMMETRIC_ALGS;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, keys, {
        issuer: this.#issuer,
        audience: this.#clientId,
        algorithms,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["sub", "iat", "exp", "nonce"],
      }));
    } catch (cause) {
      throw classify(cause);
    }
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if ((audiences.length > 1 || payload.azp !== undefined) && payload.azp !== this.#clientId) {
      throw unverified("azp_mismatch");
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) {
      throw unverified("claims_malformed", claims.error);
    }
    // SECURITY: the nonce binds this ID token to the sign-in this browser started; a token minted for
    // another sign-in (replayed or injected) carries another nonce.
    if (claims.data.nonce !== expectedNonce) {
      throw unverified("nonce_mismatch");
    }
    return { ...claims.data, raw: payload };
  }

  #keys(uri: string): ReturnType<typeof createRemoteJWKSet> {
    if (this.#jwks?.uri !== uri) {
      this.#jwks = {
        uri,
        keys: createRemoteJWKSet(new URL(uri), {
          cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
          timeoutDuration: JWKS_TIMEOUT_MS,
        }),
      };
    }
    return this.#jwks.keys;
  }
}

/** A failure to fetch keys is an outage; every other failure means the token is not acceptable. */
function classify(cause: unknown): LoginError {
  const outage =
    !(cause instanceof errors.JOSEError) || cause instanceof errors.JWKSTimeout || cause.code === "ERR_JOSE_GENERIC";
  if (outage) {
    return new LoginError("unavailable", "The login provider's signing keys could not be fetched", {
      reason: "jwks_unavailable",
      cause,
    });
  }
  if (cause instanceof errors.JWTClaimValidationFailed)
    return unverified(`claim_${cause.claim}_${cause.reason}`, cause);
  return unverified(cause.code, cause);
}

function unverified(reason: string, cause?: unknown): LoginError {
  return new LoginError("unverified", "The sign-in could not be verified", { reason: `id_token: ${reason}`, cause });
}
