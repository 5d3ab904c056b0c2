// Usage: node bench/profile/worker.ts [--calls N] [--out FILE.cpuprofile] [--json FILE] [--ports BASE]
//                                    [--v8-flags FLAGS]
// Where the Worker's CPU goes per gateway call: starts the local stack, signs in, makes N echo calls while
// the Worker's isolate is profiled through wrangler's inspector, and prints CPU per call by bundled module
// (esbuild marks each module in the dev bundle with a `// path` comment, so a line maps to its module).
//
// CPU is counted from samples (attribute.ts says why): the local D1 and KV simulators, wrangler's proxy and
// the bridge run outside the Worker's isolate and are excluded; the runtime work the Worker asks for (the
// binding calls' own serialisation, crypto, fetch) is included, as it is billed deployed.
//
// `--v8-flags`: workerd's V8 flags for this run. Default "" (as deployed): the local stack's own default,
// `--gc-global` (scripts/lib/local-stack.ts, a local memory workaround), makes every collection a full one
// and would count GC that a deployed Worker does not do.
import { rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { PORTS } from "../config.ts";
import { echo, uniqueMessage } from "../measure/calls.ts";
import { table } from "../report/format.ts";
import { gatewayTarget } from "../targets/gateway.ts";
import { attribute, type CpuProfile } from "./attribute.ts";
import { Inspector } from "./inspector.ts";

/** 1 ms: finer sampling slows workerd enough to change what it measures. */
const SAMPLE_INTERVAL_US = 1_000;
const WARMUP_CALLS = 50;

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "400" },
    out: { type: "string" },
    json: { type: "string" },
    ports: { type: "string" },
    "v8-flags": { type: "string", default: "" },
  },
});
const calls = Number(values.calls);
const base = values.ports === undefined ? null : Number(values.ports);
const ports = base === null ? PORTS.profile : { worker: base, bridge: base + 1, inspector: base + 2 };
process.env.MINIFLARE_WORKERD_V8_FLAGS = values["v8-flags"];
const stateDir = path.join(os.tmpdir(), `hatago-bench-profile-${process.pid}`);
const target = await gatewayTarget(ports, stateDir);
process.on("exit", () => target.killNow());
try {
  const session = await target.connect("everything", "");
  for (let i = 0; i < WARMUP_CALLS; i++) await echo(target, session, uniqueMessage("warm"));
  const inspector = await Inspector.connect(`ws://127.0.0.1:${ports.inspector}/ws`);
  const sources = await inspector.bundleSources();
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: SAMPLE_INTERVAL_US });
  await inspector.send("Profiler.start");
  let failed = 0;
  for (let i = 0; i < calls; i++) if ((await echo(target, session, uniqueMessage(`p${i}`))) !== "ok") failed++;
  const stopped = (await inspector.send("Profiler.stop")) as { profile: CpuProfile };
  inspector.close();
  await session.close();
  if (values.out) await writeFile(values.out, JSON.stringify(stopped.profile));
  const sampleMs = SAMPLE_INTERVAL_US / 1000;
  const attributed = attribute(stopped.profile, sources, sampleMs);
  const { byGroup, byFunction, cpuMs, wallMs, consoleMs, objectMs } = attributed;
  // `wrangler dev` wraps the Worker in its own middleware (wrangler/templates/middleware); deploys do not.
  const devMiddlewareMs = byGroup.get("wrangler") ?? 0;
  const sorted = (m: Map<string, number>) => [...m].sort(([, a], [, b]) => b - a);
  const top = (m: Map<string, number>, n: number) =>
    sorted(m)
      .slice(0, n)
      .map(([name, ms]) => [name, (ms / calls).toFixed(3), `${((100 * ms) / cpuMs).toFixed(1)}%`]);
  if (values.json) {
    const perCall = (m: Map<string, number>) => Object.fromEntries(sorted(m).map(([k, ms]) => [k, ms / calls]));
    await writeFile(
      values.json,
      JSON.stringify({
        calls,
        failed,
        v8Flags: values["v8-flags"],
        cpuMsPerCall: cpuMs / calls,
        consoleMsPerCall: consoleMs / calls,
        objectMsPerCall: objectMs / calls,
        orphanD1MsPerCall: attributed.orphanD1Ms / calls,
        orphanD1ObjectShare: attributed.orphanD1ObjectShare,
        wallMsPerCall: wallMs / calls,
        loadAverage: os.loadavg(),
        byModule: perCall(byGroup),
        byFunction: perCall(byFunction),
      }),
    );
  }
  process.stdout.write(
    [
      `Worker isolate CPU over ${calls} sequential echo calls: ${(cpuMs / calls).toFixed(3)} ms per call ` +
        `(${Math.round(cpuMs / sampleMs)} samples × ${sampleMs} ms while the isolate ran; wall ${(wallMs / calls).toFixed(2)} ms ` +
        `per call; V8 flags "${values["v8-flags"]}"; ${failed} failed calls; load ${os.loadavg()[0]?.toFixed(2)})`,
      `of which console output: ${(consoleMs / calls).toFixed(3)} ms per call (locally serialised to wrangler's ` +
        `inspector, attribute.ts); without it: ${((cpuMs - consoleMs) / calls).toFixed(3)} ms per call`,
      `and wrangler's dev-only middleware (not in a deployed bundle): ${(devMiddlewareMs / calls).toFixed(3)} ms per ` +
        `call; without both: ${((cpuMs - consoleMs - devMiddlewareMs) / calls).toFixed(3)} ms per call`,
      `not counted: ${(objectMs / calls).toFixed(3)} ms per call in the Worker's Durable Objects (their own isolates ` +
        `when deployed; ${attributed.objectClassesFound} classes found in the bundle)`,
      `D1 client work resumed without its caller: ${(attributed.orphanD1Ms / calls).toFixed(3)} ms per call, ` +
        `${(100 * attributed.orphanD1ObjectShare).toFixed(0)}% counted to the Durable Objects (their share of D1 samples with a known caller)`,
      "",
      table(["module (self time, natives counted to their caller)", "ms per call", "share"], top(byGroup, 25)),
      "",
      table(["function (self time, natives counted to their caller)", "ms per call", "share"], top(byFunction, 30)),
      "",
    ].join("\n"),
  );
} finally {
  await target.stop();
  await rm(stateDir, { recursive: true, force: true });
}
