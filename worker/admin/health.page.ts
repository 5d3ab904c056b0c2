import type { Hono } from "hono";
import { z } from "zod";
import type { Config } from "../config.ts";
import { database } from "../db/database.ts";
import { policyMeta } from "../db/policy.repository.ts";
import type { Env } from "../env.ts";
import { fetchBridgeHealth } from "../health.ts";
import { html, type SafeHtml } from "../http/html.ts";
import { adminAudit } from "./admin-request.ts";
import { consolePage } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import { CONSOLE_PATH, type ConsoleDeps } from "./console-session.ts";

const HEALTH_PATH = `${CONSOLE_PATH}/health` as const;
/** A key nobody writes: reading it proves KV answers without touching the OAuth library's records. */
const KV_PROBE_KEY = "hatago:health-probe";

/** `/health`'s public report (worker/health.ts), read back. */
const PublicHealth = z.object({
  ok: z.boolean(),
  environment: z.string(),
  login: z.string(),
  down: z.array(z.string()).optional(),
  parts: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string() }).loose()),
});

/** The bridge's own report, per child; each field optional, so a newer or older bridge still shows. */
const Child = z
  .object({
    label: z.string().optional(),
    state: z.string().optional(),
    phase: z.string().optional(),
    restarts: z.number().optional(),
    lastExit: z.unknown().optional(),
    lastError: z.string().nullable().optional(),
    parkedUntil: z.string().nullable().optional(),
    sessions: z.number().optional(),
    inFlight: z.number().optional(),
    droppedMessages: z.number().optional(),
  })
  .loose();
const BridgeDetail = z.object({
  servers: z.record(
    z.string(),
    z
      .object({
        isolation: z.string().optional(),
        available: z.boolean().optional(),
        running: z.number().optional(),
        restarts: z.number().optional(),
        inFlight: z.number().optional(),
        children: z.array(Child).optional(),
      })
      .loose(),
  ),
});

/**
 * `Health`: `/health`'s report, plus what only an admin sees: each server's child processes (state,
 * restarts, last exit and error, in flight, dropped messages), KV, the deployed policy against this
 * build's, and the login provider (its kind and issuer; never a secret).
 */
export function mountHealthPage(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get(HEALTH_PATH, async (c) => {
    const session = c.get("session");
    const [report, detail, kv, policy] = await Promise.all([
      deps
        .health(c.env)
        .then((r) => r.json())
        .then((j) => PublicHealth.safeParse(j)),
      bridgeDetail(deps.config, c.env),
      probeKv(c.env),
      policyState(c.env, deps.config),
    ]);
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "console:health",
    });
    const parts = report.success ? report.data.parts : {};
    const row = (name: string, ok: boolean, text: string) =>
      html`<tr><th scope="row">${name}</th><td>${ok ? html`<span class="tag up">up</span>` : html`<span class="tag down">down</span>`}</td><td>${text}</td></tr>`;
    return consolePage(
      session,
      HEALTH_PATH,
      "Health",
      html`<p>${
        report.success && report.data.ok
          ? html`<span class="tag up">ok</span> Every part answers.`
          : html`<span class="tag down">degraded</span> Down: ${report.success ? (report.data.down ?? []).join(", ") : "the report could not be read"}.`
      } <a href="/health">/health</a> is what monitors poll.</p>
<table>
<thead><tr><th scope="col">Part</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>
${Object.entries(parts).map(([name, p]) => row(name, p.ok, p.detail))}
${row("kv", kv.ok, kv.detail)}
${row("policy", policy.ok, policy.detail)}
</tbody>
</table>
<h2>Login</h2>
<p>${loginText(deps.config)}</p>
<h2>Servers</h2>
${detail}`,
    );
  });
}

function loginText(config: Config): SafeHtml {
  const login = config.login;
  switch (login.provider) {
    case "mock":
      return html`<strong>mock</strong> (development only; refused in production).`;
    case "github":
      return html`<strong>GitHub</strong>${login.orgAllowlist.length > 0 ? html`, organisations ${login.orgAllowlist.join(", ")}` : html`, any GitHub user`}.`;
    case "access":
      return html`<strong>Cloudflare Access</strong>, team <code>${login.teamDomain}</code>.`;
    case "oidc":
      return html`<strong>OpenID Connect</strong>, issuer <code>${login.issuer}</code>.`;
  }
}

