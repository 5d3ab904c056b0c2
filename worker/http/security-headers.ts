/** Where the pages' one stylesheet is served from (style-src 'self': no inline style, no hash to keep in sync). */
export const STYLESHEET_PATH = "/static/hatago.css";

/**
 * SECURITY: headers on every HTML page. No script runs at all (default-src 'none' covers script-src);
 * the pages cannot be framed (RFC 9700 §4.16); nothing is cached or leaks a Referer to another origin.
 *
 * There is deliberately no `form-action`: browsers apply it to the redirects that follow a form post,
 * and our forms legitimately end in redirects to the login provider and then to the MCP client's
 * redirect URI, whose origins are not known when the page is rendered.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Where the console's one script is served from (worker/admin/console.script.ts). */
export const CONSOLE_SCRIPT_PATH = "/static/console.js";

/**
 * SECURITY: the admin console's pages. The sign-in pages' policy, plus:
 * - `script-src 'self'`: one same-origin file that only rewrites `<time>` elements into the browser's
 *   local time (the server cannot know the admin's time zone). No inline script, no eval; everything
 *   else this origin serves is HTML, JSON or CSV with `nosniff`, which browsers refuse to run as script.
 *   Every page works without it (times are then shown in UTC, labelled so).
 * - `form-action 'self'`: every console form posts to this origin and is answered here (the sign-in
 *   pages cannot have it, see above).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function applyPageHeaders(headers: Headers, csp: string = PAGE_CSP): Headers {
  headers.set("Content-Type", "text/html; charset=utf-8");
  headers.set("Content-Security-Policy", csp);
  headers.set("X-Frame-Options", "DENY");
  headers.set("X-Content-Type-Options", "nosniff");
  // SECURITY: `same-origin`, not `no-referrer`: no Referer ever leaves for another site, but under
  // `no-referrer` browsers send `Origin: null` on our own forms (Fetch, "serialize a request origin"),
  // and the consent form's same-origin check then refused every real browser (found by the Chromium test).
  headers.set("Referrer-Policy", "same-origin");
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cache-Control", "no-store");
  return headers;
}

/** Headers for redirects we send during sign-in: never cached, never leak our URL as a Referer. */
export function applyRedirectHeaders(headers: Headers, location: string): Headers {
  headers.set("Location", location);
  headers.set("Cache-Control", "no-store");
  headers.set("Referrer-Policy", "no-referrer");
  return headers;
}
