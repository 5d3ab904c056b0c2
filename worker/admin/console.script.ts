import { CONSOLE_SCRIPT_PATH } from "../http/security-headers.ts";

export { CONSOLE_SCRIPT_PATH };

/**
 * The console's one script (CONSOLE_CSP allows exactly this same-origin file). It only makes times local:
 * every `<time datetime>` is shown in the browser's time zone (the UTC value stays in its tooltip), and
 * every filter form's hidden `tz` field gets that zone, so the times an admin types are read as local.
 * It reads nothing from the page but those attributes and writes only text, so nothing on the page
 * (a hostile name in the audit log, say) can become markup through it. Pages work without it.
 */
export const CONSOLE_SCRIPT = `"use strict";
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  for (const el of document.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.title = el.getAttribute("datetime");
    el.textContent = format.format(when);
  }
  for (const el of document.querySelectorAll("[data-zone]")) el.textContent = zone;
  for (const el of document.querySelectorAll("input[type=hidden][name=tz]")) if (!el.value) el.value = zone;
})();
`;

export function consoleScriptResponse(): Response {
  return new Response(CONSOLE_SCRIPT, {
    headers: {
      "Content-Type": "text/javascript; charset=utf-8",
      "Cache-Control": "public, max-age=3600",
      "X-Content-Type-Options": "nosniff",
    },
  });
}
