import { median } from "../measure/stats.ts";
import { levelKey, payloadKey, type Results, seqKey } from "../results.ts";
import { SERVERS, type ServerName, type TargetName } from "../targets/target.ts";
import { bytes, mib, ms, rate, ratio, table } from "./format.ts";
import {
  bestPeer,
  callsPerSecond,
  cpuPerCall,
  failures,
  mid,
  p50,
  p99,
  pairedRatios,
  perRound,
  total,
  type Value,
} from "./values.ts";

const TOOL: Record<ServerName, string> = { everything: "everything `echo`", memory: "memory `read_graph`" };

function versus(results: Results, key: string, target: TargetName, reference: TargetName | null, value: Value) {
  if (reference === null || reference === target) return "–";
  return ratio(
    pairedRatios(results, key, target, reference, value),
    median(pairedRatios(results, key, target, reference, value)),
  );
}

export function sequentialTable(results: Results, server: ServerName): string {
  const key = seqKey(server);
  const peer = bestPeer(results, key, p50, false);
  const rows = results.targets.map((t) => [
    `\`${t}\``,
    ms(mid(results, key, t, p50)),
    ms(mid(results, key, t, p99)),
    rate(mid(results, key, t, callsPerSecond)),
    ms(mid(results, key, t, cpuPerCall)),
    versus(results, key, t, "direct", p50),
    versus(results, key, t, peer, p50),
    String(total(results, key, t, (r) => r.wrong + r.errors)),
  ]);
  return [
    `**${TOOL[server]}**, one session, one call at a time (best peer at p50: \`${peer ?? "–"}\`)`,
    "",
    table(
      [
        "target",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "serving CPU ms/call",
        "p50 ÷ direct",
        "p50 ÷ best peer",
        "wrong + failed",
      ],
      rows,
    ),
  ].join("\n");
}

export function concurrencyTable(results: Results): string {
  const rows: string[][] = [];
  for (const level of results.plan.levels) {
    const key = levelKey(level);
    const peer = bestPeer(results, key, callsPerSecond, true);
    for (const t of results.targets) {
      rows.push([
        `${level.sessions}×${level.inFlight}`,
        `\`${t}\``,
        rate(mid(results, key, t, callsPerSecond)),
        ms(mid(results, key, t, p50)),
        ms(mid(results, key, t, p99)),
        ms(mid(results, key, t, cpuPerCall)),
        String(total(results, key, t, (r) => r.wrong)),
        failures(results, key, t),
        versus(results, key, t, "direct", callsPerSecond),
        versus(results, key, t, peer, callsPerSecond),
      ]);
    }
  }
  return table(
    [
      "sessions × in flight",
      "target",
      "calls/s",
      "p50 ms",
      "p99 ms",
      "serving CPU ms/call",
      "wrong answers",
      "failed calls",
      "calls/s ÷ direct",
      "calls/s ÷ best peer",
    ],
    rows,
  );
}

export function payloadTable(results: Results): string {
  const rows: string[][] = [];
  for (const { bytes: size } of results.plan.payloads) {
    const key = payloadKey(size);
    for (const t of results.targets) {
      const calls = total(results, key, t, (r) => r.calls);
      const failed = total(results, key, t, (r) => r.errors + r.wrong);
      const ok = failed === 0;
      rows.push([
        bytes(size),
        `\`${t}\``,
        ok ? ms(mid(results, key, t, p50)) : `fails`,
        failed === 0 ? `0/${calls}` : `${failures(results, key, t)} of ${calls}`,
        ok ? versus(results, key, t, "direct", p50) : "–",
      ]);
    }
  }
  return table(["echo size", "target", "p50 ms", "failed / calls", "p50 ÷ direct"], rows);
}

export function setupTable(results: Results): string {
  const rows: string[][] = [];
  for (const server of SERVERS) {
    for (const t of results.targets) {
      const trials = results.setups.flatMap((round) => round.get(server)?.get(t) ?? []);
      const pick = (f: (s: (typeof trials)[number]) => number) => ms(median(trials.map(f)));
      rows.push([
        server,
        `\`${t}\``,
        pick((s) => s.totalMs),
        pick((s) => s.connectMs),
        pick((s) => s.listMs),
        pick((s) => s.firstCallMs),
        `${trials.filter((s) => !s.ok).length}/${trials.length}`,
      ]);
    }
  }
  return table(
    ["server", "target", "total ms", "connect + initialize", "tools/list", "first call", "failed / trials"],
    rows,
  );
}

export function memoryTable(results: Results): string {
  const rows: string[][] = [];
  for (const t of results.targets) {
    const cells = [`\`${t}\``];
    for (const server of SERVERS) {
      const m = results.memory.get(t)?.get(server);
      cells.push(
        m ? mib(m.perSessionPssKiB) : "–",
        m ? mib(m.perSessionRssKiB) : "–",
        m ? `${mib(m.base.pssKiB)} (${m.base.processes} → ${m.loaded.processes} proc.)` : "–",
      );
    }
    rows.push(cells);
  }
  return table(
    [
      "target",
      "everything: PSS MiB/session",
      "RSS MiB/session",
      "tree PSS MiB before (processes before → after)",
      "memory: PSS MiB/session",
      "RSS MiB/session",
      "tree PSS MiB before (processes before → after)",
    ],
    rows,
  );
}

/** The per-round values behind the medians, for the headline metrics (so the spread is visible). */
export function roundsTable(results: Results): string {
  const seq = seqKey("everything");
  const level = results.plan.levels.find((l) => l.sessions === 8 && l.inFlight === 16) ?? results.plan.levels[0];
  const rows = results.targets.map((t) => [
    `\`${t}\``,
    perRound(results, seq, t, p50).map(ms).join(" · "),
    level ? perRound(results, levelKey(level), t, callsPerSecond).map(rate).join(" · ") : "–",
  ]);
  const levelName = level ? `${level.sessions}×${level.inFlight}` : "–";
  return table(["target", "echo p50 ms per round", `${levelName} calls/s per round`], rows);
}
