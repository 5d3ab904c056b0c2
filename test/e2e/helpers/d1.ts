import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { WRANGLER_OFFLINE_ENV } from "../../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../../scripts/lib/server-tools.ts";

const run = promisify(execFile);

/**
 * Runs SQL against the running stack's local D1 (the same SQLite files wrangler dev serves), as an
 * operator would with `wrangler d1 execute --local`.
 */
export async function d1Execute(stateDir: string, sql: string): Promise<void> {
  const file = path.join(stateDir, `e2e-${Date.now()}-${Math.random().toString(36).slice(2)}.sql`);
  await writeFile(file, sql);
  await run(
    process.execPath,
    [
      path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      path.join(stateDir, "wrangler"),
      "--file",
      file,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, ...WRANGLER_OFFLINE_ENV } },
  );
}

/** Runs one SQL query against the running stack's local D1 and returns its rows (`wrangler d1 execute --json`). */
export async function d1Query(stateDir: string, sql: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await run(
    process.execPath,
    [
      path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      path.join(stateDir, "wrangler"),
      "--json",
      "--command",
      sql,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, ...WRANGLER_OFFLINE_ENV } },
  );
  const parsed = JSON.parse(stdout) as { results: Record<string, unknown>[] }[];
  return parsed[0]?.results ?? [];
}
