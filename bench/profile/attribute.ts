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

/** esbuild's module marker in an unminified bundle: a line `// node_modules/pkg/dist/x.js` or `// worker/a.ts`. */
const MODULE_MARKER = /^\/\/ ((?:node_modules|worker|container|policies|test|scripts)\/\S+)$/;

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
      if (m?.[1]) found.push({ line, module: m[1] });
    });
    if (found.length > 0) out.set(scriptId, found);
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
 * Self time per module group. A sample in a native or runtime function (`fetch`, KV `get`, crypto) is
 * counted to the nearest bundled caller above it, so a module's share includes the runtime work it asks for.
 */
export function attribute(profile: CpuProfile, sources: ReadonlyMap<string, string>) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const marks = markers(sources);
  const byGroup = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  profile.samples.forEach((sample, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    const leaf = byId.get(sample);
    if (!leaf) return;
    if (leaf.callFrame.functionName === "(idle)") {
      idleMs += ms;
      return;
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
    byGroup.set(label, (byGroup.get(label) ?? 0) + ms);
    if (fn) byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  });
  return { byGroup, byFunction, totalMs, idleMs };
}
