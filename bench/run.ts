// Usage: npm run bench [-- --quick] [--rounds N] [--targets direct,bridge,gateway,supergateway,mcp-proxy]
//        [--skip-count] [--no-write] [--bridge-cpu-prof DIR]
// Full run (minutes): every target and scenario, interleaved rounds, results written into bench/RESULTS.md.
// --quick (under a minute): one short round and a short cost count, printed only; RESULTS.md is not touched.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { FULL, type Plan, PORTS, QUICK } from "./config.ts";
import { machine, versions } from "./machine.ts";
import { countBillable } from "./measure/billable.ts";
import { runRounds } from "./measure/rounds.ts";
import { renderResults } from "./report/markdown.ts";
import { writeResultsBlock } from "./report/write.ts";
import type { Results } from "./results.ts";
import { bridgeTarget } from "./targets/bridge.ts";
import { directTarget } from "./targets/direct.ts";
import { gatewayTarget, METERED_WORKER_ENTRY } from "./targets/gateway.ts";
import { mcpProxyTarget, supergatewayTarget } from "./targets/peers.ts";
import { REPO_ROOT, TARGET_NAMES, type Target, type TargetName } from "./targets/target.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    targets: { type: "string" },
    "skip-count": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    /** Write a V8 CPU profile of the bridge process (the `bridge` target) into this directory. */
    "bridge-cpu-prof": { type: "string" },
  },
});

const base: Plan = values.quick ? QUICK : FULL;
const rounds = values.rounds === undefined ? base.rounds : Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a whole number ≥ 1, not "${values.rounds}"`);
const plan: Plan = { ...base, rounds };
const selected = (values.targets?.split(",") ?? [...TARGET_NAMES]).map((t) => t.trim());
for (const t of selected) {
  if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target "${t}" (${TARGET_NAMES})`);
}
const t0 = performance.now();
const log = (line: string) =>
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);

const work = await mkdtemp(path.join(os.tmpdir(), "hatago-bench-"));
const started: Target[] = [];
/** Stops every target still running (each stops its own processes by PID / process group). */
async function stopAll(): Promise<void> {
  while (started.length > 0) {
    const target = started.pop() as Target;
    await target.stop().catch((e: unknown) => log(`stop ${target.name}: ${e}`));
  }
}
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= stopAll().then(() => rm(work, { recursive: true, force: true }));
  return cleaning;
}
// Whatever way this process ends (a crash, a closed stdout), nothing it started outlives it.
process.on("exit", () => {
  for (const target of started) target.killNow();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping what the bench started`);
    void cleanup().then(() => process.exit(130));
  });
}

async function start(name: TargetName): Promise<Target> {
  const memoryFile = path.join(work, `memory-${name}.jsonl`);
  switch (name) {
    case "direct":
      return directTarget(memoryFile);
    case "bridge":
      return bridgeTarget(
        PORTS.bridge,
        path.join(work, "bridge-data"),
        values["bridge-cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(values["bridge-cpu-prof"])}`] : [],
      );
    case "gateway":
      return gatewayTarget(PORTS.gateway, path.join(work, "gateway"));
    case "supergateway":
      return supergatewayTarget(PORTS.supergateway, memoryFile);
    case "mcp-proxy":
      return mcpProxyTarget(PORTS.mcpProxy, memoryFile);
  }
}

const results: Results = {
  plan,
  machine: machine(),
  versions: versions(),
  targets: selected as TargetName[],
  rounds: [],
  setups: [],
  memory: new Map(),
  billable: null,
  billableError: null,
  loadPerRound: [],
  durationMs: 0,
};

try {
  for (const name of results.targets) {
    log(`starting ${name}`);
    started.push(await start(name));
  }
  await runRounds(plan, started, results, log);
  await stopAll();
  if (!values["skip-count"] && results.targets.includes("gateway")) {
    // A second stack, so the timings above ran the product's entry untouched.
    log("counting billable operations on a stack with the metered Worker entry");
    try {
      const metered = await gatewayTarget(PORTS.metered, path.join(work, "metered"), {
        workerEntry: METERED_WORKER_ENTRY,
      });
      started.push(metered);
      results.billable = await countBillable(metered, plan.billableCalls);
    } catch (error) {
      results.billableError = error instanceof Error ? error.message : String(error);
      log(`count failed: ${results.billableError}`);
    }
  }
} finally {
  await cleanup();
}

results.machine.loadAtEnd = os.loadavg();
results.durationMs = performance.now() - t0;
const report = renderResults(results);
process.stdout.write(`${report}\n`);
if (plan.mode === "full" && !values["no-write"]) {
  const file = path.join(REPO_ROOT, "bench/RESULTS.md");
  await writeResultsBlock(file, report);
  log(`results written to ${path.relative(REPO_ROOT, file)}`);
}
log(`done in ${(results.durationMs / 1000).toFixed(0)} s`);
