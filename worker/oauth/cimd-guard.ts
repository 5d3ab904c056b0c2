import { tokenError } from "./token-request.ts";

/**
 * SECURITY: a Client ID Metadata Document URL makes this Worker fetch a URL the client chose (SSRF).
 * The `global_fetch_strictly_public` compatibility flag keeps those fetches on the public internet; this
 * check also refuses, before any fetch, a client id that names a loopback, private, link-local or
 * internal host literally. (A public name that resolves to a private address is the flag's job.)
 */
export function namesNonPublicHost(clientId: string): boolean {
  const url = URL.parse(clientId);
  if (url?.protocol !== "https:") return false; // not a CIMD client id: looked up in KV, never fetched
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || /\.(localhost|local|internal|home\.arpa)$/.test(host)) return true;
  if (host.startsWith("[")) return true; // IPv6 literals: no public MCP client publishes its metadata on one
  const v4 = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!v4) return /^[0-9.]+$/.test(host) || /^0x/.test(host); // other numeric spellings of an address
  const [a = 0, b = 0] = v4.slice(1, 3).map(Number);
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    a >= 224
  );
}

/**
 * The same check at the token endpoint, where the library would resolve a CIMD `client_id` too, on the
 * request's form (read once by token-guard.ts). Returns a refusal (the library's own error shape: 401
 * invalid_client) or null to let the library handle it.
 */
export function refuseNonPublicCimdClient(form: URLSearchParams): Response | null {
  if (form.getAll("client_id").some(namesNonPublicHost)) {
    return tokenError(401, "invalid_client", "Client authentication failed");
  }
  return null;
}
