import type { Hono } from "hono";
import { z } from "zod";
import { isGroupSubject, subjectKind } from "../../policies/subjects.ts";
import { blockOf } from "../db/blocks.repository.ts";
import { database } from "../db/database.ts";
import { MAX_SUBJECTS } from "../db/grants.repository.ts";
import { latestSessionOf } from "../db/sessions.repository.ts";
import { html, type SafeHtml } from "../http/html.ts";
import { adminAudit } from "./admin-request.ts";
import { consolePage } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import { CONSOLE_PATH, type ConsoleDeps } from "./console-session.ts";
import { timeElement } from "./console-time.ts";
import { type AccessReport, explainAccess, type ToolAccess } from "./people.access.ts";
import { type KnownSubject, knownSubjects, searchSubjects } from "./people.query.ts";

const PEOPLE_PATH = `${CONSOLE_PATH}/people` as const;
const SessionSubjects = z.array(z.string().max(300)).max(MAX_SUBJECTS - 1);

/**
 * `People and access`: every subject the policy names or the audit log has seen, searchable by any part of
 * a principal, email, group or binding note; and for one of them, each server and tool they can use, at
 * which level and why (binding → role → grant), and what they cannot use.
 */
export function mountPeoplePages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get(PEOPLE_PATH, async (c) => {
    const session = c.get("session");
    const q = (c.req.query("q") ?? "").slice(0, 200);
    const all = await knownSubjects(database(c.env.DB), deps.config.environment);
    const found = searchSubjects(all, q);
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "console:people",
    });
    return consolePage(
      session,
      PEOPLE_PATH,
      "People and access",
      html`<form method="get" action="${PEOPLE_PATH}" class="filters" role="search" aria-label="Search people">
<label for="q">Name, principal, email or group<input id="q" type="search" name="q" value="${q}" placeholder="bob, github:583231, @example.com, staff"></label>
<button type="submit">Search</button>
</form>
${peopleTable(found, all.length)}`,
    );
  });

  app.get(`${PEOPLE_PATH}/:subject{.+}`, async (c) => {
    const session = c.get("session");
    const subject = c.req.param("subject");
    if (subject.length > 300 || subjectKind(subject) === null) {
      return consolePage(
        session,
        PEOPLE_PATH,
        "Not a subject",
        html`<p>“${subject.slice(0, 300)}” is not a principal, email or group. <a href="${PEOPLE_PATH}">Search people</a></p>`,
        404,
      );
    }
    const db = database(c.env.DB);
    const person = !isGroupSubject(subject) && !subject.startsWith("email:");
    // A person's emails and groups are known only from a sign-in: the latest session they opened records them.
    const latest = person ? await latestSessionOf(db, subject) : undefined;
    const recorded = latest ? SessionSubjects.safeParse(safeJson(latest.subjects)) : null;
    const memberships = (recorded?.success ? recorded.data : []).filter((s) => s !== subject);
    const [report, block, notes] = await Promise.all([
      explainAccess(db, [subject, ...memberships], deps.config.environment),
      blockOf(db, subject),
      knownSubjects(db, deps.config.environment).then((all) => all.find((s) => s.subject === subject)?.note ?? null),
    ]);
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "console:person",
      subject,
    });
    const membershipText = !person
      ? html`<p>This is a ${subject.startsWith("email:") ? "verified email" : "group"}: below is what its own binding
gives anyone who signs in with it${subject.startsWith("email:") ? "" : " as a member"}.</p>`
      : latest
        ? html`<p>Emails and groups, as of their latest session (${timeElement(latest.created_ms)}):
${memberships.length === 0 ? html`none` : memberships.map((m) => html` <a href="${PEOPLE_PATH}/${encodeURIComponent(m)}"><code>${m}</code></a>`)}.
The default role, if the policy has one, applies too.</p>`
        : html`<p class="muted">No session of theirs is recorded, so their emails and groups are not known here:
what follows is what their principal's own bindings (and the default role) give. A binding of their email
or a group of theirs may give more; open that subject to see it.</p>`;
    const blocked = block
      ? html`<p class="error"><span class="tag blocked">blocked</span> since ${timeElement(block.blocked_at_ms)} by
<code>${block.blocked_by}</code>: ${block.reason}. <a href="${CONSOLE_PATH}/blocks">Lift it on the blocks page</a>.</p>`
      : report.blockedSubjects.length > 0
        ? html`<p class="error"><span class="tag blocked">blocked</span> through ${report.blockedSubjects.map((s) => html` <code>${s}</code>`)}.</p>`
        : html`<form method="get" action="${CONSOLE_PATH}/block"><input type="hidden" name="subject" value="${subject}"><button type="submit" class="danger">Block…</button></form>`;
    return consolePage(
      session,
      PEOPLE_PATH,
      subject,
      html`${notes ? html`<p><strong>${notes}</strong> (from the policy's binding note)</p>` : html``}
${blocked}
${membershipText}
${summary(report)}
<p><a href="${CONSOLE_PATH}/audit?person=${encodeURIComponent(subject)}">Their audit rows</a></p>
${report.servers.map(
  (s) => html`<section aria-labelledby="srv-${s.server}">
<h2 id="srv-${s.server}">${s.server}</h2>
<p>${s.serverLevel ? html`Server-wide: <strong>${s.serverLevel}</strong> (resources and prompts${s.rawStdio ? ", raw stdio with execute_stdio" : ""}).` : html`No server-wide grant (no resources, prompts or raw stdio).`}</p>
${toolTable(s.server, s.tools)}
</section>`,
)}`,
    );
  });
}

function summary(report: AccessReport): SafeHtml {
  const allowed = report.servers.reduce((n, s) => n + s.tools.filter((t) => t.allowed).length, 0);
  const total = report.servers.reduce((n, s) => n + s.tools.length, 0);
  return html`<p>Can use <strong>${String(allowed)}</strong> of ${String(total)} tools${report.admin ? html`, and <strong>is an admin</strong> (admin on <code>*</code>)` : html``}.
Rate limit: ${report.rateLimitPerMinute === null ? "none" : `${report.rateLimitPerMinute} calls a minute`}.
${
  report.sourceMatches
    ? html`<span class="muted">Policy <code>${(report.deployedHash ?? "").slice(0, 12)}</code>; grants are quoted as the policy writes them.</span>`
    : html`<span class="warning">The deployed policy (<code>${(report.deployedHash ?? "none").slice(0, 12)}</code>) was seeded without its source; reasons come from the deployed rows only.</span>`
}</p>`;
}

function toolTable(server: string, tools: readonly ToolAccess[]): SafeHtml {
  return html`<table>
<thead><tr><th scope="col">Tool</th><th scope="col">Needs</th><th scope="col">Can use</th><th scope="col">Why</th></tr></thead>
<tbody>
${tools.map(
  (t) => html`<tr id="tool-${server}__${t.tool}">
<td><code>${server}__${t.tool}</code></td>
<td>${t.needs}</td>
<td>${t.allowed ? html`<span class="tag allow">yes</span>` : html`<span class="tag deny">no</span>`}</td>
<td>${
    t.allowed
      ? t.because.map(
          (b) =>
            html`<div>binding <code>${b.subject}</code> → role <strong>${b.role}</strong> → ${
              b.via === "server"
                ? html`server-wide <strong>${b.level}</strong> on ${b.server}`
                : html`this tool, at <strong>${b.level}</strong>`
            }${b.source ? html` <span class="muted">(grant <code>${b.source}</code>)</span>` : html``}</div>`,
        )
      : html`<span class="muted">${denyText(t)}</span>`
  }</td>
</tr>`,
)}
</tbody>
</table>`;
}

function denyText(t: ToolAccess): string {
  switch (t.denyReason) {
    case "tool_not_granted":
      return `no role of theirs grants it (it needs ${t.needs}, or a grant denies it)`;
    default:
      return t.denyReason ?? "not granted";
  }
}

function peopleTable(found: readonly KnownSubject[], total: number): SafeHtml {
  if (found.length === 0) return html`<p>No one matches.</p>`;
  return html`<table>
<caption class="muted">${String(found.length)} of ${String(total)} subjects</caption>
<thead><tr><th scope="col">Subject</th><th scope="col">Who</th><th scope="col">Kind</th><th scope="col">Seen</th></tr></thead>
<tbody>
${found.map(
  (s) => html`<tr>
<td><a href="${PEOPLE_PATH}/${encodeURIComponent(s.subject)}"><code>${s.subject}</code></a>${s.blocked ? html` <span class="tag blocked">blocked</span>` : html``}</td>
<td>${s.note ?? ""}</td>
<td>${s.group ? "group" : s.subject.startsWith("email:") ? "email" : "person"}</td>
<td>${[s.bound ? "bound in the policy" : "", s.inAudit ? "in the audit log" : ""].filter(Boolean).join(", ")}</td>
</tr>`,
)}
</tbody>
</table>`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
