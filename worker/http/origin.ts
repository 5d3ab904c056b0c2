/**
 * SECURITY: the browser-origin rule of every protected endpoint (`/mcp`, `/sse`, `/api/`, `/admin/`):
 * DNS rebinding and cross-site requests (MCP transports: servers MUST validate Origin). A request with
 * no Origin (a non-browser client) passes; a browser request passes only from the gateway's own origin or
 * a configured one. A refused origin gets 403 and no CORS allowance.
 */
export function originGuard(allowedOrigins: readonly string[]): (request: Request) => boolean {
  const allowed = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  return function originAllowed(request: Request): boolean {
    const origin = request.headers.get("origin");
    return origin === null || allowed.has(origin.toLowerCase());
  };
}
