import { type BillablePhase, ECHO_PHASE, MODERN_ECHO_PHASE } from "../measure/billable.ts";
import { median } from "../measure/stats.ts";
import { levelKey, payloadKey, type Results, seqKey } from "../results.ts";
import { ms, rate, table } from "./format.ts";
import { soakGoalRow } from "./soak.ts";
import { bestPeer, callsPerSecond, mid, p50, pairedRatios, total } from "./values.ts";

/** The goals of issue 7, checked against this run's medians (not timed tests: a reading aid). */
export function goalsTable(results: Results): string {
  const rows: string[][] = [];
  const has = (t: "bridge" | "gateway" | "gateway-modern") => results.targets.includes(t);
  const seq = seqKey("everything");
  const seqPeer = bestPeer(results, seq, p50, false);
  if (has("bridge") && seqPeer) {
    const ours = mid(results, seq, "bridge", p50);
    const theirs = mid(results, seq, seqPeer, p50);
    const r = median(pairedRatios(results, seq, "bridge", seqPeer, p50));
    rows.push([
      "bridge faster than the best peer at p50 (echo)",
      `${ms(ours)} vs ${ms(theirs)} ms (\`${seqPeer}\`), paired ratio ${r.toFixed(2)}`,
      r < 1 ? "yes" : `no (${((r - 1) * 100).toFixed(0)}% slower)`,
    ]);
  }
  const level = results.plan.levels.find((l) => l.sessions === 8 && l.inFlight === 16);
  if (has("bridge") && level) {
    const key = levelKey(level);
    const peer = bestPeer(results, key, callsPerSecond, true);
    if (peer) {
      const r = median(pairedRatios(results, key, "bridge", peer, callsPerSecond));
      rows.push([
        "bridge more calls/s than the best peer at 8×16",
        `${rate(mid(results, key, "bridge", callsPerSecond))} vs ${rate(mid(results, key, peer, callsPerSecond))} (\`${peer}\`), paired ratio ${r.toFixed(2)}`,
        r > 1 ? "yes" : `no (${((1 - r) * 100).toFixed(0)}% fewer)`,
      ]);
    }
  }
  if (has("gateway") && seqPeer) {
    const r = median(pairedRatios(results, seq, "gateway", seqPeer, p50));
    rows.push([
      "gateway p50 within 2.5× the best peer's p50 (echo)",
      `${ms(mid(results, seq, "gateway", p50))} vs ${ms(mid(results, seq, seqPeer, p50))} ms, paired ratio ${r.toFixed(1)}`,
      r <= 2.5 ? "yes" : `no (${r.toFixed(1)}×, ${(r / 2.5).toFixed(1)}× over the goal)`,
    ]);
  }
  if (has("gateway") && has("gateway-modern")) {
    // Issue 14: a modern call costs what a direct call costs; locally the same work should take the same time.
    const r = median(pairedRatios(results, seq, "gateway-modern", "gateway", p50));
    rows.push([
      "modern client's call as fast as the legacy client's direct call at p50 (echo; ≤ 1.1×)",
      `${ms(mid(results, seq, "gateway-modern", p50))} vs ${ms(mid(results, seq, "gateway", p50))} ms, paired ratio ${r.toFixed(2)}`,
      r <= 1.1 ? "yes" : `no (${r.toFixed(2)}×)`,
    ]);
  }
  const biggest = Math.max(...results.plan.payloads.map((p) => p.bytes));
  for (const t of ["bridge", "gateway", "gateway-modern"] as const) {
    if (!has(t)) continue;
    const key = payloadKey(biggest);
    const failed = total(results, key, t, (r) => r.errors + r.wrong);
    const calls = total(results, key, t, (r) => r.calls);
    rows.push([
      `${biggest / 1048576} MiB echo works through \`${t}\``,
      `${calls - failed}/${calls} answered correctly`,
      failed === 0 && calls > 0 ? "yes" : "no",
    ]);
  }
  let wrong = 0;
  for (const round of results.rounds)
    for (const runs of round.values()) for (const run of runs.values()) wrong += run.wrong;
  rows.push([
    "0 wrong answers at every level, every target",
    `${wrong} wrong answers in all runs`,
    wrong === 0 ? "yes" : "no",
  ]);
  const soak = soakGoalRow(results.soak, results.soakError);
  if (soak) rows.push(soak);
  return table(["goal", "measured (medians over rounds)", "met"], rows);
}

