import { createHash, randomBytes } from "node:crypto";
import { cp, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "./server-tools.ts";

/**
 * A fresh local stack's D1 (migrated, then seeded with the dev policy) is the same every time for the same
 * migrations, seed and wrangler: two wrangler processes, ~9 s on this machine, before the Worker can start.
 * The end-to-end tests start ~20 fresh stacks per run, so they pass a templates directory: the first fresh
 * stack of a given content keeps a copy of its wrangler state there, and every later one copies it in (a
 * few milliseconds). `npm start` does not use it: its state directory is made once and kept.
 *
 * Keyed by content (every migration file's name and text, the seed SQL, wrangler.jsonc and wrangler's
 * version), so a changed migration, policy or wrangler never gets an old template. A template is written
 * under a temporary name and renamed into place, so a reader never sees half of one. It is copied only
 * after wrangler's process has exited (no open database), with its -wal and -shm files: SQLite reads the
 * copy as the original.
 */
export async function d1TemplateKey(seedSql: string): Promise<string> {
  const hash = createHash("sha256");
  const migrations = path.join(REPO_ROOT, "migrations");
  for (const file of (await readdir(migrations)).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(`migration ${file}\n`).update(await readFile(path.join(migrations, file)));
  }
  hash.update("\nseed\n").update(seedSql);
  hash.update("\nwrangler.jsonc\n").update(await readFile(path.join(REPO_ROOT, "wrangler.jsonc")));
  const wrangler = JSON.parse(await readFile(path.join(REPO_ROOT, "node_modules/wrangler/package.json"), "utf8")) as {
    version: string;
  };
  hash.update(`\nwrangler ${wrangler.version}\n`);
  return hash.digest("hex").slice(0, 32);
}

/** Copies the template into `persistTo` if one exists for `key`; false when there is none yet. */
export async function copyD1Template(templatesDir: string, key: string, persistTo: string): Promise<boolean> {
  const template = path.join(templatesDir, key);
  if (!(await isDirectory(template))) return false;
  await cp(template, persistTo, { recursive: true });
  return true;
}

/** Keeps `persistTo` (just migrated and seeded, its wrangler processes gone) as the template for `key`. */
export async function saveD1Template(templatesDir: string, key: string, persistTo: string): Promise<void> {
  const template = path.join(templatesDir, key);
  const partial = `${template}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  await cp(persistTo, partial, { recursive: true });
  try {
    await rename(partial, template);
  } catch {
    // Another stack saved the same content first: theirs is as good.
    await rm(partial, { recursive: true, force: true });
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
