import { base64url } from "../harness/oauth-client.ts";

/** RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must equal the challenge. Used by the fake upstreams. */
export async function s256Matches(verifier: string, challenge: string): Promise<boolean> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest)) === challenge;
}

export function basicCredentials(request: Request): { id: string; secret: string } | null {
  const header = request.headers.get("Authorization");
  if (!header?.startsWith("Basic ")) return null;
  const [id = "", secret = ""] = atob(header.slice(6)).split(":");
  return { id, secret };
}
