import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SECRET_VARIABLE_PREFIX } from "../../container/src/secrets.ts";
import { catalog, SERVER_IDS } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";

const entries = SERVER_IDS.map((id) => [id, catalog[id] as CatalogEntry] as const);

describe("catalog entries say how they are installed and started, consistently", () => {
  it.each(entries)("%s: argv[0] matches its runtime (npm → node, python → python)", (_id, entry) => {
    if (entry.install.runtime === "npm") expect(entry.argv[0]).toBe("node");
    if (entry.install.runtime === "python") expect(entry.argv[0]).toBe("python");
  });

  it.each(entries)(
    "%s: an npm entry's package is a dependency of this repository (nothing fetched at run time)",
    (_id, entry) => {
      if (entry.install.runtime !== "npm") return;
      const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
        dependencies: Record<string, string>;
      };
      expect(Object.keys(pkg.dependencies)).toContain(entry.install.package);
    },
  );

  it.each(entries)(
    "%s: files it copies exist, and its `./` arguments are among them or installed packages",
    (_id, entry) => {
      const files = entry.install.runtime === "python" ? (entry.install.files ?? []) : [];
      for (const file of files) expect(() => readFileSync(path.join(REPO_ROOT, file))).not.toThrow();
      for (const arg of entry.argv.filter((a) => a.startsWith("./"))) {
        const relative = arg.slice(2);
        expect(relative.startsWith("node_modules/") || files.includes(relative), arg).toBe(true);
      }
    },
  );
});

describe("secrets reach only their own server (an entry cannot inherit another's)", () => {
  it.each(entries)(
    "%s: its environment allow-list names no HATAGO_ variable (secrets, the bridge's own)",
    (_id, entry) => {
      for (const name of entry.env?.inherit ?? []) expect(name.startsWith("HATAGO_"), name).toBe(false);
      expect(SECRET_VARIABLE_PREFIX.startsWith("HATAGO_")).toBe(true);
    },
  );

  it.each(entries)(
    "%s: secret names are environment variable names, and file secrets name a plain file",
    (_id, entry) => {
      for (const [name, spec] of Object.entries(entry.secrets ?? {})) {
        expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
        if (spec.as === "file") expect(spec.fileName ?? "x").toMatch(/^[A-Za-z0-9._-]+$/);
      }
    },
  );
});
