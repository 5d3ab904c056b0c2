import { PROTECTED_RESOURCE_METADATA_PATH } from "../http/bearer.ts";

/**
 * "Every client finds us": the MCP endpoint's URL as a name of this server's protected resource.
 *
 * This Worker is ONE protected resource, its origin (provider-options.ts): one token covers `/api/`,
 * `/mcp`, `/sse` and `/admin/`. MCP clients, though, know only the endpoint they were given
 * (`https://host/mcp`) and may send it as the most specific resource indicator (MCP authorization,
 * "Resource Parameter Implementation"; RFC 8707 §2), and look for its metadata at the RFC 9728 §3.1
 * path-suffixed location before the root. The OAuth library knows only its configured resource, so it
 * would refuse `resource=https://host/mcp` ("must name exactly one configured protected resource") and
 * answer 404 at `/.well-known/oauth-protected-resource/mcp`.
 *
 * So, for exactly the endpoint's URL (no other path, no query, no fragment):
 * - `resource=<origin>/mcp` on `/authorize` and `/token` is rewritten to `<origin>` before the library
 *   reads it. RFC 8707 §2 lets the authorization server map a requested resource to the one it serves;
 *   the token's audience stays the origin, the resource the endpoint is part of, so the client gets no
 *   more than it would have asking for the origin. Any other value is passed on untouched (and refused
 *   by the library as before).
 * - `GET /.well-known/oauth-protected-resource/mcp` answers the library's own document with `resource`
 *   set to `<origin>/mcp`: RFC 9728 §3.3 requires the `resource` of a document to be the identifier its
 *   well-known URL was built from, and clients (the MCP SDKs) check it against the URL they use.
 */

/** The resource identifier a client may name for the MCP endpoint at `endpointPath` of `origin`. */
export function endpointResource(origin: string, endpointPath: string): string {
  return `${origin}${endpointPath}`;
}

/** RFC 9728 §3.1: the path-suffixed metadata location of the endpoint's resource identifier. */
export function endpointMetadataPath(endpointPath: string): string {
  return `${PROTECTED_RESOURCE_METADATA_PATH}${endpointPath}`;
}

/**
 * The request with its `resource` query parameter (GET /authorize) mapped from the endpoint's URL to the
 * origin; the same request when it names anything else. A repeated `resource` is left alone: the
 * library (and authorize-request.ts) refuse it.
 */
export function withOriginResourceInQuery(request: Request, origin: string, endpointPath: string): Request {
  const url = new URL(request.url);
  const values = url.searchParams.getAll("resource");
  if (values.length !== 1 || values[0] !== endpointResource(origin, endpointPath)) return request;
  url.searchParams.set("resource", origin);
  return new Request(url, request);
}

/**
 * The token request with its form's `resource` mapped the same way, given the form already read
 * (token-request.ts reads it once, capped). `null` when nothing is to change.
 */
export function withOriginResourceInForm(
  request: Request,
  form: URLSearchParams,
  origin: string,
  endpointPath: string,
): { readonly request: Request; readonly form: URLSearchParams } | null {
  const values = form.getAll("resource");
  if (values.length !== 1 || values[0] !== endpointResource(origin, endpointPath)) return null;
  const rewritten = new URLSearchParams(form);
  rewritten.set("resource", origin);
  const headers = new Headers(request.headers);
  headers.delete("content-length");
  return {
    request: new Request(request.url, { method: request.method, headers, body: rewritten.toString() }),
    form: rewritten,
  };
}

/**
 * The endpoint's protected resource metadata, from the library's document for the origin (`root`), so
 * the two never drift: same authorization servers, scopes and bearer methods; `resource` is the
 * endpoint's URL. The library's headers (CORS, content type) are kept.
 */
export async function endpointMetadataResponse(
  root: Response,
  origin: string,
  endpointPath: string,
  method: string,
): Promise<Response> {
  if (root.status !== 200) return root;
  const document: unknown = await root.json();
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new Error("the protected resource metadata is not a JSON object");
  }
  const headers = new Headers(root.headers);
  headers.delete("content-length");
  const body = JSON.stringify({ ...document, resource: endpointResource(origin, endpointPath) });
  return new Response(method === "HEAD" ? null : body, { status: 200, headers });
}
