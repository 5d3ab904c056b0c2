import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "../../../scripts/lib/server-tools.ts";
import { type ProcessIdentity, processFamily, stillRunning } from "./process-tree.ts";

export interface NpmStartRun {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far, interleaved as it arrived. */
  output(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What a person's Ctrl-C does: SIGINT to the foreground process group (the run's own group). */
  interrupt(): void;
  /** For cleanup after a failure: SIGKILL to the run's group and to every process of `family` still running. */
  forceStop(family?: readonly ProcessIdentity[]): Promise<void>;
}

/**
 * Runs `npm start`'s script (`node scripts/start.ts`, what the npm script runs) in its own process group,
 * like a shell runs a foreground job, with the given settings added to this process's environment.
 */
export function spawnNpmStart(settings: Record<string, string>): NpmStartRun {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "scripts/start.ts")], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...settings },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    output += chunk;
    for (const l of listeners) l();
  });
  child.stderr.on("data", (chunk: string) => {
    output += chunk;
    stderr += chunk;
    for (const l of listeners) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const l of listeners) l();
  });
  const pid = child.pid;
  const killGroup = (signal: NodeJS.Signals) => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone.
    }
  };

  return {
    child,
    output: () => output,
    stderr: () => stderr,
    exited,
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output);
          if (match) return done(() => resolve(match));
          if (hasExited)
            return done(() => reject(new Error(`npm start exited before printing ${pattern}:\n${output}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`npm start printed no ${pattern} in ${timeoutMs} ms:\n${output}`))),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    interrupt: () => killGroup("SIGINT"),
    async forceStop(family = []) {
      // The stack's processes lead their own groups, so the run's group alone does not reach them.
      const known = [...family, ...(pid === undefined || hasExited ? [] : processFamily([pid]))];
      killGroup("SIGKILL");
      for (const p of stillRunning(known)) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }
      if (!hasExited) await exited;
    },
  };
}
