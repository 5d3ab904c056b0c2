import { cp, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashPaths, isMigrationFile, MIGRATIONS_DIR, REPO_ROOT } from "../../infra/source-hash.ts";

// The migrations command's trigger is this hash: it must change exactly when the schema files do.
let root: string;
const migrationsHash = () => hashPaths(root, [MIGRATIONS_DIR], isMigrationFile);

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "hatago-source-hash-"));
  await cp(path.join(REPO_ROOT, MIGRATIONS_DIR), path.join(root, MIGRATIONS_DIR), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("migrations trigger: the hash of migrations/*.sql", () => {
  it("is the same for the same files (no spurious re-run)", () => {
    expect(migrationsHash()).toBe(hashPaths(REPO_ROOT, [MIGRATIONS_DIR], isMigrationFile));
  });

  it("changes when a new migration is added", async () => {
    const before = migrationsHash();
    await writeFile(path.join(root, MIGRATIONS_DIR, "0099_new_table.sql"), "CREATE TABLE t (x INTEGER) STRICT;\n");
    expect(migrationsHash()).not.toBe(before);
  });

  it("changes when a migration's content changes", async () => {
    const before = migrationsHash();
    await writeFile(path.join(root, MIGRATIONS_DIR, "0001_policy.sql"), "-- edited\n", { flag: "a" });
    expect(migrationsHash()).not.toBe(before);
  });

  it("changes when a migration is renamed (wrangler records applied files by name)", async () => {
    const before = migrationsHash();
    await rename(
      path.join(root, MIGRATIONS_DIR, "0001_policy.sql"),
      path.join(root, MIGRATIONS_DIR, "0001_policies.sql"),
    );
    expect(migrationsHash()).not.toBe(before);
  });

  it("ignores the storage document beside the SQL files", async () => {
    const before = migrationsHash();
    await writeFile(path.join(root, MIGRATIONS_DIR, "STORAGE.md"), "# edited\n", { flag: "a" });
    expect(migrationsHash()).toBe(before);
  });
});

describe("hashPaths", () => {
  it("notices a path that appears later (absent paths are part of the hash)", async () => {
    const before = hashPaths(root, ["worker"]);
    await writeFile(path.join(root, "worker"), "now a file");
    expect(hashPaths(root, ["worker"])).not.toBe(before);
  });
});
