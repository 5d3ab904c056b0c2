// Used by `npm start`'s policy watcher (scripts/lib/policy-watch.ts), in a fresh process each time so
// every edited module of policies/ is read anew.
// Usage: node scripts/compile-dev-policy.ts <out.json> [<policies dir>]   (default: this repository's)
// Writes the compiled dev policy as JSON to <out.json>; on an invalid policy prints the compiler's
// message and exits 1.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type * as Policies from "../policies/index.ts";

const out = process.argv[2];
if (!out) {
  process.stderr.write("usage: node scripts/compile-dev-policy.ts <out.json>\n");
  process.exit(2);
}
// policies/ imports nothing outside itself (DESIGN.md), so any copy of the folder compiles on its own.
const dir = path.resolve(process.argv[3] ?? path.join(import.meta.dirname, "../policies"));
try {
  const policies = (await import(pathToFileURL(path.join(dir, "index.ts")).href)) as typeof Policies;
  await writeFile(out, JSON.stringify(await policies.compilePolicy(policies.POLICIES.dev)));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
