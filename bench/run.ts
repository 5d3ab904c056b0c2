// Usage: npm run bench [-- --quick] [--rounds N] [--targets direct,bridge,gateway,gateway-modern,supergateway,mcp-proxy]
//        [--skip-count] [--skip-soak] [--soak-only] [--soak-port N] [--ports N] [--no-write] [--bridge-cpu-prof DIR]
// Full run (minutes): every target and scenario, interleaved rounds, the cost count and the memory soak,
// results written into bench/RESULTS.md.
// --quick (about a minute): one short round, a short cost count and soak, printed only; RESULTS.md is not touched.
// --soak-only: just the memory soak (about 2 minutes; with --quick, seconds); rewrites only its block.
// --ports N: the processes this run starts listen on N, N+1, … in the order they start (3 per local stack),
// instead of config.ts's fixed ports (a machine shared with other work that holds those).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { FULL, type Plan, PORTS, QUICK } from "./config.ts";
import { machine, versions } from "./machine.ts";
import { countBillable, countModernBillable } from "./measure/billable.ts";
import { runRounds } from "./measure/rounds.ts";
import { runSoak } from "./measure/soak.ts";
import { renderResults } from "./report/markdown.ts";
import { renderSoak } from "./report/soak.ts";
import { writeResultsBlock } from "./report/write.ts";
import type { Results } from "./results.ts";
import { bridgeTarget } from "./targets/bridge.ts";
import { directTarget } from "./targets/direct.ts";
import { type GatewayPorts, gatewayTarget, METERED_WORKER_ENTRY } from "./targets/gateway.ts";
import { gatewayModernTarget, modernClientsOn } from "./targets/gateway-modern.ts";
import { mcpProxyTarget, supergatewayTarget } from "./targets/peers.ts";
import { REPO_ROOT, TARGET_NAMES, type Target, type TargetName } from "./targets/target.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    targets: { type: "string" },
    "skip-count": { type: "boolean", default: false },
    "skip-soak": { type: "boolean", default: false },
    "soak-only": { type: "boolean", default: false },
    /** The soak stack's Worker port (bridge and inspector: the next two); the bench's own range otherwise. */
    "soak-port": { type: "string" },
    /** First port of a consecutive range for this run's processes (see the usage above). */
    ports: { type: "string" },
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
const soakOnly = values["soak-only"];
if (soakOnly && values["skip-soak"]) throw new Error("--soak-only and --skip-soak exclude each other");
const soakPort = values["soak-port"] === undefined ? PORTS.soak.worker : Number(values["soak-port"]);
if (!Number.isInteger(soakPort) || soakPort < 1024 || soakPort > 65_533)
  throw new Error(`--soak-port must be a port number (1024–65533), not "${values["soak-port"]}"`);
const portBase = values.ports === undefined ? null : Number(values.ports);
if (portBase !== null && (!Number.isInteger(portBase) || portBase < 1024 || portBase > 65_000))
  throw new Error(`--ports must be a port number (1024–65000), not "${values.ports}"`);
let nextPort = portBase ?? 0;
/** `count` consecutive ports from --ports, or the fixed ones. */
const portsFor = <T>(fixed: T, count: number, make: (first: number) => T): T => {
  if (portBase === null) return fixed;
  const first = nextPort;
  nextPort += count;
  return make(first);
};
const stackPorts = (fixed: GatewayPorts) =>
  portsFor(fixed, 3, (p): GatewayPorts => ({ worker: p, bridge: p + 1, inspector: p + 2 }));
/** The soak's stack: --soak-port if given, else the next ones (taken when the soak starts). */
const soakPorts = (): GatewayPorts =>
  values["soak-port"] === undefined
    ? stackPorts(PORTS.soak)
    : { worker: soakPort, bridge: soakPort + 1, inspector: soakPort + 2 };
const selected = soakOnly ? [] : (values.targets?.split(",") ?? [...TARGET_NAMES]).map((t) => t.trim());
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
        portsFor(PORTS.bridge, 1, (p) => p),
        path.join(work, "bridge-data"),
        values["bridge-cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(values["bridge-cpu-prof"])}`] : [],
      );
    case "gateway":
      return gatewayTarget(stackPorts(PORTS.gateway), path.join(work, "gateway"));
    case "gateway-modern":
      return gatewayModernTarget(stackPorts(PORTS.gatewayModern), path.join(work, "gateway-modern"));
    case "supergateway":
      return supergatewayTarget(
        portsFor(PORTS.supergateway, 2, (p) => ({ everything: p, memory: p + 1 })),
        memoryFile,
      );
    case "mcp-proxy":
      return mcpProxyTarget(
        portsFor(PORTS.mcpProxy, 2, (p) => ({ everything: p, memory: p + 1 })),
        memoryFile,
      );
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
  soak: null,
  soakError: null,
  loadPerRound: [],
  durationMs: 0,
};

try {
  for (const name of results.targets) {
    log(`starting ${name}`);
    started.push(await start(name));
  }
  if (!soakOnly) await runRounds(plan, started, results, log);
  await stopAll();
  const legacyCount = results.targets.includes("gateway");
  const modernCount = results.targets.includes("gateway-modern");
  if (!values["skip-count"] && (legacyCount || modernCount)) {
    // A second stack, so the timings above ran the product's entry untouched. Both eras are counted on it,
    // the legacy client's calls first, then the modern client's (issue 14: the same cost per call).
    log("counting billable operations on a stack with the metered Worker entry");
    try {
      const metered = await gatewayTarget(stackPorts(PORTS.metered), path.join(work, "metered"), {
        workerEntry: METERED_WORKER_ENTRY,
      });
      started.push(metered);
      results.billable = legacyCount ? await countBillable(metered, plan.billableCalls) : [];
      if (modernCount) {
        const modern = await modernClientsOn(metered.stack, { ownsStack: false });
        results.billable.push(...(await countModernBillable(modern, plan.billableCalls)));
      }
    } catch (error) {
      results.billableError = error instanceof Error ? error.message : String(error);
      log(`count failed: ${results.billableError}`);
    }
    await stopAll();
  }
  if (soakOnly || (!values["skip-soak"] && results.targets.includes("gateway"))) {
    // A fresh stack of its own: the calls above must not count, and nothing else calls it meanwhile.
    const { batches, callsPerBatch } = plan.soak;
    log(`memory soak: ${batches} × ${callsPerBatch} echo calls on one session of a fresh local stack`);
    try {
      const dir = path.join(work, "soak");
      const soakTarget = await gatewayTarget(soakPorts(), dir);
      started.push(soakTarget);
      results.soak = await runSoak(soakTarget, plan.soak, path.join(dir, "wrangler"), log);
    } catch (error) {
      results.soakError = error instanceof Error ? error.message : String(error);
      log(`soak failed: ${results.soakError}`);
    }
  }
} finally {
  await cleanup();
}

results.machine.loadAtEnd = os.loadavg();
results.durationMs = performance.now() - t0;
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const report = soakOnly ? null : renderResults(results);
const soakReport = results.soak || results.soakError ? renderSoak(results, command) : null;
process.stdout.write(`${[report, soakReport].filter((x) => x !== null).join("\n\n### Memory soak\n\n")}\n`);
if (plan.mode === "full" && !values["no-write"]) {
  const file = path.join(REPO_ROOT, "bench/RESULTS.md");
  if (report !== null) await writeResultsBlock(file, report, "main");
  if (soakReport !== null) await writeResultsBlock(file, soakReport, "soak");
  log(`results written to ${path.relative(REPO_ROOT, file)}`);
}
log(`done in ${(results.durationMs / 1000).toFixed(0)} s`);
