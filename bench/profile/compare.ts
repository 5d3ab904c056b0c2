// Usage: node bench/profile/compare.ts <label>=<run.json>[,<run.json>…] <label>=…  [--top N] [--by module|function]
// Side by side: the Worker's CPU per call of several profile runs (bench/profile/worker.ts --json), the
// median over each label's runs (the machine is shared: repeat runs, interleave them, compare medians),
// with the range, then the top modules (or functions) by median CPU per call. Runs made in interleaved
// rounds (same count per label) also get the median of their per-round ratios to the first label.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { z } from "zod";
import { table } from "../report/format.ts";

const Run = z.object({
  calls: z.number(),
  failed: z.number(),
  cpuMsPerCall: z.number(),
  /** Absent in runs made before it was reported. */
  consoleMsPerCall: z.number().optional(),
  wallMsPerCall: z.number(),
  loadAverage: z.array(z.number()),
  byModule: z.record(z.string(), z.number()),
  byFunction: z.record(z.string(), z.number()),
});
type Run = z.infer<typeof Run>;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "15" }, by: { type: "string", default: "module" } },
});
const groups: { label: string; runs: Run[] }[] = [];
for (const arg of positionals) {
  const [label, files] = arg.split("=", 2);
  if (!label || !files) throw new Error(`expected <label>=<run.json>[,…], not "${arg}"`);
  const runs = await Promise.all(files.split(",").map(async (f) => Run.parse(JSON.parse(await readFile(f, "utf8")))));
  groups.push({ label, runs });
}
const fmt = (x: number) => x.toFixed(3);
const first = groups[0];
/**
 * What a deployed Worker would not spend: the console line's serialisation to wrangler's inspector and
 * wrangler's dev-only middleware (its `templates/middleware`, bundled by `wrangler dev` only).
 */
const localOnly = (r: Run) => (r.consoleMsPerCall ?? Number.NaN) + (r.byModule.wrangler ?? 0);
const deployedLike = (r: Run) => r.cpuMsPerCall - localOnly(r);
/** Runs made in interleaved rounds: the i-th run of each label against the i-th of the first, then the median. */
const pairedRatio = (runs: readonly Run[], measure: (r: Run) => number) =>
  first && first.runs.length === runs.length
    ? median(runs.map((r, i) => measure(r) / measure(first.runs[i] as Run))).toFixed(2)
    : "–";
process.stdout.write(
  `${table(
    [
      "runs",
      "CPU ms per call (median)",
      "range",
      "÷ first",
      "paired ÷ first (median)",
      "local only: console line + wrangler dev middleware (median)",
      "without local-only (median)",
      "range",
      "÷ first",
      "paired ÷ first (median)",
      "wall ms per call (median)",
      "1-min load (median)",
    ],
    groups.map(({ label, runs }) => {
      const cpu = runs.map((r) => r.cpuMsPerCall);
      const quiet = runs.map(deployedLike);
      const base = first ? median(first.runs.map((r) => r.cpuMsPerCall)) : Number.NaN;
      const quietBase = first ? median(first.runs.map(deployedLike)) : Number.NaN;
      return [
        `${label} (${runs.length})`,
        fmt(median(cpu)),
        `${fmt(Math.min(...cpu))}–${fmt(Math.max(...cpu))}`,
        (median(cpu) / base).toFixed(2),
        pairedRatio(runs, (r) => r.cpuMsPerCall),
        fmt(median(runs.map(localOnly))),
        fmt(median(quiet)),
        `${fmt(Math.min(...quiet))}–${fmt(Math.max(...quiet))}`,
        (median(quiet) / quietBase).toFixed(2),
        pairedRatio(runs, deployedLike),
        median(runs.map((r) => r.wallMsPerCall)).toFixed(2),
        median(runs.map((r) => r.loadAverage[0] ?? Number.NaN)).toFixed(1),
      ];
    }),
  )}\n\n`,
);
const key = values.by === "function" ? "byFunction" : "byModule";
const names = new Map<string, number>();
for (const { runs } of groups) {
  for (const run of runs)
    for (const [name, ms] of Object.entries(run[key])) names.set(name, Math.max(names.get(name) ?? 0, ms));
}
const medianOf = (runs: readonly Run[], name: string) => median(runs.map((r) => r[key][name] ?? 0));
const top = [...names.keys()]
  .sort(
    (a, b) => Math.max(...groups.map((g) => medianOf(g.runs, b))) - Math.max(...groups.map((g) => medianOf(g.runs, a))),
  )
  .slice(0, Number(values.top));
process.stdout.write(
  `${table(
    [`${values.by} (median ms per call)`, ...groups.map((g) => g.label)],
    top.map((name) => [name, ...groups.map((g) => fmt(medianOf(g.runs, name)))]),
  )}\n`,
);
