import { auditSummarySince } from "../db/audit-log.repository.ts";
import { blockCount } from "../db/blocks.repository.ts";
import { database } from "../db/database.ts";
import { policyMeta } from "../db/policy.repository.ts";
import type { Env } from "../env.ts";
import { html } from "../http/html.ts";
import { adminAudit } from "./admin-request.ts";
import { consolePage } from "./console.layout.ts";
import { CONSOLE_PATH, type ConsoleDeps, type ConsoleSession } from "./console-session.ts";
import { timeElement } from "./console-time.ts";

/** The overview covers the last day: what an operator checks first. */
const OVERVIEW_WINDOW_MS = 86_400_000;

/** `/admin`: who is signed in, the policy in force, the last day in numbers, and where to go next. */
export async function overviewPage(session: ConsoleSession, env: Env, deps: ConsoleDeps): Promise<Response> {
  const db = database(env.DB);
  const since = Date.now() - OVERVIEW_WINDOW_MS;
  const [day, blocked, meta] = await Promise.all([auditSummarySince(db, since), blockCount(db), policyMeta(db)]);
  await adminAudit(env, session.admin, {
    action: "admin:read",
    decision: "allow",
    reason: "granted",
    note: "console:overview",
  });
  const policyHash = meta.get("hash") ?? "none seeded";
  return consolePage(
    session,
    "/admin",
    "Overview",
    html`<p>Signed in as <strong>${session.props.displayName}</strong> (<code>${session.props.principal}</code>)
with ${deps.login.label}; this session ends at ${timeElement(session.expiresAtMs)}.</p>
<div class="card">
<p>MCP endpoint to give a client: <code>${deps.config.publicUrl}/mcp</code></p>
<p>Environment <code>${deps.config.environment}</code>, policy <code>${policyHash.slice(0, 12)}</code>.</p>
</div>
<h2>The last 24 hours</h2>
<ul>
<li>${String(day?.rows ?? 0)} audit rows, ${String(day?.denials ?? 0)} denials, ${String(day?.errors ?? 0)} errors
(<a href="${CONSOLE_PATH}/audit">audit log</a>)</li>
<li>${String(blocked)} ${blocked === 1 ? "subject" : "subjects"} blocked (<a href="${CONSOLE_PATH}/blocks">blocks</a>)</li>
</ul>
<p><a href="${CONSOLE_PATH}/people">Find a person</a> to see what they can use and why,
<a href="${CONSOLE_PATH}/health">health</a> for the servers and storage,
<a href="${CONSOLE_PATH}/token">an API token</a> for scripts.</p>`,
  );
}
