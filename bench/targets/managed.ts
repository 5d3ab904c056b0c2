import {
  assertPortFree,
  type Managed,
  startManaged,
  stopManaged,
  waitForHealthy,
} from "../../scripts/lib/processes.ts";
import { REPO_ROOT } from "./target.ts";

/** A server process the bench starts in its own process group; its last output lines explain a failure. */
export interface Started {
  readonly proc: Managed;
  readonly pid: number;
  stop(): Promise<void>;
}

/** How long a target gets to answer its readiness URL (a cold npx-free start is 1–3 s here). */
const READY_TIMEOUT_MS = 30_000;
/** Lines kept from a process's output for the error message if it fails to start. */
const KEPT_LINES = 40;

export async function startAndWait(
  name: string,
  port: number,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  ready: (proc: Managed) => Promise<void>,
): Promise<Started> {
  // A leftover process on our port would answer the readiness check and be measured instead.
  await assertPortFree("127.0.0.1", port, `the bench's port for ${name}`);
  const lines: string[] = [];
  const proc = startManaged(name, process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    onLine: (line) => {
      lines.push(line);
      if (lines.length > KEPT_LINES) lines.shift();
    },
  });
  try {
    await ready(proc);
  } catch (error) {
    await stopManaged(proc);
    throw new Error(`${name} did not start: ${(error as Error).message}\n${lines.join("\n")}`);
  }
  return { proc, pid: proc.child.pid ?? -1, stop: () => stopManaged(proc) };
}

/** Ready when `url` answers 200. */
export const healthy = (url: string) => (proc: Managed) => waitForHealthy(url, proc, READY_TIMEOUT_MS);

/** Ready when something accepts HTTP on `url` (any status: the peers have no health route by default). */
export const listening = (url: string) => async (proc: Managed) => {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error("exited before listening");
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listening at ${url}`);
};