async function probeKv(env: Env): Promise<{ ok: boolean; detail: string }> {
  try {
    await env.OAUTH_KV.get(KV_PROBE_KEY);
    return { ok: true, detail: "KV answers" };
  } catch {
    return { ok: false, detail: "KV is unreachable (sign-ins and token checks fail)" };
  }
}

/**
 * The deployed policy: seeded, for this environment, and its hash (compare it with the one
 * `npm run policy:diff` and the deploy print). The Worker does not compile `policies/` itself: a policy
 * change re-seeds D1 and must not redeploy the Worker (DESIGN.md), so it cannot know the repository's.
 */
async function policyState(env: Env, config: Config): Promise<{ ok: boolean; detail: string }> {
  const meta = await policyMeta(database(env.DB)).catch(() => null);
  if (meta === null) return { ok: false, detail: "the deployed policy cannot be read (D1)" };
  const hash = meta.get("hash");
  const environment = meta.get("environment");
  if (!hash) return { ok: false, detail: "no policy is seeded: everything is denied" };
  if (environment !== config.environment)
    return { ok: false, detail: `the seeded policy is "${environment}", this Worker is "${config.environment}"` };
  return { ok: true, detail: `"${environment}" ${hash.slice(0, 12)} is seeded` };
}

async function bridgeDetail(config: Config, env: Env): Promise<SafeHtml> {
  let parsed: z.infer<typeof BridgeDetail>;
  try {
    const response = await fetchBridgeHealth(config, env);
    if (response === null) return html`<p>No bridge is configured for this deployment.</p>`;
    const body = BridgeDetail.safeParse(await response.json().catch(() => null));
    if (!body.success)
      return html`<p class="error">The bridge answered ${String(response.status)} without its report.</p>`;
    parsed = body.data;
  } catch {
    return html`<p class="error">The bridge does not answer.</p>`;
  }
  const deployed = config.gateway.insecureDevBridgeUrl === null;
  return html`${deployed ? html`<p class="muted">Deployed, this is the bridge of the <code>health</code> container instance; each person's per-user container has its own.</p>` : html``}
${Object.entries(parsed.servers).map(
  ([id, s]) => html`<h3>${id}</h3>
<p>${s.available === false ? html`<span class="tag down">not available</span>` : html`<span class="tag up">available</span>`}
${s.isolation ?? ""}, ${String(s.running ?? 0)} running, ${String(s.restarts ?? 0)} restarts, ${String(s.inFlight ?? 0)} calls in flight.</p>
${
  (s.children ?? []).length === 0
    ? html`<p class="muted">No process started yet (each starts with its first session).</p>`
    : html`<table>
<thead><tr><th scope="col">Process</th><th scope="col">State</th><th scope="col">Restarts</th><th scope="col">Sessions</th><th scope="col">In flight</th><th scope="col">Dropped messages</th><th scope="col">Last exit</th><th scope="col">Last error</th></tr></thead>
<tbody>${(s.children ?? []).map(
        (ch) =>
          html`<tr><td><code>${ch.label ?? "?"}</code></td><td>${ch.state ?? "?"}${ch.phase ? html` <span class="muted">${ch.phase}</span>` : html``}</td><td>${String(ch.restarts ?? 0)}</td><td>${String(ch.sessions ?? 0)}</td><td>${String(ch.inFlight ?? 0)}</td><td>${String(ch.droppedMessages ?? 0)}</td><td>${exitText(ch.lastExit)}</td><td>${ch.lastError ?? ""}</td></tr>`,
      )}</tbody>
</table>`
}`,
)}`;
}

function exitText(exit: unknown): string {
  if (exit === null || exit === undefined) return "";
  if (typeof exit !== "object") return String(exit).slice(0, 200);
  const e = exit as Record<string, unknown>;
  const parts = [
    e.code !== undefined && e.code !== null ? `code ${String(e.code)}` : "",
    e.signal ? `signal ${String(e.signal)}` : "",
    typeof e.at === "string" ? e.at : "",
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(", ") : JSON.stringify(exit).slice(0, 200);
}
