import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is infra/source-hash.ts). */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Folders never part of what is deployed. */
const SKIPPED_DIRS = new Set(["node_modules", ".git", ".wrangler", "dist", ".hatago"]);

/**
 * SHA-256 over the files under `paths` (files or folders, relative to `root`): each file's
 * repo-relative path and bytes, in sorted order. Same tree ⇒ same hash on any machine; any added,
 * removed, renamed or edited file changes it. Missing paths are hashed as absent, so creating one
 * changes the hash too.
 */
export function hashPaths(
  root: string,
  paths: readonly string[],
  include: (file: string) => boolean = () => true,
): string {
  const files: string[] = [];
  const walk = (relative: string) => {
    const absolute = path.join(root, relative);
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(absolute);
    } catch {
      files.push(`${relative}\u0000<absent>`);
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(absolute)) {
        if (!SKIPPED_DIRS.has(entry)) walk(path.posix.join(relative, entry));
      }
    } else if (stat.isFile() && include(relative)) {
      files.push(relative);
    }
  };
  for (const p of paths) walk(p);
  const hash = createHash("sha256");
  for (const file of [...new Set(files)].sort()) {
    hash.update(file).update("\u0000");
    if (!file.endsWith("\u0000<absent>")) hash.update(readFileSync(path.join(root, file)));
    hash.update("\u0000");
  }
  return hash.digest("hex");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The D1 schema: append-only SQL files (the storage document beside them is not part of it). */
export const MIGRATIONS_DIR = "migrations";
export const isMigrationFile = (file: string) => file.endsWith(".sql");
