import { median } from "../measure/stats.ts";
import { levelKey, payloadKey, type Results, seqKey } from "../results.ts";
import { ms, rate, table } from "./format.ts";
import { soakGoalRow } from "./soak.ts";
import { bestPeer, callsPerSecond, mid, p50, pairedRatios, total } from "./values.ts";

/** The goals of issue 7, checked against this run's medians (not timed tests: a reading aid). */
export function goalsTable(results: Results): string {
  const rows: string[][] = [];
  const has = (t: "bridge" | "gateway") => results.targets.includes(t);
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
  const biggest = Math.max(...results.plan.payloads.map((p) => p.bytes));
  for (const t of ["bridge", "gateway"] as const) {
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

/** The cost goals, per tool call (the sequential echo phase of the count). */
export function billableGoalRows(results: Results): string[][] {
  const phase = results.billable?.find((p) => p.phase === "tools/call everything__echo");
  if (!phase) return [];
  const n = (match: (kind: string) => boolean) =>
    Object.entries(phase.tallies)
      .filter(([k]) => match(k))
      .reduce((acc, [, v]) => acc + v.count, 0) / phase.per;
  const d1Reads = n((k) => k === "d1.read");
  // The request path's D1 writes; the audit ledgers' shipments (`d1.ledger.*`) come after the answers.
  const d1Writes = n((k) => k.startsWith("d1.") && k !== "d1.read" && !k.startsWith("d1.ledger."));
  const auditWrites = n((k) => k === "do.ledger.append");
  const kvWrites = n((k) => k === "kv.write" || k === "kv.delete");
  const sessionHops = n((k) => k === "do.session.fetch");
  const bridgeHops = n((k) => k.startsWith("fetch.") || k === "do.bridge.fetch");
  const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
  return [
    ["≤ 1 D1 read query per call", fmt(d1Reads), d1Reads <= 1 ? "yes" : "no"],
    ["0 D1 writes before the answer (issue 18)", fmt(d1Writes), d1Writes === 0 ? "yes" : "no"],
    ["1 audit write per call (to the caller's ledger)", fmt(auditWrites), auditWrites === 1 ? "yes" : "no"],
    ["0 KV writes per call", fmt(kvWrites), kvWrites === 0 ? "yes" : "no"],
    [
      "1 Durable Object hop (to the container) per call",
      `${fmt(sessionHops + bridgeHops)} when deployed: ${fmt(sessionHops)} to the session object + ${fmt(bridgeHops)} to the container`,
      sessionHops + bridgeHops <= 1 ? "yes" : `no (${fmt(sessionHops)} extra)`,
    ],
  ];
}
