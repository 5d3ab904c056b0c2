import { ECHO_PHASE, MODERN_ECHO_PHASE } from "../measure/billable.ts";
import type { Results } from "../results.ts";
import { billableTable, cpuByRoleTable, localTimeTable } from "./billable.ts";
import { table } from "./format.ts";
import { billableGoalRows, goalsTable } from "./goals.ts";
import { concurrencyTable, memoryTable, payloadTable, roundsTable, sequentialTable, setupTable } from "./tables.ts";

/** The generated part of RESULTS.md (between the markers), or what `--quick` prints. */
export function renderResults(results: Results): string {
  const { machine: m, plan } = results;
  const echoPhase = results.billable?.find((p) => p.phase === ECHO_PHASE);
  const modernEchoPhase = results.billable?.find((p) => p.phase === MODERN_ECHO_PHASE);
  const sections = [
    `Run: \`npm run bench${plan.mode === "quick" ? " -- --quick" : ""}\`, ${plan.rounds} round(s), targets interleaved (odd rounds in reverse order), ${(results.durationMs / 60_000).toFixed(1)} min.`,
    "",
    "### Machine and versions",
    "",
    table(
      ["", ""],
      [
        ["CPU", `${m.cpus} × ${m.cpuModel}`],
        ["memory", `${m.memoryGiB.toFixed(1)} GiB`],
        ["kernel", m.kernel],
        [
          "load average (1/5/15 min)",
          `start ${m.loadAtStart.map((x) => x.toFixed(2)).join(" / ")}; end ${m.loadAtEnd.map((x) => x.toFixed(2)).join(" / ")}; 1-min at each round start: ${results.loadPerRound.map((x) => x.toFixed(2)).join(", ")}`,
        ],
        ...Object.entries(results.versions).map(([k, v]) => [k, v]),
      ],
    ),
    "",
    "### Goals",
    "",
    goalsTable(results),
    ...(results.billable
      ? ["", table(["cost goal (per tool call)", "measured", "met"], billableGoalRows(results))]
      : []),
    "",
    "### Sequential calls",
    "",
    sequentialTable(results, "everything"),
    "",
    sequentialTable(results, "memory"),
    "",
    "Per round (the spread behind the medians):",
    "",
    roundsTable(results),
    "",
    "### Concurrency (echo; every answer checked against what was sent)",
    "",
    concurrencyTable(results),
    "",
    "### Session setup (connect → initialize → tools/list → first call; medians over all trials)",
    "",
    setupTable(results),
    "",
    "### Payload (echo of a message of this size; sequential)",
    "",
    payloadTable(results),
    "",
    "### Memory of the serving process tree, per added session (PSS and RSS from /proc)",
    "",
    memoryTable(results),
    "",
    "### Gateway: what costs money on Cloudflare, per operation",
    "",
    results.billable
      ? [
          billableTable(results.billable),
          "",
          "Where the time of one gateway call goes locally (sequential echo phase):",
          "",
          echoPhase ? localTimeTable(echoPhase) : "",
          "",
          "CPU of each process of the local stack per call (same phase; the client is not included):",
          "",
          echoPhase ? cpuByRoleTable(echoPhase) : "",
          ...(modernEchoPhase
            ? [
                "",
                "The same for a modern (2026-07-28) client's call (its sequential echo phase):",
                "",
                localTimeTable(modernEchoPhase),
                "",
                cpuByRoleTable(modernEchoPhase),
              ]
            : []),
        ].join("\n")
      : `Not counted in this run${results.billableError ? `: ${results.billableError}` : ""}.`,
  ];
  return sections.join("\n");
}
