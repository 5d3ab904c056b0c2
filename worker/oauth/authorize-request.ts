import { HttpError } from "../http/errors.ts";

/** The authorization request's own parameters (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707). */
const OAUTH_PARAMS = [
  "response_type",
  "client_id",
  "redirect_uri",
  "scope",
  "state",
  "code_challenge",
  "code_challenge_method",
  "resource",
] as const;

/** A whole authorization query; real ones are well under 2 KiB (Workers cap URLs at 16 KiB). */
export const MAX_AUTHORIZE_QUERY_CHARS = 8_192;
/** One parameter's value: room for a CIMD client id URL or a generous `state`. */
export const MAX_AUTHORIZE_PARAM_CHARS = 2_048;

/**
 * Checks an authorization request's shape before the OAuth library sees it. Everything refused here is
 * rendered locally (400), never redirected: the redirect URI has not been validated yet.
 */
export function checkAuthorizeQuery(url: URL): void {
  if (url.search.length > MAX_AUTHORIZE_QUERY_CHARS) {
    throw new HttpError("bad_request", "The authorization request is too long");
  }
  for (const name of OAUTH_PARAMS) {
    const values = url.searchParams.getAll(name);
    // OAuth 2.1 §3.1: request parameters MUST NOT be included more than once. The library reads the
    // first value of each; refusing here keeps a second value from meaning anything anywhere.
    if (values.length > 1) throw new HttpError("bad_request", `The ${name} parameter is repeated`);
    if ((values[0]?.length ?? 0) > MAX_AUTHORIZE_PARAM_CHARS) {
      throw new HttpError("bad_request", `The ${name} parameter is too long`);
    }
  }
  const clientId = url.searchParams.get("client_id");
  if (clientId !== null && namesNonPublicHost(clientId)) {
    throw new HttpError("bad_request", "A client metadata document must be on a public host");
  }
}

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
