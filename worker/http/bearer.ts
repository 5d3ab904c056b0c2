/**
 * 401 answers of protected endpoints (RFC 6750 §3, RFC 9728 §5.1). Every 401 this Worker sends, whoever
 * sends it, carries `WWW-Authenticate: Bearer` with the protected resource metadata URL (so an MCP client
 * can discover where to sign in again), `error=` where one applies, and a short JSON body (an empty body
 * showed as a blank error in older MCP Inspector versions).
 */

/** RFC 9728: the metadata of a resource at an origin's root. */
export const PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

export function resourceMetadataUrl(requestUrl: string): string {
  return `${new URL(requestUrl).origin}${PROTECTED_RESOURCE_METADATA_PATH}`;
}

/** The challenge header's value. Quotes and backslashes cannot appear in our own descriptions; drop them anyway. */
export function bearerChallenge(
  requestUrl: string,
  error?: "invalid_token" | "invalid_request",
  description?: string,
): string {
  const quoted = (v: string) => v.replace(/["\\\r\n]/g, "");
  let header = 'Bearer realm="OAuth"';
  if (error) header += `, error="${error}"`;
  if (error && description) header += `, error_description="${quoted(description)}"`;
  return `${header}, resource_metadata="${resourceMetadataUrl(requestUrl)}"`;
}

/** A complete 401 with an OAuth-style JSON body, for /api/ and /admin/. */
export function unauthorizedResponse(requestUrl: string, description: string): Response {
  return Response.json(
    { error: "invalid_token", error_description: description },
    {
      status: 401,
      headers: {
        "WWW-Authenticate": bearerChallenge(requestUrl, "invalid_token", description),
        "Cache-Control": "no-store",
      },
    },
  );
}
