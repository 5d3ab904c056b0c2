import type { Hono } from "hono";
import { blockOf, subjectIsKnown } from "../db/blocks.repository.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { readSingleValueForm } from "../http/form.ts";
import { html, type SafeHtml } from "../http/html.ts";
import type { AdminBindings } from "./admin-request.ts";
import { adminAudit } from "./admin-request.ts";
import { blockRefusal, blockSubject, liftBlock, listBlocks } from "./blocks.routes.ts";
import { consolePage, csrfField } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import { CONSOLE_PATH, type ConsoleSession } from "./console-session.ts";
import { timeElement } from "./console-time.ts";

const BLOCKS_PATH = `${CONSOLE_PATH}/blocks` as const;
const MAX_REASON_CHARS = 500;

/**
 * `Blocks`: the kill switch from a browser. Blocking is two posts: the form (subject and reason) leads to
 * a confirmation page that says what will happen, and only its button blocks. Lifting is confirmed the
 * same way. Both call the same functions as the JSON API (blocks.routes.ts), so the rules, the clean-up
 * and the audit rows are the same.
 */
export function mountBlockPages(app: Hono<ConsoleEnv>, bindings: (env: Env) => AdminBindings): void {
  app.get(BLOCKS_PATH, async (c) => {
    const session = c.get("session");
    const blocks = await listBlocks(database(c.env.DB));
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "console:blocks",
    });
    const done = c.req.query("done");
    const subject = (c.req.query("subject") ?? "").slice(0, 300);
    const notice =
      done === "blocked"
        ? html`<p class="notice" role="status">Blocked <code>${subject}</code>.</p>`
        : done === "lifted"
          ? html`<p class="notice" role="status">Lifted the block on <code>${subject}</code>.</p>`
          : html``;
    return consolePage(
      session,
      BLOCKS_PATH,
      "Blocks",
      html`${notice}
<p>A blocked subject (a person, an email or a group) cannot sign in or refresh, gets 401 on every endpoint, and
its open sessions are closed, until the block is lifted. The policy itself changes only through review.</p>
${blockForm(session, "", "")}
<h2>In force</h2>
${
  blocks.length === 0
    ? html`<p>No one is blocked.</p>`
    : html`<table>
<thead><tr><th scope="col">Subject</th><th scope="col">Reason</th><th scope="col">By</th><th scope="col">Since</th><th scope="col"><span class="skip">Action</span></th></tr></thead>
<tbody>
${blocks.map(
  (b) => html`<tr>
<td><a href="${CONSOLE_PATH}/people/${encodeURIComponent(b.subject)}"><code>${b.subject}</code></a></td>
<td>${b.reason}</td>
<td><code>${b.blockedBy}</code></td>
<td>${timeElement(b.blockedAtMs)}</td>
<td><form method="post" action="${CONSOLE_PATH}/lift/confirm">${csrfField(session)}<input type="hidden" name="subject" value="${b.subject}"><button type="submit" aria-label="Lift the block on ${b.subject}">Lift…</button></form></td>
</tr>`,
)}
</tbody>
</table>`
}`,
    );
  });

  // The person page's "Block…" button: the form, filled in.
  app.get(`${CONSOLE_PATH}/block`, (c) => {
    const session = c.get("session");
    const subject = (c.req.query("subject") ?? "").slice(0, 300);
    return consolePage(session, BLOCKS_PATH, "Block a subject", blockForm(session, subject, ""));
  });

  app.post(`${CONSOLE_PATH}/block/confirm`, async (c) => {
    const session = c.get("session");
    const form = await readSingleValueForm(c.req.raw, ["subject", "reason"]);
    const subject = (form.get("subject") ?? "").trim();
    const reason = (form.get("reason") ?? "").trim();
    const problem = formProblem(session, subject, reason);
    if (problem) {
      return consolePage(
        session,
        BLOCKS_PATH,
        "Block a subject",
        html`<p class="error" role="alert">${problem}</p>${blockForm(session, subject, reason)}`,
        400,
      );
    }
    const known = await subjectIsKnown(database(c.env.DB), subject);
    return consolePage(
      session,
      BLOCKS_PATH,
      "Confirm the block",
      html`<p>Block <strong><code>${subject}</code></strong> for “${reason}”?</p>
${known ? html`` : html`<p class="warning">Nothing has ever named this subject (no binding, session or audit row): check its spelling.</p>`}
<ul>
<li>No new sign-in and no token refresh, for this subject${subject.startsWith("group:") ? " and everyone in the group" : ""}.</li>
<li>Every request with a token they hold now is refused (401); their open sessions are closed.</li>
<li>It stays until an admin lifts it. It is recorded in the audit log under your name.</li>
</ul>
<form method="post" action="${CONSOLE_PATH}/block">
${csrfField(session)}
<input type="hidden" name="subject" value="${subject}">
<input type="hidden" name="reason" value="${reason}">
<div class="actions"><button class="danger" type="submit">Block ${subject}</button> <a href="${BLOCKS_PATH}">Cancel</a></div>
</form>`,
    );
  });

  app.post(`${CONSOLE_PATH}/block`, async (c) => {
    const session = c.get("session");
    const form = await readSingleValueForm(c.req.raw, ["subject", "reason"]);
    const subject = (form.get("subject") ?? "").trim();
    const reason = (form.get("reason") ?? "").trim();
    const problem = formProblem(session, subject, reason);
    if (problem) {
      return consolePage(
        session,
        BLOCKS_PATH,
        "Block a subject",
        html`<p class="error" role="alert">${problem}</p>${blockForm(session, subject, reason)}`,
        400,
      );
    }
    const result = await blockSubject(bindings(c.env), session.admin, subject, reason);
    if (!result.ok) {
      return consolePage(
        session,
        BLOCKS_PATH,
        "Block a subject",
        html`<p class="error" role="alert">${result.message}</p>`,
        400,
      );
    }
    console.info(
      JSON.stringify({
        event: "admin_block",
        by: session.props.principal,
        subject,
        sessionsClosed: result.body.sessionsClosed,
      }),
    );
    return seeOther(`${BLOCKS_PATH}?${new URLSearchParams({ done: "blocked", subject })}`);
  });

  app.post(`${CONSOLE_PATH}/lift/confirm`, async (c) => {
    const session = c.get("session");
    const form = await readSingleValueForm(c.req.raw, ["subject"]);
    const subject = (form.get("subject") ?? "").slice(0, 300);
    const row = await blockOf(database(c.env.DB), subject);
    if (!row) {
      return consolePage(
        session,
        BLOCKS_PATH,
        "Not blocked",
        html`<p><code>${subject}</code> is not blocked. <a href="${BLOCKS_PATH}">Blocks</a></p>`,
        404,
      );
    }
    return consolePage(
      session,
      BLOCKS_PATH,
      "Confirm lifting the block",
      html`<p>Lift the block on <strong><code>${subject}</code></strong> (blocked ${timeElement(row.blocked_at_ms)} by
<code>${row.blocked_by}</code> for “${row.reason}”)?</p>
<p>They can sign in again at once, with whatever the policy gives them.</p>
<form method="post" action="${CONSOLE_PATH}/lift">
${csrfField(session)}
<input type="hidden" name="subject" value="${subject}">
<div class="actions"><button class="primary" type="submit">Lift the block</button> <a href="${BLOCKS_PATH}">Cancel</a></div>
</form>`,
    );
  });

  app.post(`${CONSOLE_PATH}/lift`, async (c) => {
    const session = c.get("session");
    const form = await readSingleValueForm(c.req.raw, ["subject"]);
    const subject = (form.get("subject") ?? "").slice(0, 300);
    const result = await liftBlock(bindings(c.env), session.admin, subject);
    if (!result.ok) {
      return consolePage(session, BLOCKS_PATH, "Not blocked", html`<p>${result.message}</p>`, 404);
    }
    console.info(JSON.stringify({ event: "admin_unblock", by: session.props.principal, subject }));
    return seeOther(`${BLOCKS_PATH}?${new URLSearchParams({ done: "lifted", subject })}`);
  });
}

