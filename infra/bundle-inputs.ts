import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { buildSync } from "esbuild";
import { catalogRepositoryFiles } from "../container/image.ts";
import { catalog } from "../policies/catalog.ts";
import { hashPaths } from "./source-hash.ts";

/**
 * What the Worker and the bridge image are made of, derived from the bundler's own inputs rather than
 * listed by hand: esbuild (the bundler wrangler runs) follows the imports from each entry point, and
 * its metafile names every repository file it read. A policy environment (policies/environments/) is
 * imported by neither, so a policy-only change re-seeds D1 and changes nothing else (DESIGN.md).
 *
 * Packages are left external: they come from package-lock.json, which both hashes include whole.
 * `verbatimModuleSyntax` keeps every import that is not `import type`, as Node's type stripping does
 * when the bridge runs these files unbundled, so the image's list is exactly what Node loads.
 */

/** The Worker's entry (wrangler-config.ts WORKER_MAIN). */
export const WORKER_ENTRY = "worker/index.ts";
/** The bridge's entry in the image (container/src/entry.ts BRIDGE_ENTRY; a test checks they agree). */
export const BRIDGE_IMAGE_ENTRY = "container/src/main.ts";
/** What `npm ci` in the image installs from. */
export const IMAGE_PACKAGE_FILES = ["package.json", "package-lock.json"] as const;
const LOCKFILE = "package-lock.json";

/** The repository files (sorted, repo-relative, `/`-separated) reachable by imports from `entry`. */
export function moduleFiles(root: string, entry: string): string[] {
  const result = buildSync({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    packages: "external",
    platform: "neutral",
    format: "esm",
    outdir: "out",
    logLevel: "silent",
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
  });
  return Object.keys(result.metafile.inputs)
    .filter((file) => !file.includes("node_modules/") && !file.includes(":"))
    .sort();
}

/** Hash of what the Worker bundle is built from: its import graph and the locked dependencies. */
export function workerBundleSha256(root: string): string {
  return hashPaths(root, [...moduleFiles(root, WORKER_ENTRY), LOCKFILE]);
}

/**
 * The files the bridge image needs from the repository: its import graph, the npm manifests, and the
 * files the catalog's servers run (container/image.ts copies them).
 */
export function bridgeImageFiles(root: string): string[] {
  return [
    ...new Set([...IMAGE_PACKAGE_FILES, ...moduleFiles(root, BRIDGE_IMAGE_ENTRY), ...catalogRepositoryFiles(catalog)]),
  ].sort();
}

/** The bridge's own folder: admitted whole, every file in it is bridge code (a new one is too). */
export const BRIDGE_SOURCE_DIR = "container/src/";

/**
 * The files `.dockerignore` admits into the image's build context (what docker-build hashes and a
 * change of which rebuilds the image). The file is kept to three forms, `*`, `!<file>` and `!<dir>/`,
 * which this reads exactly as Docker does; any other line is refused here so that the two can never
 * disagree.
 */
export function dockerContextFiles(root: string): string[] {
  const lines = readFileSync(path.join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  if (lines[0] !== "*") throw new Error('.dockerignore must start with "*" (exclude everything, then admit files)');
  const admitted: string[] = [];
  for (const line of lines.slice(1)) {
    const entry = line.slice(1);
    if (!line.startsWith("!") || /[*?[\]\\]/.test(entry) || entry.startsWith("/") || entry.includes("..")) {
      throw new Error(`.dockerignore: "${line}" is not of the form !<file> or !<dir>/`);
    }
    admitted.push(...(entry.endsWith("/") ? filesUnder(root, entry) : [entry]));
  }
  return [...new Set(admitted)].sort();
}

function filesUnder(root: string, dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join("/"));
}

/** Hash of the image's build context as `.dockerignore` admits it. */
export function bridgeImageContextSha256(root: string): string {
  return hashPaths(root, dockerContextFiles(root));
}
