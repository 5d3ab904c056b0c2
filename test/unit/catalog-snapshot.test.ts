import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { catalog, catalogSnapshot, SERVER_IDS } from "../../policies/index.ts";
import { REPO_ROOT, readCatalogSnapshot, renderSnapshotFile } from "../../scripts/lib/server-tools.ts";

describe("catalog snapshot matches the real servers", () => {
  it("lists exactly the tools, annotations and levels the servers report now (else: npm run catalog:snapshot)", async () => {
    const live = await readCatalogSnapshot();
    expect(live).toEqual(catalogSnapshot);
    // And the committed file is exactly what the script would write.
    const committed = await readFile(path.join(REPO_ROOT, "policies/catalog.snapshot.ts"), "utf8");
    expect(committed).toBe(renderSnapshotFile(live));
  }, 60_000);

  it("has an entry for every catalog server, and every override names a real tool", () => {
    expect(Object.keys(catalogSnapshot).sort()).toEqual(SERVER_IDS);
    for (const id of SERVER_IDS) {
      for (const tool of Object.keys(catalog[id].toolLevels))
        expect(Object.keys(catalogSnapshot[id].tools)).toContain(tool);
    }
  });

  it("server ids cannot contain the tool-name separator `__`", () => {
    for (const id of SERVER_IDS) expect(id).toMatch(/^[a-z][a-z0-9-]*$/);
  });
});
