import { html, type SafeHtml } from "../http/html.ts";
import { consolePageResponse } from "../http/page.ts";
import { CONSOLE_PATH, type ConsoleSession } from "./console-session.ts";

/** The console's sections, in the order of its navigation. */
const SECTIONS = [
  { path: "/admin", label: "Overview" },
  { path: `${CONSOLE_PATH}/people`, label: "People and access" },
  { path: `${CONSOLE_PATH}/audit`, label: "Audit log" },
  { path: `${CONSOLE_PATH}/blocks`, label: "Blocks" },
  { path: `${CONSOLE_PATH}/health`, label: "Health" },
  { path: `${CONSOLE_PATH}/token`, label: "API token" },
] as const;

export type Section = (typeof SECTIONS)[number]["path"];

/** A console page for a signed-in admin: navigation, who is signed in, sign-out (a CSRF-protected form). */
export function consolePage(
  session: ConsoleSession,
  current: Section,
  title: string,
  body: SafeHtml,
  status = 200,
  headers = new Headers(),
): Response {
  const links = SECTIONS.map((s) =>
    s.path === current
      ? html`<a href="${s.path}" aria-current="page"><strong>${s.label}</strong></a>`
      : html`<a href="${s.path}">${s.label}</a>`,
  );
  return consolePageResponse(
    status,
    title,
    html`<a class="skip" href="#main">Skip to content</a>
<header>
<nav class="console" aria-label="Console">
${links}
<form method="post" action="${CONSOLE_PATH}/sign-out">
${csrfField(session)}
<span class="muted">${session.props.displayName} (<code>${session.props.principal}</code>)</span>
<button type="submit">Sign out</button>
</form>
</nav>
</header>
<main id="main">
<h1>${title}</h1>
${body}
</main>`,
    headers,
  );
}

/** The hidden CSRF field every console form carries. */
export function csrfField(session: ConsoleSession): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${session.csrf}">`;
}

/** A page for someone who is not (or no longer) signed in to the console, or may not use it. */
export function plainPage(status: number, title: string, body: SafeHtml, headers = new Headers()): Response {
  return consolePageResponse(
    status,
    title,
    html`<main id="main">
<h1>${title}</h1>
${body}
</main>`,
    headers,
  );
}

export function signInPage(loginLabel: string, notice: string | null, headers = new Headers()): Response {
  return plainPage(
    200,
    "Hatago Auth console",
    html`${notice ? html`<p class="notice">${notice}</p>` : html``}
<p>The console shows who can use which MCP tool and why, the audit log, health and blocks. It needs the
admin level on every server (the policy's <code>admin</code> on <code>*</code>).</p>
<p><a href="${CONSOLE_PATH}/sign-in">Sign in with ${loginLabel}</a></p>
<p class="muted">Scripts use the JSON API under <code>/admin/</code> with a bearer token; after signing in,
<em>API token</em> makes a short-lived one.</p>`,
    headers,
  );
}

/** SECURITY: a signed-in person without the admin level gets this, and nothing of the console. */
export function forbiddenPage(principal: string, headers = new Headers()): Response {
  return plainPage(
    403,
    "Forbidden",
    html`<p>You are signed in as <code>${principal}</code>, which does not have the admin level. The console
is for administrators; ask one if you need to see something here.</p>`,
    headers,
  );
}