/** What one kind of operation costs per call in a phase of the count. */
function perCall(phase: BillablePhase, match: (kind: string) => boolean): number {
  return (
    Object.entries(phase.tallies)
      .filter(([k]) => match(k))
      .reduce((acc, [, v]) => acc + v.count, 0) / phase.per
  );
}

const COST_KINDS = {
  "KV reads": (k: string) => k === "kv.read" || k === "kv.list",
  "D1 reads": (k: string) => k === "d1.read",
  // The request path's D1 writes; the audit ledgers' shipments (`d1.ledger.*`) come after the answers.
  "D1 writes": (k: string) => k.startsWith("d1.") && k !== "d1.read" && !k.startsWith("d1.ledger."),
  "audit writes": (k: string) => k === "do.ledger.append",
  "KV writes": (k: string) => k === "kv.write" || k === "kv.delete",
  "session object": (k: string) => k === "do.session.fetch",
  container: (k: string) => k.startsWith("fetch.") || k === "do.bridge.fetch",
} as const;

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

/** The cost goals, per tool call (the sequential echo phases of the count: legacy direct, then modern). */
export function billableGoalRows(results: Results): string[][] {
  const legacy = results.billable?.find((p) => p.phase === ECHO_PHASE);
  const modern = results.billable?.find((p) => p.phase === MODERN_ECHO_PHASE);
  const rows = [...(legacy ? goalRows(legacy, "") : []), ...(modern ? goalRows(modern, "modern: ") : [])];
  if (legacy && modern) {
    // D1 reads depend on how often a call finds the caller's facts older than 1 s: a few hundredths apart.
    const kinds = Object.entries(COST_KINDS).map(([name, match]) => {
      const [a, b] = [perCall(legacy, match), perCall(modern, match)];
      return { name, a, b, same: Math.abs(a - b) <= 0.05 };
    });
    rows.push([
      "a modern call costs what a direct call costs (issue 14)",
      kinds.map((k) => `${k.name} ${fmt(k.a)} → ${fmt(k.b)}`).join("; "),
      kinds.every((k) => k.same) ? "yes" : `no (${kinds.filter((k) => !k.same).map((k) => k.name)})`,
    ]);
  }
  return rows;
}

function goalRows(phase: BillablePhase, prefix: string): string[][] {
  const n = (kind: keyof typeof COST_KINDS) => perCall(phase, COST_KINDS[kind]);
  const d1Reads = n("D1 reads");
  const d1Writes = n("D1 writes");
  const auditWrites = n("audit writes");
  const kvWrites = n("KV writes");
  const sessionHops = n("session object");
  const bridgeHops = n("container");
  return [
    [`${prefix}≤ 1 D1 read query per call`, fmt(d1Reads), d1Reads <= 1 ? "yes" : "no"],
    [`${prefix}0 D1 writes before the answer (issue 18)`, fmt(d1Writes), d1Writes === 0 ? "yes" : "no"],
    [`${prefix}1 audit write per call (to the caller's ledger)`, fmt(auditWrites), auditWrites === 1 ? "yes" : "no"],
    [`${prefix}0 KV writes per call`, fmt(kvWrites), kvWrites === 0 ? "yes" : "no"],
    [
      `${prefix}1 Durable Object hop (to the container) per call`,
      `${fmt(sessionHops + bridgeHops)} when deployed: ${fmt(sessionHops)} to the session object + ${fmt(bridgeHops)} to the container`,
      sessionHops + bridgeHops <= 1 ? "yes" : `no (${fmt(sessionHops)} extra)`,
    ],
  ];
}
