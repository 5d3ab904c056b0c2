import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../infra/source-hash.ts";

// DESIGN.md: infra/ may import policies/ and migrations/; from worker/ only the binding-name constants
// (worker/bindings.ts), so the Worker's code never runs inside a deployment. Nothing imports infra/.
function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (entry === "node_modules") return [];
    return statSync(full).isDirectory() ? tsFiles(full) : full.endsWith(".ts") ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm)]
    .map((m) => m[1] ?? "")
    .filter((s) => s.startsWith("."))
    .map((s) => path.relative(REPO_ROOT, path.resolve(path.dirname(file), s)));
}

describe("module boundaries of infra/", () => {
  it("imports nothing from worker/ but worker/bindings.ts", () => {
    const fromWorker = tsFiles(path.join(REPO_ROOT, "infra"))
      .flatMap(importsOf)
      .filter((target) => target.startsWith(`worker${path.sep}`));
    expect(fromWorker.length).toBeGreaterThan(0);
    expect([...new Set(fromWorker)]).toEqual(["worker/bindings.ts"]);
  });

  it("is imported by nothing outside infra/ and its tests", () => {
    for (const folder of ["worker", "container", "policies", "scripts"]) {
      for (const file of tsFiles(path.join(REPO_ROOT, folder))) {
        for (const target of importsOf(file)) expect(target.startsWith(`infra${path.sep}`), file).toBe(false);
      }
    }
  });
});

/** The folders DESIGN.md gives a rule ("Folders and what depends on what"), as the test reads them. */
const inRepo = (file: string) => path.relative(REPO_ROOT, file);
const under = (folder: string) => (target: string) => target.startsWith(`${folder}${path.sep}`);

/** Every relative import (type-only ones included) of the .ts files under `folders`, as repo paths. */
function importGraph(folders: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const folder of folders) {
    for (const file of tsFiles(path.join(REPO_ROOT, folder))) graph.set(inRepo(file), importsOf(file));
  }
  return graph;
}

describe("module boundaries of policies/, worker/ and container/ (DESIGN.md)", () => {
  it("policies/ imports nothing of ours outside policies/", () => {
    const outside = [...importGraph(["policies"])].flatMap(([file, targets]) =>
      targets.filter((t) => !under("policies")(t)).map((t) => `${file} → ${t}`),
    );
    expect(outside).toEqual([]);
  });

  /**
   * KNOWN EXCEPTION, found when this test was written and left to the owner of worker/bridge/: the
   * Worker builds the container's environment with `secretVariable` from the bridge's secrets module.
   * DESIGN.md allows only the contract module; the function belongs there (or in policies/).
   */
  const WORKER_EXCEPTIONS = new Set(["worker/bridge/container.ts → container/src/secrets.ts"]);

  it("worker/ imports only policies/ and, of the bridge, its contract module (container/src/contract.ts)", () => {
    const outside = [...importGraph(["worker"])].flatMap(([file, targets]) =>
      targets
        .filter(
          (t) => !under("worker")(t) && !under("policies")(t) && t !== path.join("container", "src", "contract.ts"),
        )
        .map((t) => `${file} → ${t}`),
    );
    expect(outside.filter((edge) => !WORKER_EXCEPTIONS.has(edge))).toEqual([]);
  });

  it("container/ imports of policies/ only the catalog (catalog.ts and its types), and nothing of worker/", () => {
    const catalogFiles = new Set([path.join("policies", "catalog.ts"), path.join("policies", "catalog.types.ts")]);
    const outside = [...importGraph(["container"])].flatMap(([file, targets]) =>
      targets.filter((t) => !under("container")(t) && !catalogFiles.has(t)).map((t) => `${file} → ${t}`),
    );
    expect(outside).toEqual([]);
  });

  /**
   * KNOWN EXCEPTION, left to their owners: the console pages import their router's helpers and the router
   * imports the pages (worker/admin/), and the connections routes (worker/connect/, in progress) reach the
   * admin router through the console session. Cycles wholly inside those two folders are reported here,
   * not failed; any cycle touching another file fails.
   */
  const cycleExempt = (cycle: string) =>
    cycle.split(" → ").every((f) => under(path.join("worker", "admin"))(f) || under(path.join("worker", "connect"))(f));

  it("no import cycles in policies/, worker/ or container/ (type-only imports count: they were the cycles)", () => {
    const graph = importGraph(["policies", "worker", "container"]);
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, trail: string[]) => {
      state.set(file, "open");
      for (const target of graph.get(file) ?? []) {
        if (state.get(target) === "open") cycles.push([...trail.slice(trail.indexOf(target)), target].join(" → "));
        else if (!state.has(target) && graph.has(target)) visit(target, [...trail, target]);
      }
      state.set(file, "done");
    };
    for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file, [file]);
    const exempt = cycles.filter(cycleExempt);
    if (exempt.length > 0) console.warn(`known import cycles (worker/admin, worker/connect):\n${exempt.join("\n")}`);
    expect(cycles.filter((c) => !cycleExempt(c))).toEqual([]);
  });
});
