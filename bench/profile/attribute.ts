/** A V8 CPU profile as the DevTools protocol returns it (the fields read here). */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: {
      readonly functionName: string;
      readonly scriptId: string;
      readonly url: string;
      readonly lineNumber: number;
    };
    readonly children?: readonly number[];
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * esbuild's module marker in an unminified bundle: a line `// node_modules/pkg/dist/x.js` or `// worker/a.ts`.
 * A package reached through a symlinked node_modules (a git worktree sharing another's) is printed by its
 * path relative to the bundle's root (`// ../../elsewhere/node_modules/pkg/…`): the part from the first
 * `node_modules/` on is kept.
 */
const MODULE_MARKER = /^\/\/ (?:\S*?\/)?(node_modules\/\S+)$|^\/\/ ((?:worker|container|policies|test|scripts)\/\S+)$/;

/** Groups a module path: a package (`hono`, `@cloudflare/workers-oauth-provider`), or our folder (`worker/mcp`). */
export function groupOf(modulePath: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(modulePath);
  if (pkg?.[1]) return pkg[1];
  const parts = modulePath.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : modulePath;
}

/** For each script, the module markers in line order: a line belongs to the last marker above it. */
function markers(sources: ReadonlyMap<string, string>): Map<string, { line: number; module: string }[]> {
  const out = new Map<string, { line: number; module: string }[]>();
  for (const [scriptId, source] of sources) {
    const found: { line: number; module: string }[] = [];
    source.split("\n").forEach((text, line) => {
      const m = MODULE_MARKER.exec(text.trim());
      const module = m?.[1] ?? m?.[2];
      if (module) found.push({ line, module });
    });
    if (found.length > 0) out.set(scriptId, found);
  }
  return out;
}

/**
 * The Worker's Durable Object classes. Locally they run in the Worker's isolate (one script, one isolate in
 * workerd), so their work shows in its profile; deployed, each object runs in an isolate of its own, near
 * where it was made, and is billed as Durable Object time, not as the Worker's CPU.
 */
export const DURABLE_OBJECT_CLASSES = ["AuditLedger", "McpSession", "BridgeContainer"] as const;

/**
 * For each script, the line ranges of those classes in the bundle. esbuild prints a top-level class as
 * `var Name = class extends …` (or `class Name …`) at column 0 and closes it with `};` (or `}`) at column 0.
 */
function objectRanges(sources: ReadonlyMap<string, string>): Map<string, { from: number; to: number }[]> {
  const out = new Map<string, { from: number; to: number }[]>();
  const names: readonly string[] = DURABLE_OBJECT_CLASSES;
  for (const [scriptId, source] of sources) {
    const lines = source.split("\n");
    const ranges: { from: number; to: number }[] = [];
    lines.forEach((text, line) => {
      const m = /^(?:(?:var|let|const) (\w+) = class\b|class (\w+)\b)/.exec(text);
      const name = m?.[1] ?? m?.[2];
      if (!name || !names.includes(name)) return;
      let end = line + 1;
      while (end < lines.length && !/^};?\s*$/.test(lines[end] ?? "")) end++;
      ranges.push({ from: line, to: end });
    });
    if (ranges.length > 0) out.set(scriptId, ranges);
  }
  return out;
}

