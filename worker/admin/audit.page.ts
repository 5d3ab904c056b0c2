import type { Hono } from "hono";
import { SERVER_IDS } from "../../policies/catalog.ts";
import { type AuditFilter, type AuditRow, auditPage, OUTCOME_FILTERS } from "../db/audit-log.repository.ts";
import { database } from "../db/database.ts";
import { html, type SafeHtml } from "../http/html.ts";
import { adminAudit } from "./admin-request.ts";
import { chartSeries, chartSvg } from "./audit.chart.ts";
import { csvResponse } from "./audit.csv.ts";
import { AUDIT_PAGE_ROWS, AuditFilterQuery, cursorOf, cursorText } from "./audit.query.ts";
import { verifyForConsole, verifySection } from "./audit.verify.ts";
import { consolePage } from "./console.layout.ts";
import type { ConsoleEnv } from "./console-session.ts";
import { CONSOLE_PATH, type ConsoleDeps } from "./console-session.ts";
import { isTimeZone, localInputToMs, timeElement } from "./console-time.ts";
import { type KnownSubject, knownSubjects, resolvePrincipal } from "./people.query.ts";

const AUDIT_PATH = `${CONSOLE_PATH}/audit` as const;

/** The filter form as the admin filled it in, and what it means for the query (or why it means nothing). */
interface ReadFilter {
  readonly query: AuditFilterQuery;
  readonly filter: AuditFilter;
  /** Shown above the table: how a typed person was read, or a filter that could not be. */
  readonly notes: SafeHtml[];
  /** A typed person that matches several known principals: the page lists them instead of rows. */
  readonly choices: KnownSubject[] | null;
}

/**
 * `Audit log`: filter by person, server, tool, decision, outcome and time range; newest first, paged by
 * keyset; times in the browser's zone; the same filters export as CSV (ISO times). Every value in a row
 * (names, tools, notes, client ids) is text from outside, and is escaped like everything else. Each row
 * shows its three levels: the decision (and why), the delivery (did it reach the server, and if not why),
 * the result (the server's answer). `?verify=1` adds the hash chains' check (audit.verify.ts).
 *
 * Rows reach D1 from the ledgers just after their answers (worker/audit/ledger.ts): a row of the last
 * moment may appear a moment later.
 */
export function mountAuditPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get(AUDIT_PATH, async (c) => {
    const session = c.get("session");
    const db = database(c.env.DB);
    const read = await readFilter(c.req.query(), () => knownSubjects(db, deps.config.environment));
    const cursor = cursorOf(read.query.before);
    const verifying = read.query.verify === "1";
    const [page, chart, verified] =
      read.choices === null
        ? await Promise.all([
            auditPage(db, read.filter, cursor, AUDIT_PAGE_ROWS),
            cursor === null ? chartSeries(db, read.filter, Date.now()).then(chartSvg) : null,
            verifying ? verifyForConsole(c.env) : null,
          ])
        : [{ rows: [], next: null }, null, null];
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: verifying ? "console:audit.verify" : "console:audit",
    });
    const base = filterParams(read.query);
    const older = page.next ? `${AUDIT_PATH}?${withParam(base, "before", cursorText(page.next))}` : null;
    const choices = read.choices
      ? html`<p class="notice">Several people match; choose one:</p><ul>${read.choices.map(
          (s) =>
            html`<li><a href="${AUDIT_PATH}?${withParam(base, "person", s.subject)}"><code>${s.subject}</code></a>${s.note ? html` ${s.note}` : html``}</li>`,
        )}</ul>`
      : html``;
    return consolePage(
      session,
      AUDIT_PATH,
      "Audit log",
      html`${filterForm(read.query)}
${read.notes.map((n) => html`<p class="notice">${n}</p>`)}
${choices}
${verified ? verifySection(verified) : html`<p><a href="${AUDIT_PATH}?${withParam(base, "verify", "1")}">Check the log's integrity</a> <span class="muted">(every row's hash chain against its anchors and its ledger; reads the whole log)</span></p>`}
${chart ? html`<h2>Calls, denials and errors per server</h2>${chart}` : html``}
<h2>Rows</h2>
<p><a href="${CONSOLE_PATH}/audit.csv?${base}">Export these rows as CSV</a>
<span class="muted">(ISO 8601 UTC times, up to the export limit)</span></p>
${cursor ? html`<p class="muted">Older rows, from ${timeElement(cursor.atMs)} back. <a href="${AUDIT_PATH}?${base}">Newest</a></p>` : html``}
${auditTable(page.rows)}
<div class="pager">${older ? html`<a href="${older}" rel="next">Older rows</a>` : html`<span class="muted">No older rows.</span>`}</div>`,
    );
  });

  app.get(`${CONSOLE_PATH}/audit.csv`, async (c) => {
    const session = c.get("session");
    const db = database(c.env.DB);
    const read = await readFilter(c.req.query(), () => knownSubjects(db, deps.config.environment));
    await adminAudit(c.env, session.admin, {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "console:audit.csv",
    });
    // A person who matches several principals exports nothing rather than guessing.
    return csvResponse(db, read.choices === null ? read.filter : null);
  });
}

