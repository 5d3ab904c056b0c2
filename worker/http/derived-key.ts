/**
 * An HMAC-SHA-256 key derived from a secret for one purpose (HKDF-SHA-256, empty salt, the purpose as
 * `info`): each use of a secret (the audit digest, MRTR request states, connect links) signs with a key of
 * its own, so a MAC made for one purpose never verifies for another, and the secret itself signs nothing.
 */
export async function derivedHmacKey(
  secret: string | Uint8Array,
  purpose: string,
  usages: readonly ("sign" | "verify")[] = ["sign"],
): Promise<CryptoKey> {
  const raw = typeof secret === "string" ? new TextEncoder().encode(secret) : new Uint8Array(secret);
  const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(purpose) },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    [...usages],
  );
}
