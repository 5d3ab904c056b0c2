import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { queryLocalD1 } from "../../../scripts/lib/local-d1.ts";
import { WRANGLER_OFFLINE_ENV } from "../../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../../scripts/lib/server-tools.ts";

const run = promisify(execFile);

/** The polling pace: a read is about a millisecond (the file, read directly). */
const POLL_INTERVAL_MS = 100;

/**
 * How long rows must stay the same to count as settled. A ledger ships a row one alarm run after its
 * answer (worker/audit/ledger.ts), a few hundred ms here at most: this is several times that.
 */
const SETTLED_QUIET_MS = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs SQL against the running stack's local D1, as an operator would with `wrangler d1 execute --local`.
 * Writes (edits, triggers, renamed tables) stay on wrangler, the operator's tool; only reads take the file.
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

/**
 * Runs one SQL query against the running stack's local D1 and returns its rows: read-only, straight from
 * the SQLite file wrangler dev serves (scripts/lib/local-d1.ts), seeing every write committed so far.
 */
export function d1Query(stateDir: string, sql: string): Promise<Record<string, unknown>[]> {
  return queryLocalD1(path.join(stateDir, "wrangler"), sql);
}

/**
 * Audit rows reach D1 from the ledgers just after the answers (worker/audit/ledger.ts): runs `sql` until
 * `done` holds for its rows or `timeoutMs` passes, and returns the last rows either way, so the caller's
 * assertion says what was missing.
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
    await sleep(POLL_INTERVAL_MS);
  }
}

/**
 * Like d1QueryUntil, and then until the rows have not changed for SETTLED_QUIET_MS: "every row so far",
 * for a count or a last id taken before the step a test counts the rows of. Taken at once, it could miss
 * an earlier answer's row still on its way, which would then count as the step's.
 */
export async function d1QuerySettled(
  stateDir: string,
  sql: string,
  done: (rows: Record<string, unknown>[]) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>[]> {
  const until = Date.now() + timeoutMs;
  let rows = await d1Query(stateDir, sql);
  let seen = JSON.stringify(rows);
  let changedAt = Date.now();
  while (!(done(rows) && Date.now() - changedAt >= SETTLED_QUIET_MS) && Date.now() <= until) {
    await sleep(POLL_INTERVAL_MS);
    const next = await d1Query(stateDir, sql);
    const text = JSON.stringify(next);
    if (text !== seen) [rows, seen, changedAt] = [next, text, Date.now()];
  }
  return rows;
}
