import type { Hono } from "hono";
import { HttpError } from "../http/errors.ts";
import { readSingleValueForm } from "../http/form.ts";
import { html } from "../http/html.ts";
import { adminAudit } from "./admin-request.ts";
import { consolePage, csrfField } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import { CONSOLE_PATH, type ConsoleDeps } from "./console-session.ts";
import { timeElement } from "./console-time.ts";

/** The lifetimes an API token can be given, in minutes: short, because it is a bearer token on a laptop. */
const TOKEN_MINUTES = [5, 15, 60] as const;
const DEFAULT_TOKEN_MINUTES = 15;

/**
 * `API token`: a short-lived bearer token for scripts that use the JSON API (`/admin/audit`, `/admin/block`…).
 * It is an access token of the admin's own console sign-in, made with the OAuth library's token exchange
 * (RFC 8693) and checked by the same standing rule as every token it issues: it never outlives the session,
 * it ends when the admin signs out (the grant is revoked), and a block of the admin stops it at once.
 */
export function mountTokenPage(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const path = `${CONSOLE_PATH}/token` as const;
  app.get(path, (c) => {
    const session = c.get("session");
    return consolePage(
      session,
      path,
      "API token",
      html`<p>Scripts use the JSON API under <code>/admin/</code> with a bearer token. This makes one from your
console session: it is yours (admin level, every request audited under your name), lasts a few minutes, and
stops working when you sign out or your session ends (${timeElement(session.expiresAtMs)}).</p>
<form method="post" action="${path}" class="stack">
${csrfField(session)}
<label for="minutes">Lifetime</label>
<select id="minutes" name="minutes">
${TOKEN_MINUTES.map((m) =>
  m === DEFAULT_TOKEN_MINUTES
    ? html`<option value="${String(m)}" selected>${String(m)} minutes</option>`
    : html`<option value="${String(m)}">${String(m)} minutes</option>`,
)}
</select>
<div class="actions"><button class="primary" type="submit">Make a token</button></div>
</form>`,
    );
  });

  app.post(path, async (c) => {
    const session = c.get("session");
    const form = await readSingleValueForm(c.req.raw, ["minutes"]);
    const minutes = Number(form.get("minutes"));
    const chosen = (TOKEN_MINUTES as readonly number[]).includes(minutes) ? minutes : DEFAULT_TOKEN_MINUTES;
    const made = await deps
      .oauth(c.env)
      .exchangeToken({ subjectToken: session.token, expiresIn: chosen * 60, aud: deps.config.publicUrl })
      .catch((cause: unknown) => {
        // The library refuses a session with under a minute left, or a grant revoked a moment ago.
        throw new HttpError("bad_request", "No token can be made from this session now; sign in again", { cause });
      });
    await adminAudit(c.env, session.admin, {
      action: "admin:token",
      decision: "allow",
      reason: "granted",
      note: `${Math.round(made.expires_in / 60)} minutes`,
    });
    const expires = Date.now() + made.expires_in * 1000;
    const base = deps.config.publicUrl;
    return consolePage(
      session,
      path,
      "API token",
      html`<p class="notice">Copy it now: it is shown once. It expires at ${timeElement(expires)}.</p>
<pre class="token" aria-label="API token">${made.access_token}</pre>
<h2>Use it</h2>
<pre class="token">export HATAGO_TOKEN='${made.access_token}'
curl -s -H "Authorization: Bearer $HATAGO_TOKEN" '${base}/admin/audit?limit=20'
curl -s -H "Authorization: Bearer $HATAGO_TOKEN" '${base}/admin/blocks'
curl -s -X POST -H "Authorization: Bearer $HATAGO_TOKEN" -H 'Content-Type: application/json' \\
  -d '{"subject":"github:583231","reason":"laptop stolen"}' '${base}/admin/block'</pre>
<p><a href="${path}">Make another</a></p>`,
    );
  });
}
