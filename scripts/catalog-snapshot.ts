// Usage: npm run catalog:snapshot
// Starts every catalog server over stdio, lists its tools and rewrites policies/catalog.snapshot.ts.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, readCatalogSnapshot, renderSnapshotFile } from "./lib/server-tools.ts";

const target = path.join(REPO_ROOT, "policies/catalog.snapshot.ts");
const snapshot = await readCatalogSnapshot();
await writeFile(target, renderSnapshotFile(snapshot));
for (const [id, s] of Object.entries(snapshot)) {
  process.stdout.write(`${id}: ${s.server.name} ${s.server.version}, ${Object.keys(s.tools).length} tools\n`);
}
process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);
