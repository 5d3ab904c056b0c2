import type { z } from "zod";

/**
 * Why an upstream sign-in failed after the browser came back to us. The authorization request is known
 * and validated by then, so each kind maps to an OAuth error redirect back to the MCP client:
 * - denied:      the person declined upstream, or is not allowed (an org allow-list) → access_denied
 * - unverified:  the upstream answer failed verification (ID token signature, iss, aud, exp, nonce) → access_denied
 * - unavailable: the provider could not be reached or answered nonsense → temporarily_unavailable
 */
export type LoginErrorKind = "denied" | "unverified" | "unavailable";

export class LoginError extends Error {
  readonly kind: LoginErrorKind;
  readonly publicMessage: string;
  /** Which check failed, for the log only: the client and the person see `publicMessage`. */
  readonly reason: string;

  constructor(kind: LoginErrorKind, publicMessage: string, options: { cause?: unknown; reason?: string } = {}) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LoginError";
    this.kind = kind;
    this.publicMessage = publicMessage;
    this.reason = options.reason ?? kind;
  }
}

/**
 * Reads the data a provider saved at `start()`. It comes back from our own storage, so a mismatch means
 * the sign-in began under another configuration (a provider change mid-flight): start again.
 */
export function savedData<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new LoginError("unavailable", "This sign-in began under another configuration; start again", {
      reason: "saved_data_mismatch",
    });
  }
  return parsed.data;
}
