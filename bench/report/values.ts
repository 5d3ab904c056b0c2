import type { RunResult } from "../measure/scenarios.ts";
import { median, percentile } from "../measure/stats.ts";
import type { Results } from "../results.ts";
import { PEERS, type TargetName } from "../targets/target.ts";

/** Per-round values of a run, medians over rounds, and per-round paired ratios. */

export type Value = (r: RunResult) => number;
export const p50: Value = (r) => percentile(r.latencies, 50);
export const p99: Value = (r) => percentile(r.latencies, 99);
export const callsPerSecond: Value = (r) => (r.calls === 0 ? Number.NaN : r.calls / (r.elapsedMs / 1000));
export const cpuPerCall: Value = (r) => (r.calls === 0 ? Number.NaN : r.cpuMs / r.calls);

export function perRound(results: Results, key: string, target: TargetName, value: Value): number[] {
  return results.rounds.map((round) => {
    const run = round.get(key)?.get(target);
    return run ? value(run) : Number.NaN;
  });
}

export function mid(results: Results, key: string, target: TargetName, value: Value): number {
  return median(perRound(results, key, target, value));
}

/** target ÷ reference in each round (paired, so drift between rounds cancels). */
export function pairedRatios(
  results: Results,
  key: string,
  target: TargetName,
  reference: TargetName,
  value: Value,
): number[] {
  const a = perRound(results, key, target, value);
  const b = perRound(results, key, reference, value);
  return a.map((x, i) => x / (b[i] ?? Number.NaN)).filter((x) => Number.isFinite(x));
}

/** The better peer for this run key and value, by the median over rounds. */
export function bestPeer(results: Results, key: string, value: Value, higherIsBetter: boolean): TargetName | null {
  let best: TargetName | null = null;
  let bestValue = Number.NaN;
  for (const peer of PEERS) {
    if (!results.targets.includes(peer)) continue;
    const v = mid(results, key, peer, value);
    if (!Number.isFinite(v)) continue;
    if (best === null || (higherIsBetter ? v > bestValue : v < bestValue)) {
      best = peer;
      bestValue = v;
    }
  }
  return best;
}

/** Sum of a count over rounds (wrong answers and errors are totals, never medians). */
export function total(results: Results, key: string, target: TargetName, count: (r: RunResult) => number): number {
  return results.rounds.reduce((acc, round) => {
    const run = round.get(key)?.get(target);
    return acc + (run ? count(run) : 0);
  }, 0);
}

/** Failed calls over all rounds, with their kinds: `87 (HTTP 503)`. */
export function failures(results: Results, key: string, target: TargetName): string {
  const kinds: Record<string, number> = {};
  let n = 0;
  for (const round of results.rounds) {
    const run = round.get(key)?.get(target);
    if (!run) continue;
    n += run.errors;
    for (const [kind, count] of Object.entries(run.errorKinds)) kinds[kind] = (kinds[kind] ?? 0) + count;
  }
  if (n === 0) return "0";
  return `${n} (${Object.entries(kinds)
    .map(([kind, count]) => (Object.keys(kinds).length > 1 ? `${count}× ${kind}` : kind))
    .join(", ")})`;
}
