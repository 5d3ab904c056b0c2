/**
 * Our own cookies (the OAuth library sets its own for consent and upstream state). Every one is a
 * `__Host-` cookie: the browser accepts it only with `Secure`, `Path=/` and no `Domain`, so no other host
 * (a sibling subdomain, a plain-HTTP page) can set or overwrite it (RFC 6265bis §4.1.3.2).
 */

/** Cookie names are fixed by us; values are base64url or `.`-joined base64url, so nothing needs quoting. */
const COOKIE_VALUE = /^[A-Za-z0-9._~%:-]{1,4096}$/;

export interface HostCookieOptions {
  readonly maxAgeSeconds: number;
  /**
   * `Lax` where the cookie must arrive at the end of a sign-in that passed through another site (the
   * upstream login's redirect chain); `Strict` anywhere else.
   */
  readonly sameSite: "Strict" | "Lax";
}

export function hostCookie(name: `__Host-${string}`, value: string, options: HostCookieOptions): string {
  if (!COOKIE_VALUE.test(value)) throw new RangeError(`cookie ${name}: value has characters a cookie cannot carry`);
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=${options.sameSite}; Max-Age=${options.maxAgeSeconds}`;
}

/** Deletes a cookie set by `hostCookie` (same name and attributes, expired). */
export function expiredHostCookie(name: `__Host-${string}`): string {
  return `${name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`;
}

/**
 * The value of one cookie of a request, or `null`. A name sent twice is refused (`null`): a second cookie
 * of the same name can only come from somewhere that is not us.
 */
export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("Cookie");
  if (!header) return null;
  let found: string | null = null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    if (found !== null) return null;
    found = part.slice(eq + 1).trim();
  }
  return found !== null && COOKIE_VALUE.test(found) ? found : null;
}
