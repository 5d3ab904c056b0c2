import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { WRANGLER_OFFLINE_ENV } from "../../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../../scripts/lib/server-tools.ts";

const run = promisify(execFile);

/** `wrangler d1 execute DB --local` on the running stack's local D1 (the SQLite files wrangler dev serves). */
function wranglerD1(stateDir: string, args: readonly string[]) {
  return run(
    process.execPath,
    [
      path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      path.join(stateDir, "wrangler"),
      ...args,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, ...WRANGLER_OFFLINE_ENV } },
  );
}

/** Runs SQL against the running stack's local D1, as an operator would with `wrangler d1 execute --local`. */
export async function d1Execute(stateDir: string, sql: string): Promise<void> {
  const file = path.join(stateDir, `e2e-${Date.now()}-${Math.random().toString(36).slice(2)}.sql`);
  await writeFile(file, sql);
  await wranglerD1(stateDir, ["--file", file]);
}

/** Runs one SQL query against the running stack's local D1 and returns its rows (`--json`). */
export async function d1Query(stateDir: string, sql: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await wranglerD1(stateDir, ["--json", "--command", sql]);
  const parsed = JSON.parse(stdout) as { results: Record<string, unknown>[] }[];
  return parsed[0]?.results ?? [];
}

/**
 * Audit rows reach D1 from the ledgers just after the answers (worker/audit/ledger.ts): runs `sql` until
 * `done` holds for its rows or `timeoutMs` passes, and returns the last rows either way, so the caller's
 * assertion says what was missing. Every wrangler run takes a second or two: this polls at that pace.
 */
export async function d1QueryUntil(
  stateDir: string,
  sql: string,
  done: (rows: Record<string, unknown>[]) => boolean,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await d1Query(stateDir, sql);
    if (done(rows) || Date.now() > until) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
}
