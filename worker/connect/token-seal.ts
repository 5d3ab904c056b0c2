import { z } from "zod";
import { base64url } from "../http/random.ts";

export { base64url };

/**
 * SECURITY: connection tokens at rest. Each row's token set is sealed with AES-256-GCM under one key of the
 * key ring (HATAGO_CONNECTION_KEYS, a Worker secret); the key id is stored beside the ciphertext so a new key
 * can be added in front and old rows still open. The additional authenticated data binds the row to its
 * (principal, provider): a ciphertext copied into another person's row, or under another provider, fails
 * authentication instead of handing that person someone else's upstream account.
 */

/** The upstream token set as we keep it (sealed). Never logged, never in an audit row or /health. */
export const TokenSet = z.object({
  accessToken: z.string().min(1).max(8_192),
  refreshToken: z.string().min(1).max(8_192).nullable(),
  /** Unix ms, or null when the upstream did not say. */
  expiresAtMs: z.number().int().nullable(),
  scopes: z.array(z.string().max(256)).max(100),
});
export type TokenSet = z.infer<typeof TokenSet>;

export interface SealingKey {
  readonly id: string;
  readonly key: CryptoKey;
}

/** The key ring: the first key seals; every key opens rows that name it. */
export interface KeyRing {
  readonly current: SealingKey;
  readonly byId: ReadonlyMap<string, SealingKey>;
}

/** 96-bit IVs, random per seal: the GCM recommendation (NIST SP 800-38D §8.2.2); far below 2^32 seals per key. */
const IV_BYTES = 12;

export async function importKeyRing(
  keys: readonly { readonly id: string; readonly raw: Uint8Array }[],
): Promise<KeyRing> {
  const imported: SealingKey[] = [];
  for (const { id, raw } of keys) {
    const key = await crypto.subtle.importKey("raw", new Uint8Array(raw), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    imported.push({ id, key });
  }
  const current = imported[0];
  if (!current) throw new Error("the connection key ring is empty");
  return { current, byId: new Map(imported.map((k) => [k.id, k])) };
}

function aad(principal: string, provider: string): Uint8Array<ArrayBuffer> {
  // Separated by NUL, which neither a principal (policies/subjects.ts) nor a provider id may contain.
  return new Uint8Array(new TextEncoder().encode(`hatago connection v1\u0000${principal}\u0000${provider}`));
}

export async function sealTokenSet(
  ring: KeyRing,
  principal: string,
  provider: string,
  tokens: TokenSet,
): Promise<{ keyId: string; sealed: string }> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const plaintext = new TextEncoder().encode(JSON.stringify(tokens));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: aad(principal, provider) },
      ring.current.key,
      plaintext,
    ),
  );
  const out = new Uint8Array(iv.byteLength + ciphertext.byteLength);
  out.set(iv, 0);
  out.set(ciphertext, iv.byteLength);
  return { keyId: ring.current.id, sealed: base64url(out) };
}

/** Opens a row; `null` when it does not authenticate for (principal, provider) or names an unknown key. */
export async function openTokenSet(
  ring: KeyRing,
  principal: string,
  provider: string,
  row: { readonly keyId: string; readonly sealed: string },
): Promise<TokenSet | null> {
  const key = ring.byId.get(row.keyId);
  if (!key) return null;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64url(row.sealed);
  } catch {
    return null;
  }
  if (bytes.byteLength <= IV_BYTES) return null;
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, IV_BYTES), additionalData: aad(principal, provider) },
      key.key,
      bytes.slice(IV_BYTES),
    );
  } catch {
    return null;
  }
  const parsed = TokenSet.safeParse(JSON.parse(new TextDecoder().decode(plaintext)));
  return parsed.success ? parsed.data : null;
}

export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A short, non-reversible fingerprint of a token (the bridge compares it to know when to restart). */
export async function tokenFingerprint(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`hatago fp v1\u0000${token}`));
  return base64url(new Uint8Array(digest)).slice(0, 22);
}
