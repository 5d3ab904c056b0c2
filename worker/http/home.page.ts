import { html } from "./html.ts";
import { pageResponse } from "./page.ts";

/**
 * `/`: what this is, the URL to give an MCP client, and where to look next. Public, like `/health`:
 * it names no person, policy or secret.
 */
export function homePage(publicUrl: string, options: { connections: boolean }): Response {
  const mcp = `${publicUrl}/mcp`;
  return pageResponse(
    200,
    "MCP gateway",
    html`<main>
<h1>Hatago Auth</h1>
<p>This is an MCP gateway: it puts stdio MCP servers behind OAuth 2.1, with per-person, per-tool permissions.</p>
<div class="card">
<p>Give your MCP client this URL (Streamable HTTP; it will walk you through signing in):</p>
<p><code>${mcp}</code></p>
<p class="muted">Legacy HTTP+SSE clients: <code>${publicUrl}/sse</code></p>
</div>
<ul>
<li><a href="/admin">Admin console</a> (admins only)</li>
${options.connections ? html`<li><a href="/connect">Your connected accounts</a></li>` : html``}
<li><a href="/health">Health</a> (JSON)</li>
</ul>
</main>`,
  );
}
