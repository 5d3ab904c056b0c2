import type { HttpError } from "./errors.ts";
import { html, type SafeHtml } from "./html.ts";
import { applyPageHeaders, STYLESHEET_PATH } from "./security-headers.ts";

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

export function layout(title: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · Hatago Auth</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
${body}
</body>
</html>`;
}

/** An HTML page with the security headers. `headers` may carry cookies set by the OAuth library. */
export function pageResponse(status: number, title: string, body: SafeHtml, headers = new Headers()): Response {
  return new Response(layout(title, body).value, { status, headers: applyPageHeaders(headers) });
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
