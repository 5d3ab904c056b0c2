import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../../scripts/lib/local-stack.ts";

/** Options a test may add to what `npm start` passes. */
export type StackExtras = Pick<
  LocalStackOptions,
  "workerEntry" | "bridgeEntry" | "maxBridgeRestarts" | "connect" | "watchPolicies" | "policiesDir" | "workerSettings"
>;

/** Lines of stack output kept for a failure message; the rest is dropped. */
const LOG_TAIL_LINES = 60;

/**
 * Ports of one test stack, from the file's own range: the Worker on `base`, the bridge on `base + 1`,
 * the workerd inspector on `base + 2`. Nothing else of the stack listens.
 */
export function stackOptions(base: number, stateDir: string, logs: string[]): LocalStackOptions {
  return {
    host: "127.0.0.1",
    port: base,
    bridgePort: base + 1,
    inspectorPort: base + 2,
    stateDir,
    // A fresh stack copies a migrated, seeded D1 instead of running wrangler twice (~9 s per stack).
    d1TemplatesDir: path.join(tmpdir(), "hatago-e2e-d1-templates"),
    log: (source, line) => {
      logs.push(`[${source}] ${line}`);
      if (process.env.HATAGO_E2E_VERBOSE) process.stderr.write(`[${source}] ${line}\n`);
    },
  };
}

/** A private state directory under the OS temp dir (D1/KV on disk, bridge data, the dev secret). */
export async function tempStateDir(label: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `hatago-e2e-${label}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * `startLocalStack` exactly as `npm start` calls it, on a state directory the caller owns (so a second
 * start can reuse it; `startTestStack` below makes a fresh one). A start that fails
 * carries the stack's last output, since the error itself only says "see its output above".
 */
export async function startStackIn(
  base: number,
  stateDir: string,
  extra: StackExtras = {},
): Promise<{ stack: LocalStack; logs: string[] }> {
  const logs: string[] = [];
  try {
    return { stack: await startLocalStack({ ...stackOptions(base, stateDir, logs), ...extra }), logs };
  } catch (error) {
    const tail = logs.slice(-LOG_TAIL_LINES).join("\n");
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- stack output ---\n${tail}`, {
      cause: error,
    });
  }
}

export interface TestStack extends LocalStack {
  readonly stateDir: string;
  /** What the stack's processes printed, for failure messages. */
  readonly output: string[];
  /** Stops the stack and removes its state. */
  dispose(): Promise<void>;
}

/**
 * A stack on a fresh, private state directory that `dispose()` removes. `workerEntry` swaps the Worker's
 * entry module (the metered one, test/workers/metering/metered-worker.ts).
 */
export async function startTestStack(base: number, extra: StackExtras = {}): Promise<TestStack> {
  const state = await tempStateDir("stack");
  try {
    const { stack, logs } = await startStackIn(base, state.dir, extra);
    return {
      ...stack,
      // A getter on the stack (the bridge changes across restarts): spreading would freeze it.
      get processes() {
        return stack.processes;
      },
      stateDir: state.dir,
      output: logs,
      async dispose() {
        await stack.stop();
        await state.remove();
      },
    };
  } catch (error) {
    await state.remove();
    throw error;
  }
}
