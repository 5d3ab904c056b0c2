import type { ConsentDescription } from "@cloudflare/workers-oauth-provider";
import type { TokenLifetimes } from "../config.ts";
import { html } from "../http/html.ts";
import { pageResponse } from "../http/page.ts";

export interface ConsentView {
  readonly details: ConsentDescription;
  /** The consent transaction handle (the form's only hidden field); the OAuth library binds it to this browser. */
  readonly handle: string;
  /** The upstream login the person will be sent to after approving. */
  readonly loginLabel: string;
  readonly tokens: TokenLifetimes;
}

/**
 * The per-client consent page (MCP security best practices, confused deputy): who is asking, where the
 * tokens will go, and what the client will be able to do. Every value from the client (name, id, URIs)
 * is escaped by `html`; nothing from the client is loaded (no logo: it would be a third-party request).
 */
export function consentPage(view: ConsentView, headers: Headers): Response {
  const { details } = view;
  const who = details.clientDomain
    ? html`<p>Published by <strong>${details.clientDomain}</strong> (its client id is a document on that domain).</p>`
    : html`<p class="warning">This application registered itself: its name is its own claim and has not been verified.</p>`;
  const loopback = details.redirectIsLoopback
    ? html`<p class="warning"><strong>Access goes to an application on this computer.</strong> Continue only if you just started signing in from it.</p>`
    : html``;
  const renew =
    view.tokens.refreshTokenTtlSeconds > 0
      ? html` It can renew that access without asking you for up to ${duration(view.tokens.refreshTokenTtlSeconds)}.`
      : html``;
  return pageResponse(
    200,
    `Allow ${details.clientName}?`,
    html`<h1>Allow <strong>${details.clientName}</strong> to use MCP tools as you?</h1>
${who}
<div class="card">
<p>Access will be sent to <strong>${details.redirectHost}</strong>.</p>
${loopback}
<p>If you allow it, this application can call the MCP tools your roles permit, as you: what your roles
allow and nothing more, each call checked and recorded. Access lasts ${duration(view.tokens.accessTokenTtlSeconds)} at a time.${renew}</p>
<p class="muted">Client id: <code>${details.clientId}</code></p>
</div>
<p>Next, you will sign in with ${view.loginLabel}.</p>
<form method="post" action="/authorize">
<input type="hidden" name="handle" value="${view.handle}">
<div class="actions">
<button class="primary" type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>`,
    headers,
  );
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return plural(seconds / 86_400, "day");
  if (seconds % 3_600 === 0) return plural(seconds / 3_600, "hour");
  if (seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