function moduleAt(list: readonly { line: number; module: string }[], line: number): string | undefined {
  let lo = 0;
  let hi = list.length - 1;
  let best: string | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const entry = list[mid];
    if (!entry) break;
    if (entry.line <= line) {
      best = entry.module;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/**
 * CPU per module group, by sample COUNT. workerd's V8 profiler records a sample only while this isolate is
 * running (JS, or a native it called); while the thread serves another isolate (the local D1 and KV
 * simulators, wrangler's proxy), waits for I/O or is descheduled by the OS, no sample is taken and the next
 * sample's `timeDelta` absorbs the gap (deltas of 5–25 ms at a 1 ms interval, and their sum is the run's
 * wall time). So CPU is `samples × sampleMs`, never the sum of the deltas. A sample in a native or runtime
 * function (`fetch`, KV `get`, crypto) is counted to the nearest bundled caller above it, so a module's
 * share includes the runtime work it asks for.
 *
 * Samples of the Worker's Durable Objects (DURABLE_OBJECT_CLASSES) are counted apart, in `objectMs`, and
 * not in `cpuMs`: the Worker's own CPU is what is left.
 *
 * D1 client work resumed after an await (`cloudflare-internal:d1-api` with no bundled frame on the stack:
 * the response's parsing, its tracing span) has lost its caller. Both the Worker (a grants read) and the
 * ledgers (their shipments) use D1, so those samples are split between them in the proportion of the D1
 * samples whose caller is known (`orphanD1Ms` says how much was split, `orphanD1ObjectShare` how).
 *
 * `consoleMs`: samples in an anonymous native called straight from our code, which is how `console.*`
 * shows in workerd's profiles (the audit line, audit.ts). Locally that cost is mostly wrangler's: its
 * inspector proxy is attached to the isolate and every console message is serialised to it, so it swings
 * with the machine's load (0.1–0.6 ms per call here). It is reported apart so runs can be compared with
 * and without it.
 */
export function attribute(profile: CpuProfile, sources: ReadonlyMap<string, string>, sampleMs: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const marks = markers(sources);
  const objects = objectRanges(sources);
  const byGroup = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let wallMs = 0;
  let cpuMs = 0;
  let consoleMs = 0;
  let objectMs = 0;
  let orphanD1Ms = 0;
  let knownD1WorkerMs = 0;
  let knownD1ObjectMs = 0;
  profile.samples.forEach((sample, i) => {
    wallMs += (profile.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(sample);
    if (!leaf || leaf.callFrame.functionName === "(idle)") return;
    // Durable Object work: the bundled frame nearest the stack's root is inside one of their classes (an
    // RPC method, an alarm, or their own code resumed after an await).
    let rootMost: CpuProfile["nodes"][number]["callFrame"] | undefined;
    let inD1 = false;
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (frame && marks.has(frame.scriptId) && frame.lineNumber >= 0) rootMost = frame;
      if (frame?.url === D1_CLIENT) inD1 = true;
    }
    if (inD1 && !rootMost) {
      orphanD1Ms += sampleMs;
      return;
    }
    const inObject = rootMost
      ? (objects.get(rootMost.scriptId) ?? []).some((r) => rootMost.lineNumber >= r.from && rootMost.lineNumber <= r.to)
      : false;
    if (inD1 && inObject) knownD1ObjectMs += sampleMs;
    else if (inD1) knownD1WorkerMs += sampleMs;
    if (inObject) {
      objectMs += sampleMs;
      return;
    }
    cpuMs += sampleMs;
    const caller = parent.get(sample);
    const callerFrame = caller === undefined ? undefined : byId.get(caller)?.callFrame;
    const callerList = callerFrame ? marks.get(callerFrame.scriptId) : undefined;
    if (
      leaf.callFrame.functionName === "" &&
      leaf.callFrame.url === "" &&
      callerFrame &&
      callerList &&
      moduleAt(callerList, callerFrame.lineNumber)
    ) {
      consoleMs += sampleMs;
    }
    let group: string | undefined;
    let fn = "";
    for (let id: number | undefined = sample; id !== undefined && group === undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      const list = frame ? marks.get(frame.scriptId) : undefined;
      const module = frame && list ? moduleAt(list, frame.lineNumber) : undefined;
      if (module) {
        group = groupOf(module);
        fn = `${frame?.functionName || "(anonymous)"} (${module.split("/").slice(-2).join("/")})`;
      }
    }
    const label = group ?? `(runtime: ${leaf.callFrame.url || leaf.callFrame.functionName || "?"})`;
    byGroup.set(label, (byGroup.get(label) ?? 0) + sampleMs);
    byFunction.set(fn || label, (byFunction.get(fn || label) ?? 0) + sampleMs);
  });
  const known = knownD1WorkerMs + knownD1ObjectMs;
  // No D1 sample with a known caller: all to the Worker (the conservative side).
  const orphanD1ObjectShare = known === 0 ? 0 : knownD1ObjectMs / known;
  const orphanToWorker = orphanD1Ms * (1 - orphanD1ObjectShare);
  cpuMs += orphanToWorker;
  objectMs += orphanD1Ms - orphanToWorker;
  if (orphanToWorker > 0) {
    const label = `(runtime: ${D1_CLIENT}, resumed)`;
    byGroup.set(label, (byGroup.get(label) ?? 0) + orphanToWorker);
    byFunction.set(label, (byFunction.get(label) ?? 0) + orphanToWorker);
  }
  return {
    byGroup,
    byFunction,
    cpuMs,
    wallMs,
    consoleMs,
    objectMs,
    orphanD1Ms,
    orphanD1ObjectShare,
    objectClassesFound: countRanges(objects),
  };
}

/** The script of workerd's D1 client (the binding's JS half). */
const D1_CLIENT = "cloudflare-internal:d1-api";

function countRanges(objects: ReadonlyMap<string, readonly unknown[]>): number {
  let n = 0;
  for (const ranges of objects.values()) n += ranges.length;
  return n;
}
