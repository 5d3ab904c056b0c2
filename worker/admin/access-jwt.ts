import { createRemoteJWKSet, jwtVerify } from "jose";

/** The header Cloudflare Access adds to every request it lets through to the origin. */
export const ACCESS_JWT_HEADER = "Cf-Access-Jwt-Assertion";
/** Clock skew tolerated between Cloudflare's edge and the Worker. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** Access rotates its signing keys; jose refetches for an unknown `kid` (at most every 30 s). */
const CERTS_CACHE_MAX_AGE_MS = 600_000;
const CERTS_TIMEOUT_MS = 5_000;

const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/**
 * SECURITY: verifies the Access application token on an admin request: signature against the team's
 * published certificates (RS256 only), `iss` = the team domain, `aud` = the admin application's AUD tag,
 * `exp`. The edge already enforced the Access policy; this makes the Worker refuse a request that reached
 * it some other way (another route, a misconfigured hostname) without passing Access.
 */
export async function verifyAccessJwt(
  token: string | null,
  access: { teamDomain: string; aud: string },
): Promise<boolean> {
  if (!token || token.length > 8192) return false;
  const issuer = `https://${access.teamDomain}`;
  let keys = keySets.get(issuer);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(`${issuer}/cdn-cgi/access/certs`), {
      cacheMaxAge: CERTS_CACHE_MAX_AGE_MS,
      timeoutDuration: CERTS_TIMEOUT_MS,
    });
    keySets.set(issuer, keys);
  }
  try {
    await jwtVerify(token, keys, {
      issuer,
      audience: access.aud,
      algorithms: ["RS256"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["exp", "iat"],
    });
    return true;
  } catch {
    return false;
  }
}
