import type { Kysely } from "kysely";
import { type AuditFilter, auditBuckets } from "../db/audit-log.repository.ts";
import type { Database } from "../db/database.ts";
import { html, type SafeHtml } from "../http/html.ts";

/** Bars per chart: hourly over a day by default. */
export const CHART_BUCKETS = 24;
/** The chart's window when the filter gives none. */
export const DEFAULT_CHART_WINDOW_MS = 86_400_000;

const WIDTH = 720;
const HEIGHT = 120;
const LEFT = 40;
const BOTTOM = 18;

export interface ChartBucket {
  readonly calls: number;
  readonly denials: number;
  readonly errors: number;
}

export interface ServerSeries {
  readonly server: string;
  readonly buckets: readonly ChartBucket[];
}

/**
 * Calls (allowed), denials and errors per server over a window, in CHART_BUCKETS buckets: one GROUP BY
 * over the window's rows, through the same filter indexes as the page (a time range reads the
 * `(at_ms)` index range; a person or server filter narrows it through theirs).
 */
export async function chartSeries(
  db: Kysely<Database>,
  filter: AuditFilter,
  nowMs: number,
): Promise<{ fromMs: number; toMs: number; bucketMs: number; series: ServerSeries[] }> {
  const toMs = filter.toMs ?? nowMs;
  const fromMs = filter.fromMs ?? toMs - DEFAULT_CHART_WINDOW_MS;
  const bucketMs = Math.max(1, Math.ceil((toMs - fromMs) / CHART_BUCKETS));
  const rows = await auditBuckets(db, filter, fromMs, toMs, bucketMs);
  const byServer = new Map<string, ChartBucket[]>();
  for (const r of rows) {
    const bucket = Math.floor(r.bucket);
    if (r.server === null || bucket < 0 || bucket >= CHART_BUCKETS) continue;
    let buckets = byServer.get(r.server);
    if (!buckets) {
      buckets = Array.from({ length: CHART_BUCKETS }, () => ({ calls: 0, denials: 0, errors: 0 }));
      byServer.set(r.server, buckets);
    }
    buckets[bucket] = { calls: r.calls, denials: r.denials, errors: r.errors };
  }
  const series = [...byServer.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([server, buckets]) => ({ server, buckets }));
  return { fromMs, toMs, bucketMs, series };
}

/**
 * One small server-rendered SVG per server: three bars per bucket (calls, denials, errors), a y scale, and
 * the window's ends. No script and no chart library; every label is escaped; each chart has a text
 * summary for screen readers, and each bar a `<title>` with its numbers.
 */
export function chartSvg(chart: Awaited<ReturnType<typeof chartSeries>>): SafeHtml {
  if (chart.series.length === 0) return html`<p class="muted">No calls to chart in this window.</p>`;
  const slot = (WIDTH - LEFT) / CHART_BUCKETS;
  const bar = Math.max(1, Math.floor(slot / 3) - 1);
  const plot = HEIGHT - BOTTOM - 4;
  const label = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  return html`<p class="legend"><span class="calls">■ calls</span><span class="denials">■ denials</span><span class="errors">■ errors</span>
<span class="muted">${label(chart.fromMs)} to ${label(chart.toMs)} UTC, ${String(Math.round(chart.bucketMs / 60_000))} minutes a bar</span></p>
${chart.series.map((s) => {
  const max = Math.max(1, ...s.buckets.map((b) => Math.max(b.calls, b.denials, b.errors)));
  const total = s.buckets.reduce(
    (t, b) => ({ calls: t.calls + b.calls, denials: t.denials + b.denials, errors: t.errors + b.errors }),
    { calls: 0, denials: 0, errors: 0 },
  );
  const y = (n: number) => 4 + plot - (n / max) * plot;
  const bars = s.buckets.flatMap((b, i) =>
    (["calls", "denials", "errors"] as const).map((kind, k) => {
      const value = b[kind];
      if (value === 0) return html``;
      const x = LEFT + i * slot + k * (bar + 1);
      return html`<rect class="${kind}" x="${x.toFixed(1)}" y="${y(value).toFixed(1)}" width="${String(bar)}" height="${(plot + 4 - y(value)).toFixed(1)}"><title>${label(chart.fromMs + i * chart.bucketMs)}: ${String(value)} ${kind}</title></rect>`;
    }),
  );
  return html`<figure>
<figcaption><strong>${s.server}</strong>: ${String(total.calls)} calls, ${String(total.denials)} denials, ${String(total.errors)} errors</figcaption>
<svg class="chart" viewBox="0 0 ${String(WIDTH)} ${String(HEIGHT)}" role="img" aria-label="${s.server}: ${String(total.calls)} calls, ${String(total.denials)} denials, ${String(total.errors)} errors">
<line x1="${String(LEFT)}" y1="${String(4 + plot)}" x2="${String(WIDTH)}" y2="${String(4 + plot)}"></line>
<text x="${String(LEFT - 4)}" y="12" text-anchor="end">${String(max)}</text>
<text x="${String(LEFT - 4)}" y="${String(4 + plot)}" text-anchor="end">0</text>
${bars}
</svg>
</figure>`;
})}`;
}
