// Usage: node bench/profile/worker.ts [--calls N] [--out FILE.cpuprofile]
// Where the Worker's CPU goes per gateway call: starts the local stack, signs in, makes N echo calls while
// the Worker's isolate is profiled through wrangler's inspector, and prints CPU per call by bundled module
// (esbuild marks each module in the dev bundle with a `// path` comment, so a line maps to its module).
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

const { values } = parseArgs({
  options: { calls: { type: "string", default: "400" }, out: { type: "string" } },
});
const calls = Number(values.calls);
const stateDir = path.join(os.tmpdir(), `hatago-bench-profile-${process.pid}`);
const target = await gatewayTarget(PORTS.profile, stateDir);
process.on("exit", () => target.killNow());
try {
  const session = await target.connect("everything", "");
  for (let i = 0; i < 50; i++) await echo(target, session, uniqueMessage("warm"));
  const inspector = await Inspector.connect(`ws://127.0.0.1:${PORTS.profile.inspector}/ws`);
  const sources = await inspector.bundleSources();
  await inspector.send("Profiler.enable");
  // 1 ms: finer sampling slows workerd enough to change what it measures.
  await inspector.send("Profiler.setSamplingInterval", { interval: 1_000 });
  await inspector.send("Profiler.start");
  for (let i = 0; i < calls; i++) await echo(target, session, uniqueMessage(`p${i}`));
  const stopped = (await inspector.send("Profiler.stop")) as { profile: CpuProfile };
  inspector.close();
  await session.close();
  if (values.out) await writeFile(values.out, JSON.stringify(stopped.profile));
  const { byGroup, byFunction, totalMs, idleMs } = attribute(stopped.profile, sources);
  const busyMs = totalMs - idleMs;
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort(([, a], [, b]) => b - a)
      .slice(0, n)
      .map(([name, ms]) => [name, (ms / calls).toFixed(3), `${((100 * ms) / busyMs).toFixed(1)}%`]);
  process.stdout.write(
    [
      `Worker isolate CPU over ${calls} sequential echo calls: ${(busyMs / calls).toFixed(2)} ms per call (sampled; idle excluded)`,
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
