import { SOAK_PLATEAU_MIB_PER_1000_CALLS } from "../config.ts";
import { ROLES } from "../measure/roles.ts";
import type { SoakReading, SoakResult } from "../measure/soak.ts";
import type { Results } from "../results.ts";
import { ms, rate, table } from "./format.ts";

/** The processes the goal judges: the ones a gateway call goes through (the rest are reported only). */
const JUDGED: readonly string[] = [ROLES.runtime, ROLES.proxy, ROLES.bridge];
const SHORT: Record<string, string> = {
  [ROLES.runtime]: "the Worker's workerd",
  [ROLES.proxy]: "wrangler's proxy",
  [ROLES.bridge]: "the bridge",
};
/** Batches smaller than this say too little about a slope per 1,000 calls (the `--quick` soak). */
const MIN_JUDGED_BATCH = 1_000;

const thousands = (n: number) => n.toLocaleString("en-US");

/** Least-squares slope of y over x; NaN with fewer than two points. */
export function fittedSlope(points: readonly (readonly [number, number])[]): number {
  if (points.length < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

export interface SoakVerdict {
  /** Calls at the first reading of the judged window (after the second batch). */
  readonly from: number;
  readonly to: number;
  /** Growth in MiB per 1,000 calls over the window, per role (fitted). */
  readonly slopes: ReadonlyMap<string, number>;
  /** The same for the sum of all the stack's processes, and the state directory (MB per 1,000 calls). */
  readonly stackSlope: number;
  readonly stateSlopeMB: number;
  /** Roles whose processes changed during the soak (a restart: wrangler dev reloads when a source file changes). */
  readonly restarted: readonly string[];
  readonly failed: number;
  /** Why the goal cannot be judged from this run, if it cannot. */
  readonly notJudged: string | null;
  readonly met: boolean;
}

const totalKiB = (r: SoakReading) => Object.values(r.rssKiB).reduce((a, v) => a + v, 0);

export function judgeSoak(soak: SoakResult): SoakVerdict {
  const { plan, readings } = soak;
  const from = 2 * plan.callsPerBatch;
  const window = readings.filter((r) => r.calls >= from);
  const perThousand = (value: (r: SoakReading) => number, unit: number) =>
    (fittedSlope(window.map((r) => [r.calls, value(r)])) * 1_000) / unit;
  const roles = new Set(readings.flatMap((r) => Object.keys(r.rssKiB)));
  const slopes = new Map([...roles].map((role) => [role, perThousand((r) => r.rssKiB[role] ?? 0, 1024)]));
  const restarted = [...roles].filter((role) => {
    const sets = new Set(readings.map((r) => (r.pids[role] ?? []).join(",")));
    return sets.size > 1;
  });
  const failed = soak.batches.reduce((a, b) => a + Object.values(b.failures).reduce((x, y) => x + y, 0), 0);
  const restartedJudged = restarted.filter((role) => JUDGED.includes(role));
  const notJudged =
    plan.callsPerBatch < MIN_JUDGED_BATCH
      ? `batches of ${plan.callsPerBatch} calls are too small to judge`
      : window.length < 2
        ? "fewer than two readings after the second batch"
        : restartedJudged.length > 0
          ? `${restartedJudged.map((r) => SHORT[r] ?? r).join(", ")} restarted during the soak (a source file changed under wrangler dev?)`
          : null;
  const met =
    notJudged === null &&
    failed === 0 &&
    JUDGED.every((role) => (slopes.get(role) ?? Number.NaN) <= SOAK_PLATEAU_MIB_PER_1000_CALLS);
  return {
    from,
    to: window.at(-1)?.calls ?? from,
    slopes,
    stackSlope: perThousand(totalKiB, 1024),
    stateSlopeMB: perThousand((r) => r.stateBytes, 1e6),
    restarted,
    failed,
    notJudged,
    met,
  };
}

const slopeText = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${x.toFixed(1)}` : "–");

/** The goal row: [goal, measured, met]. */
export function soakGoalRow(soak: SoakResult | null, error: string | null): string[] | null {
  const goal = `gateway memory plateaus after the first 1,000 calls (each of ${JUDGED.map((r) => SHORT[r]).join(", ")}: ≤ ${SOAK_PLATEAU_MIB_PER_1000_CALLS} MiB more per 1,000 calls from the 2nd thousand on)`;
  if (!soak) return error === null ? null : [goal, `the soak did not run: ${error}`, "–"];
  const v = judgeSoak(soak);
  const measured = [
    `${JUDGED.map((r) => `${SHORT[r]} ${slopeText(v.slopes.get(r) ?? Number.NaN)}`).join(", ")} MiB per 1,000 calls over calls ${thousands(v.from)}–${thousands(v.to)}`,
    `whole stack ${(totalKiB(soak.readings[0] as SoakReading) / 1024).toFixed(0)} → ${(totalKiB(soak.readings.at(-1) as SoakReading) / 1024).toFixed(0)} MiB`,
    ...(v.failed > 0 ? [`${v.failed} calls failed`] : []),
  ].join("; ");
  if (v.notJudged) return [goal, measured, `– (not judged: ${v.notJudged})`];
  if (v.met) return [goal, measured, "yes"];
  const worst = Math.max(...JUDGED.map((r) => v.slopes.get(r) ?? Number.NaN).filter(Number.isFinite));
  return [
    goal,
    measured,
    v.failed > 0 && worst <= SOAK_PLATEAU_MIB_PER_1000_CALLS
      ? "no (calls failed)"
      : `no (${slopeText(worst)} MiB per 1,000 calls, ${(worst / SOAK_PLATEAU_MIB_PER_1000_CALLS).toFixed(1)}× the limit)`,
  ];
}

/** RSS of each process after the warm-up and after each batch, with the fitted growth from the 2nd batch on. */
export function soakMemoryTable(soak: SoakResult): string {
  const v = judgeSoak(soak);
  const roles = new Set(soak.readings.flatMap((r) => Object.keys(r.rssKiB)));
  const ordered = [...JUDGED.filter((r) => roles.has(r)), ...[...roles].filter((r) => !JUDGED.includes(r)).sort()];
  const mibCell = (kib: number) => (kib / 1024).toFixed(1);
  const rows = ordered.map((role) => [
    JUDGED.includes(role) ? `**${role}**` : role,
    ...soak.readings.map((r) => (r.rssKiB[role] === undefined ? "–" : mibCell(r.rssKiB[role]))),
    slopeText(v.slopes.get(role) ?? Number.NaN),
    `${JUDGED.includes(role) ? "yes" : "no"}${v.restarted.includes(role) ? " (restarted)" : ""}`,
  ]);
  rows.push(["whole stack", ...soak.readings.map((r) => mibCell(totalKiB(r))), slopeText(v.stackSlope), "no"]);
  rows.push([
    "wrangler state directory on disk (MB, not MiB)",
    ...soak.readings.map((r) => (r.stateBytes / 1e6).toFixed(1)),
    slopeText(v.stateSlopeMB),
    "no",
  ]);
  return table(
    [
      "RSS (MiB) after … calls",
      "warm-up",
      ...soak.readings.slice(1).map((r) => thousands(r.calls)),
      `per 1,000 calls from ${thousands(v.from)} on`,
      "judged",
    ],
    rows,
  );
}

/** Latency and CPU per batch: what the runtime settings cost, and whether the stack slows as it runs. */
export function soakBatchTable(soak: SoakResult): string {
  const rows = soak.batches.map((b, i) => {
    const failed = Object.values(b.failures).reduce((a, x) => a + x, 0);
    const kinds = Object.entries(b.failures)
      .map(([k, n]) => `${n}× ${k}`)
      .join(", ");
    return [
      String(i + 1),
      thousands(b.calls),
      failed === 0 ? "0" : `${failed} (${kinds})`,
      ms(b.p50Ms),
      rate(b.calls / (b.elapsedMs / 1000)),
      ms(b.cpuMs / b.calls),
    ];
  });
  return table(["batch", "calls", "failed", "p50 ms", "calls/s", "stack CPU ms per call"], rows);
}

/** The generated soak block of RESULTS.md (between its own markers), or what `--soak-only` prints. */
export function renderSoak(results: Results, command: string): string {
  const { soak, soakError } = results;
  const versions = results.versions;
  const head = [
    `Run: \`${command}\`, commit ${versions["hatago-auth commit"] ?? "?"}, wrangler ${versions.wrangler ?? "?"} (workerd ${versions["workerd (wrangler's)"] ?? "?"}), node ${versions.node ?? "?"}; load average (1 min) ${results.machine.loadAtStart[0]?.toFixed(2) ?? "?"} at the start, ${results.machine.loadAtEnd[0]?.toFixed(2) ?? "?"} at the end.`,
  ];
  if (!soak) return [...head, "", `The soak did not run${soakError ? `: ${soakError}` : ""}.`].join("\n");
  const settings = Object.entries(soak.settings)
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(", ");
  const row = soakGoalRow(soak, null);
  return [
    ...head,
    "",
    `${soak.plan.batches} × ${thousands(soak.plan.callsPerBatch)} sequential \`everything__echo\` calls (direct path) on one session of a fresh local stack, after ${soak.plan.warmupCalls} warm-up calls; RSS of each process from \`/proc\` ${soak.plan.settleMs} ms after each batch; ${(soak.durationMs / 60_000).toFixed(1)} min. Local runtime settings: ${settings} (\`scripts/lib/local-stack.ts\`).`,
    "",
    table(["goal", "measured", "met"], row ? [row] : []),
    "",
    soakMemoryTable(soak),
    "",
    soakBatchTable(soak),
  ].join("\n");
}
