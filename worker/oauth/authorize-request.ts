import { HttpError } from "../http/errors.ts";
import { namesNonPublicHost } from "./cimd-guard.ts";

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
  // SECURITY: PKCE with S256 for every client, confidential ones included (OAuth 2.1 §7.5.1, MCP
  // authorization: clients MUST use PKCE). The library insists only for public clients.
  if (!url.searchParams.get("code_challenge")) throw new HttpError("bad_request", "code_challenge is required (PKCE)");
  if (url.searchParams.get("code_challenge_method") !== "S256") {
    throw new HttpError("bad_request", "code_challenge_method must be S256");
  }
  const clientId = url.searchParams.get("client_id");
  if (clientId !== null && namesNonPublicHost(clientId)) {
    throw new HttpError("bad_request", "A client metadata document must be on a public host");
  }
}
