import { z } from "zod";

/**
 * What we read of the OAuth library's own storage, in one place: the grant record it keeps in KV under
 * `grant:<userId>:<grantId>` (migrations/STORAGE.md, KV). We never write it; the library does. Checked
 * against workers-oauth-provider at this version (a test fails when the installed one differs, and
 * another walks the real flow and checks every field below, so a change of shape fails a test instead of
 * silently disabling the checks that rely on it: token-guard.ts).
 */
export const GRANT_RECORD_CHECKED_WITH = "1.2.3";

/** Workers KV refuses longer keys (it would throw, not miss). */
const MAX_KV_KEY_BYTES = 512;

export const GrantRecord = z.looseObject({
  /** The grant id (the middle part of its codes and tokens). */
  id: z.string().min(1),
  /** The user id: for us, the percent-encoded principal (props.ts, grantUserId). */
  userId: z.string().min(1),
  /** The client the grant was issued to. */
  clientId: z.string().min(1),
  /** SHA-256 hex of the authorization code; kept after the code is redeemed. */
  authCodeId: z.string().optional(),
  /** SHA-256 hex of the current refresh token, once the code is redeemed. */
  refreshTokenId: z.string().optional(),
  /**
   * SHA-256 hex of the refresh token the last refresh rotated out. The library still accepts it (a grace
   * for a lost response); token-guard.ts treats it as reuse instead.
   */
  previousRefreshTokenId: z.string().optional(),
});
export type GrantRecord = z.infer<typeof GrantRecord>;

/** The grant a code or token names: the library issues them as `<userId>:<grantId>:<secret>`. */
export interface GrantRef {
  readonly userId: string;
  readonly grantId: string;
}

/**
 * The grant a presented code or token names, split exactly as the library splits both (three parts), or
 * null when it cannot be one of the library's (the library refuses it itself).
 */
export function grantRefOf(codeOrToken: string): GrantRef | null {
  const parts = codeOrToken.split(":");
  if (parts.length !== 3) return null;
  const [userId = "", grantId = "", secret = ""] = parts;
  if (!userId || !grantId || !secret) return null;
  return { userId, grantId };
}

/**
 * Whether a grant could be stored under this reference at all. Workers KV throws on a key longer than
 * MAX_KV_KEY_BYTES (it does not answer "not found"), so a longer one names no grant; the library, which
 * reads it unchecked, would answer 500.
 */
export function grantKeyFits(ref: GrantRef): boolean {
  return new TextEncoder().encode(grantKey(ref)).byteLength <= MAX_KV_KEY_BYTES;
}

/**
 * Whether the library's key for a token of this grant fits KV (`token:<user>:<grant>:<64 hex>`): RFC 7009
 * revocation looks a token up by it, and a key over KV's limit is a 500 from the library.
 */
export function tokenKeyFits(ref: GrantRef): boolean {
  return (
    new TextEncoder().encode(`token:${ref.userId}:${ref.grantId}:${"0".repeat(64)}`).byteLength <= MAX_KV_KEY_BYTES
  );
}

function grantKey(ref: GrantRef): string {
  return `grant:${ref.userId}:${ref.grantId}`;
}

/**
 * SHA-256 hex of a code or token: exactly the library's `generateTokenId` (and `hashSecret`), which is
 * what it stores as `authCodeId`, `refreshTokenId` and `previousRefreshTokenId`.
 */
export async function secretId(codeOrToken: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(codeOrToken));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The record does not have the shape this code was written against: refuse rather than guess. */
export class GrantRecordShapeError extends Error {
  override readonly name = "GrantRecordShapeError";
}

/**
 * Reads a grant record, or null when there is none (never issued, expired or revoked). Throws
 * GrantRecordShapeError when a record exists but is not what GrantRecord describes, or names another
 * grant than its key.
 */
export async function readGrantRecord(kv: KVNamespace, ref: GrantRef): Promise<GrantRecord | null> {
  if (!grantKeyFits(ref)) return null;
  const raw = await kv.get(grantKey(ref), { type: "json" });
  if (raw === null) return null;
  const parsed = GrantRecord.safeParse(raw);
  if (!parsed.success) {
    throw new GrantRecordShapeError(
      `grant record does not match workers-oauth-provider ${GRANT_RECORD_CHECKED_WITH}: ${parsed.error.issues
        .map((issue) => issue.path.join("."))
        .join(", ")}`,
    );
  }
  if (parsed.data.id !== ref.grantId || parsed.data.userId !== ref.userId) {
    throw new GrantRecordShapeError("grant record names another grant than its key");
  }
  return parsed.data;
}
