import type { HttpError } from "./errors.ts";
import { html, type SafeHtml } from "./html.ts";
import { applyPageHeaders, CONSOLE_CSP, CONSOLE_SCRIPT_PATH, STYLESHEET_PATH } from "./security-headers.ts";

/** The one stylesheet. Served from our own origin so the CSP needs no inline style. */
export const STYLESHEET = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { max-width: 36rem; margin: 3rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; }
.muted { opacity: 0.75; font-size: 0.9rem; }
.warning { border-left: 4px solid #d97706; padding: 0.25rem 0.75rem; }
.card { border: 1px solid #8884; border-radius: 8px; padding: 0.75rem 1rem; margin: 0.75rem 0; }
.actions { display: flex; gap: 0.75rem; margin-top: 1.5rem; }
button { font: inherit; padding: 0.5rem 1.25rem; border-radius: 6px; border: 1px solid #8886; cursor: pointer; }
button.primary { background: #2563eb; color: #fff; border-color: #2563eb; }
input[type=text] { font: inherit; width: 100%; box-sizing: border-box; padding: 0.3rem; }
code { word-break: break-all; }
body.wide { max-width: 76rem; margin-top: 1rem; }
.skip { position: absolute; left: -999px; }
.skip:focus { position: static; }
nav.console { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; border-bottom: 1px solid #8884; padding-bottom: 0.5rem; }
nav.console form { margin-left: auto; }
nav.console button { padding: 0.2rem 0.75rem; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #2563eb; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #8884; vertical-align: top; }
td code, td { overflow-wrap: anywhere; }
form.filters { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: end; margin: 1rem 0; }
form.filters label { display: flex; flex-direction: column; font-size: 0.85rem; }
form.filters input, form.filters select, form.stack input, form.stack textarea { font: inherit; padding: 0.25rem; }
form.stack label { display: block; margin: 0.75rem 0 0.25rem; }
form.stack input[type=text], form.stack textarea { width: 100%; box-sizing: border-box; }
.tag { display: inline-block; border-radius: 4px; padding: 0 0.4rem; font-size: 0.8rem; border: 1px solid #8886; }
.tag.deny, .tag.blocked, .tag.down { border-color: #b91c1c; color: #b91c1c; }
.tag.allow, .tag.up { border-color: #15803d; color: #15803d; }
.notice { border-left: 4px solid #2563eb; padding: 0.25rem 0.75rem; }
.error { border-left: 4px solid #b91c1c; padding: 0.25rem 0.75rem; }
button.danger { background: #b91c1c; color: #fff; border-color: #b91c1c; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
pre.token { white-space: pre-wrap; word-break: break-all; border: 1px solid #8884; padding: 0.5rem; }
svg.chart { width: 100%; height: auto; max-width: 60rem; }
svg.chart text { font: 11px system-ui, sans-serif; fill: currentColor; }
svg.chart .calls { fill: #2563eb; }
svg.chart .denials { fill: #d97706; }
svg.chart .errors { fill: #b91c1c; }
svg.chart line { stroke: #8888; }
.legend span { margin-right: 1rem; }
.legend .calls { color: #2563eb; } .legend .denials { color: #d97706; } .legend .errors { color: #b91c1c; }
`;

export function stylesheetResponse(): Response {
  return new Response(STYLESHEET, {
    headers: {
      "Content-Type": "text/css; charset=utf-8",
      "Cache-Control": "public, max-age=3600",
      "X-Content-Type-Options": "nosniff",
    },
  });
}

/** How a page is laid out: the sign-in pages are narrow and scriptless; the console is wide and has its one script. */
export interface LayoutOptions {
  readonly wide?: boolean;
  readonly script?: string;
}

export function layout(title: string, body: SafeHtml, options: LayoutOptions = {}): SafeHtml {
  const script = options.script ? html`\n<script src="${options.script}" defer></script>` : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · Hatago Auth</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">${script}
</head>
<body${options.wide ? html` class="wide"` : html``}>
${body}
</body>
</html>`;
}

/** An HTML page with the security headers. `headers` may carry cookies set by the OAuth library. */
export function pageResponse(status: number, title: string, body: SafeHtml, headers = new Headers()): Response {
  return new Response(layout(title, body).value, { status, headers: applyPageHeaders(headers) });
}

/** A console page: wide, with the console's script and its stricter policy (CONSOLE_CSP). */
export function consolePageResponse(status: number, title: string, body: SafeHtml, headers = new Headers()): Response {
  return new Response(layout(title, body, { wide: true, script: CONSOLE_SCRIPT_PATH }).value, {
    status,
    headers: applyPageHeaders(headers, CONSOLE_CSP),
  });
}

/** A local error page: shown instead of redirecting whenever the redirect target is not trusted. */
export function errorPage(error: HttpError, headers = new Headers()): Response {
  if (error.retryAfterSeconds !== undefined) headers.set("Retry-After", String(error.retryAfterSeconds));
  return pageResponse(
    error.status,
    "Sign-in stopped",
    html`<h1>Sign-in stopped</h1>
<p>${error.publicMessage}</p>
<p class="muted">Go back to the application you were signing in to and start again.</p>`,
    headers,
  );
}
