import { createWorker, type HatagoWorker } from "./app.ts";
import { type ConfigProblem, describeProblems, parseConfig } from "./config.ts";
import type { Env } from "./env.ts";
import { escapeHtml } from "./http/html.ts";
import { applyPageHeaders } from "./http/security-headers.ts";

/**
 * Start-up. A Worker has no start-up hook and its settings arrive with the first request, so the
 * configuration is parsed on the first request an isolate serves and the result kept for the isolate's
 * life (`env` carries the same settings for every request of one deployment).
 *
 * A bad configuration never becomes a 500 on the first login: every request, /health included, is
 * answered 503 with the settings at fault named (values never shown), and the problems are logged once.
 * We do not throw at module scope: a deployment would then fail with an opaque "script startup" error,
 * and the first deploy of a new environment (before its secrets are set) could not happen at all.
 */
const built = new WeakMap<object, HatagoWorker>();

export function workerFor(env: Env): HatagoWorker {
  const cached = built.get(env);
  if (cached) return cached;
  const parsed = parseConfig(env);
  let worker: HatagoWorker;
  if (parsed.ok) {
    for (const warning of parsed.warnings) console.warn(`config: ${warning}`);
    worker = createWorker(parsed.config);
  } else {
    console.error(`config: the Worker cannot start: ${describeProblems(parsed.problems)}`);
    worker = misconfiguredWorker(parsed.problems);
  }
  built.set(env, worker);
  return worker;
}

/** Answers every request with 503 and the problems, as JSON or (for a browser) HTML. */
export function misconfiguredWorker(problems: readonly ConfigProblem[]): HatagoWorker {
  const message = "Hatago Auth is not configured correctly; an operator must fix these settings.";
  return {
    async fetch(request) {
      if (request.headers.get("Accept")?.includes("text/html")) {
        const items = problems.map((p) => `<li><code>${escapeHtml(p.setting)}</code> ${escapeHtml(p.problem)}</li>`);
        const body = `<!doctype html><meta charset="utf-8"><title>Not configured</title><h1>Not configured</h1><p>${escapeHtml(message)}</p><ul>${items.join("")}</ul>`;
        return new Response(body, { status: 503, headers: applyPageHeaders(new Headers()) });
      }
      return Response.json(
        { error: "misconfigured", error_description: message, problems },
        { status: 503, headers: { "Cache-Control": "no-store" } },
      );
    },
  };
}
