import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

/** How long a stopped process gets between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 5_000;

/** A process started in its own process group, so stopping it stops everything it started. */
export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  /** The exit code (`null` when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** The exit code and the signal, for saying why a process ended. */
  readonly ended: Promise<ProcessEnd>;
}

export interface ProcessEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** "exit code 3", "killed by SIGKILL": why a process ended, in a few words. */
export function describeEnd(end: ProcessEnd): string {
  return end.signal !== null ? `killed by ${end.signal}` : `exit code ${end.code ?? "unknown"}`;
}

export function startManaged(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; onLine: (line: string) => void },
): Managed {
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: options.env,
    // A new process group: wrangler starts workerd and esbuild, and they must stop with it.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        options.onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    });
  }
  const ended = new Promise<ProcessEnd>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { name, child, exited: ended.then((e) => e.code), ended };
}

/** SIGTERM to the whole group, SIGKILL after the grace period; resolves once the leader has exited. */
export async function stopManaged(proc: Managed, graceMs = STOP_GRACE_MS): Promise<void> {
  const pid = proc.child.pid;
  if (pid === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) {
    signalGroup(pid, "SIGKILL"); // stragglers of an exited leader
    return;
  }
  signalGroup(pid, "SIGTERM");
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
  // The leader is gone; make sure nothing it started lingers.
  signalGroup(pid, "SIGKILL");
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Resolves if nothing listens on host:port; rejects with a clear message if something does. */
export async function assertPortFree(host: string, port: number, setting: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          error.code === "EADDRINUSE"
            ? `port ${port} on ${host} is already in use; stop what uses it or choose another port with ${setting}=<port>`
            : `cannot listen on ${host}:${port} (${error.code ?? error.message}); check ${setting}`,
        ),
      );
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** Polls a URL until it answers 200, the process exits, or the time runs out. */
export async function waitForHealthy(url: string, proc: Managed, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${proc.name} exited before it was ready (see its output above)`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${proc.name} did not become ready at ${url} within ${Math.round(timeoutMs / 1000)} s`);
}
