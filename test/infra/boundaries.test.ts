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
