import { type AuditLedger, ledgerName } from "../audit/ledger.ts";
import { type ChainProblem, type VerifyReport, verifyAuditChains, type Witness } from "../audit/verify.ts";
import { d1SqlReader } from "../db/audit-verify.d1.ts";
import { html, type SafeHtml } from "../http/html.ts";
import { CONSOLE_PATH } from "./console-session.ts";
import { timeElement } from "./console-time.ts";

/**
 * The audit page's integrity check (issue 18): the one verifier (worker/audit/verify.ts, the same code as
 * `npm run audit:verify`) over D1, plus what only the Worker can do: compare each stream with its ledger's
 * own head, which nobody with D1 access alone can rewrite. Run when the admin asks (`?verify=1`), never
 * on every page view: it reads every chained row (D1 bills rows read).
 */

/** Rows checked per run, at most: the console answers within a Worker's limits; the script has no bound. */
export const CONSOLE_VERIFY_MAX_ROWS = 100_000;
/** Ledgers asked for their head per run (one Durable Object request each). */
const CONSOLE_VERIFY_MAX_WITNESSED = 50;

export async function verifyForConsole(env: {
  readonly DB: D1Database;
  readonly AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
}): Promise<VerifyReport> {
  return verifyAuditChains(d1SqlReader(env.DB), {
    maxRows: CONSOLE_VERIFY_MAX_ROWS,
    maxWitnessed: CONSOLE_VERIFY_MAX_WITNESSED,
    witness: async (stream, principal): Promise<Witness | null> => {
      const state = await env.AUDIT_LEDGER.getByName(ledgerName(principal)).state();
      return state.stream === stream ? { shippedSeq: state.shippedSeq, shippedHash: state.shippedHash } : null;
    },
  });
}

/** The report as a section of the audit page. */
export function verifySection(report: VerifyReport): SafeHtml {
  const covered = html`${String(report.streams)} streams, ${String(report.rows)} rows, ${String(report.anchors)} anchors; ${String(report.witnessed)} streams compared with their ledger`;
  const unchained =
    report.unchained > 0
      ? html`<p class="muted">${String(report.unchained)} older rows carry no chain (written before it began) and are not covered.</p>`
      : html``;
  const truncated = report.truncated
    ? html`<p class="notice">Stopped after ${String(report.rows)} rows; run <code>npm run audit:verify</code> for the whole log.</p>`
    : html``;
  if (report.ok) {
    return html`<section aria-labelledby="verify-h"><h2 id="verify-h">Integrity</h2>
<p role="status"><span class="tag allow">intact</span> No row was edited, deleted, inserted or reordered: ${covered}.</p>
${unchained}${truncated}</section>`;
  }
  return html`<section aria-labelledby="verify-h"><h2 id="verify-h">Integrity</h2>
<p role="alert"><span class="tag deny">tampered</span> ${String(report.problems.length)} ${report.problems.length === 1 ? "stream has" : "streams have"} a row that was changed after it was written (the first of each is named): ${covered}.</p>
<table>
<thead><tr><th scope="col">What</th><th scope="col">Row</th><th scope="col">Person</th><th scope="col">Time</th><th scope="col">Stream, seq</th><th scope="col">Why</th></tr></thead>
<tbody>
${report.problems.map(problemRow)}
</tbody>
</table>
${unchained}${truncated}</section>`;
}

function problemRow(p: ChainProblem): SafeHtml {
  return html`<tr>
<td><span class="tag deny">${p.kind}</span></td>
<td>${p.id === null ? html`<span class="muted">gone</span>` : String(p.id)}</td>
<td>${p.principal === null ? "" : html`<a href="${CONSOLE_PATH}/people/${encodeURIComponent(p.principal)}"><code>${p.principal}</code></a>`}</td>
<td>${p.atMs === null ? "" : timeElement(p.atMs)}</td>
<td>${p.stream === "" ? "" : html`<code>${p.stream.slice(0, 8)}</code> ${String(p.seq)}`}</td>
<td>${p.detail}</td>
</tr>`;
}