async function readFilter(raw: Record<string, string>, known: () => Promise<KnownSubject[]>): Promise<ReadFilter> {
  const notes: SafeHtml[] = [];
  const parsed = AuditFilterQuery.safeParse(raw);
  const query: AuditFilterQuery = parsed.success ? parsed.data : {};
  if (!parsed.success) notes.push(html`Some filters could not be read and were ignored.`);
  const zone = query.tz && isTimeZone(query.tz) ? query.tz : "UTC";
  let server = query.server || undefined;
  let tool = query.tool || undefined;
  // The name a client sees (`memory__create_entities`) is the server and the tool.
  if (tool?.includes("__") && server === undefined) {
    const [s = "", t = ""] = tool.split("__", 2);
    server = s;
    tool = t;
  }
  let principal: string | undefined;
  let choices: KnownSubject[] | null = null;
  if (query.person) {
    const resolved = resolvePrincipal(await known(), query.person);
    if ("principal" in resolved) {
      principal = resolved.principal;
      if (principal !== query.person) notes.push(html`Showing <code>${principal}</code> for “${query.person}”.`);
    } else if (resolved.choices.length === 0) {
      notes.push(html`No known person matches “${query.person}”; filtering by it exactly.`);
      principal = query.person;
    } else {
      choices = resolved.choices;
    }
  }
  const time = (value: string | undefined, label: string) => {
    if (!value) return undefined;
    const ms = localInputToMs(value, zone);
    if (ms === null) notes.push(html`The ${label} time “${value}” is not a date and time; ignored.`);
    return ms ?? undefined;
  };
  const filter: AuditFilter = {
    ...(principal !== undefined ? { principal } : {}),
    ...(server !== undefined ? { server } : {}),
    ...(tool !== undefined ? { tool } : {}),
    ...(query.decision ? { decision: query.decision } : {}),
    ...(query.outcome ? { outcome: query.outcome } : {}),
    ...optionalNumber("fromMs", time(query.from, "from")),
    ...optionalNumber("toMs", time(query.to, "to")),
  };
  return { query, filter, notes, choices };
}

const optionalNumber = <K extends string>(key: K, value: number | undefined) =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, number>>;

/** The filters (not the page position) as a query string, to carry into links. */
function filterParams(query: AuditFilterQuery): string {
  const params = new URLSearchParams();
  for (const key of ["person", "server", "tool", "decision", "outcome", "from", "to", "tz"] as const) {
    const value = query[key];
    if (value) params.set(key, value);
  }
  return params.toString();
}

function withParam(base: string, key: string, value: string): string {
  const params = new URLSearchParams(base);
  params.set(key, value);
  return params.toString();
}

function filterForm(q: AuditFilterQuery): SafeHtml {
  const option = (value: string, label: string, current: string | undefined) =>
    value === (current ?? "")
      ? html`<option value="${value}" selected>${label}</option>`
      : html`<option value="${value}">${label}</option>`;
  return html`<form method="get" action="${AUDIT_PATH}" class="filters" role="search" aria-label="Filter the audit log">
<label for="f-person">Person<input id="f-person" type="text" name="person" value="${q.person ?? ""}" placeholder="alice, github:583231"></label>
<label for="f-server">Server<select id="f-server" name="server">${option("", "any", q.server)}${SERVER_IDS.map((s) => option(s, s, q.server))}</select></label>
<label for="f-tool">Tool<input id="f-tool" type="text" name="tool" value="${q.tool ?? ""}" placeholder="memory__create_entities"></label>
<label for="f-decision">Decision<select id="f-decision" name="decision">${option("", "any", q.decision)}${option("allow", "allow", q.decision)}${option("deny", "deny", q.decision)}</select></label>
<label for="f-outcome">Outcome<select id="f-outcome" name="outcome">${option("", "any", q.outcome)}${OUTCOME_FILTERS.map((o) => option(o, o === "none" ? "none (not run)" : o, q.outcome))}</select></label>
<label for="f-from">From<input id="f-from" type="datetime-local" name="from" value="${q.from ?? ""}"></label>
<label for="f-to">To<input id="f-to" type="datetime-local" name="to" value="${q.to ?? ""}"></label>
<input type="hidden" name="tz" value="${q.tz ?? ""}">
<button type="submit">Filter</button>
<a href="${AUDIT_PATH}">Clear</a>
</form>
<p class="muted">Times are shown and typed in <span data-zone>UTC</span>.</p>`;
}

export function auditTable(rows: readonly AuditRow[]): SafeHtml {
  if (rows.length === 0) return html`<p>No rows.</p>`;
  return html`<table>
<caption class="muted">${String(rows.length)} rows, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Person</th><th scope="col">Action</th><th scope="col">Server</th><th scope="col">Tool</th><th scope="col">Decision</th><th scope="col">Delivery</th><th scope="col">Result</th><th scope="col">ms</th><th scope="col">About</th></tr></thead>
<tbody>
${rows.map(
  (r) => html`<tr>
<td>${timeElement(r.at_ms)}</td>
<td><a href="${CONSOLE_PATH}/people/${encodeURIComponent(r.principal)}"><code>${r.principal}</code></a>${r.client_id ? html`<br><span class="muted">client <code>${r.client_id}</code></span>` : html``}</td>
<td>${r.action}</td>
<td>${r.server ?? ""}</td>
<td>${r.tool === null ? "" : html`<code>${r.tool}</code>`}</td>
<td><span class="tag ${r.decision}">${r.decision}</span> <span class="muted">${r.reason}</span></td>
<td>${r.delivery ?? ""}</td>
<td>${r.result ?? ""}${r.error_code === null ? "" : html` <span class="muted">${String(r.error_code)}</span>`}</td>
<td>${r.duration_ms === null ? "" : String(r.duration_ms)}</td>
<td>${r.subject === null ? "" : html`<code>${r.subject}</code>`}${r.note === null ? "" : html` ${r.note}`}</td>
</tr>`,
)}
</tbody>
</table>`;
}
