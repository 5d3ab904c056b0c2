import { execFile } from "node:child_process";
import { watch } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { type CompiledPolicy, diffPolicies, seedSql } from "../../policies/index.ts";
import { REPO_ROOT } from "./server-tools.ts";

const run = promisify(execFile);

/** Edits come in bursts (an editor writes a temp file, then renames): wait this long after the last one. */
const SETTLE_MS = 300;

export interface PolicyWatchOptions {
  readonly stateDir: string;
  /** `wrangler d1 execute DB --local --persist-to <dir>` as argv, without `--file`. */
  readonly d1Execute: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly seeded: CompiledPolicy;
  readonly log: (line: string) => void;
  /** The folder to watch and compile (tests: a copy); this repository's policies/ by default. */
  readonly policiesDir?: string;
}

/**
 * `npm start` applies policy edits without a restart: it watches `policies/`, compiles the dev policy
 * in a fresh process when a file changes, and re-seeds the local D1 when the compiled policy's hash
 * differs, printing who gains or loses what. An invalid policy is refused with the compiler's message
 * and the last good one stays seeded. The next request is decided by the new policy (grants are read
 * from D1 on every request). Returns a function that stops watching.
 */
export function watchPolicies(options: PolicyWatchOptions): () => void {
  let current = options.seeded;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const out = path.join(options.stateDir, "policy-next.json");
  const dir = options.policiesDir ?? path.join(REPO_ROOT, "policies");
  const apply = async () => {
    try {
      await run(process.execPath, [path.join(REPO_ROOT, "scripts/compile-dev-policy.ts"), out, dir], {
        cwd: REPO_ROOT,
        env: options.env,
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim() || String(error);
      options.log(`policy edit refused, the last good policy stays seeded:\n${stderr}`);
      return;
    }
    const next = JSON.parse(await readFile(out, "utf8")) as CompiledPolicy;
    if (next.hash === current.hash) return;
    const seedFile = path.join(options.stateDir, "seed.sql");
    await writeFile(seedFile, seedSql(next));
    try {
      await run(process.execPath, [...options.d1Execute, "--file", seedFile], { cwd: REPO_ROOT, env: options.env });
    } catch (error) {
      options.log(`policy re-seed failed, the last good policy stays seeded: ${String(error).slice(0, 300)}`);
      return;
    }
    const changes = diffPolicies(current, next);
    current = next;
    const summary = changes.map((c) => {
      const gains = c.changes.filter((x) => x.after !== null && x.before === null).length;
      const losses = c.changes.filter((x) => x.after === null).length;
      const other = c.changes.length - gains - losses;
      return `${c.subject}: +${gains} -${losses}${other > 0 ? ` ~${other}` : ""}`;
    });
    options.log(
      `policy "dev" ${next.hash.slice(0, 12)} seeded${summary.length > 0 ? ` (${summary.join("; ")})` : " (no one's access changed)"}`,
    );
  };
  const watcher = watch(dir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(apply).catch((error: unknown) => options.log(`policy watch: ${String(error)}`));
    }, SETTLE_MS);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