function formProblem(session: ConsoleSession, subject: string, reason: string): string | null {
  const refusal = blockRefusal(session.admin, subject);
  if (refusal === "invalid_request")
    return "Name a principal (github:583231, mock:bob), an email (email:ada@example.com) or a group (group:github:acme/ops).";
  if (refusal === "self_block") return "You cannot block yourself or a group you belong to.";
  if (reason.length === 0) return "Say why: the reason is kept with the block and in the audit log.";
  if (reason.length > MAX_REASON_CHARS) return `The reason is at most ${MAX_REASON_CHARS} characters.`;
  return null;
}

function blockForm(session: ConsoleSession, subject: string, reason: string): SafeHtml {
  return html`<form method="post" action="${CONSOLE_PATH}/block/confirm" class="stack" aria-label="Block a subject">
${csrfField(session)}
<label for="b-subject">Subject to block</label>
<input id="b-subject" type="text" name="subject" value="${subject}" required maxlength="300" placeholder="github:583231, email:ada@example.com, group:github:acme/ops">
<label for="b-reason">Reason</label>
<input id="b-reason" type="text" name="reason" value="${reason}" required maxlength="${String(MAX_REASON_CHARS)}" placeholder="laptop stolen">
<div class="actions"><button class="danger" type="submit">Block…</button></div>
</form>`;
}

function seeOther(location: string): Response {
  return new Response(null, { status: 303, headers: { Location: location, "Cache-Control": "no-store" } });
}
