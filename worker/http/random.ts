import { base64url } from "../../container/src/contract.ts";

/** Random tokens and PKCE (RFC 7636 S256) for our own OAuth clients (the console, /connect). */
export function randomToken(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function pkceChallenge(verifier: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

export { base64url };
