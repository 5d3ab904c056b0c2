import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { LineDecoder } from "./framing.ts";
import type { LaunchSpec } from "./launch.ts";
import { errorText, type Logger } from "./log.ts";

/**
 * Supervises one stdio server process: spawn (fixed argv, no shell, the spec's env only), restart with
 * backoff after a crash, park a crash loop, and stop it gracefully: stdin closed → SIGTERM → SIGKILL.
 *
 * It knows processes, not MCP: the multiplexer on top decides when a process is wanted and speaks the
 * protocol. The spec comes from a function so tests can supervise a fixture process with the same code.
 */

export interface SupervisorOptions {
  /** For logs and health, e.g. "everything#1". Never a principal. */
  readonly label: string;
  readonly spec: () => Promise<LaunchSpec>;
  readonly log: Logger;
  readonly maxLineBytes: number;
  /** Wait this long after closing stdin, then again after SIGTERM, before the next step. */
  readonly stopGraceMs: number;
  readonly backoff?: Partial<BackoffPolicy>;
  readonly onSpawn: (pid: number) => void;
  readonly onLine: (line: string) => void;
  /** `expected` is true for exits the supervisor asked for (stop, idle). */
  readonly onExit: (expected: boolean) => void;
  /** Asked after a crash: is the process still wanted (sessions attached, calls waiting)? */
  readonly wanted: () => boolean;
}

export interface BackoffPolicy {
  /** First restart delay; doubles per recent crash. Short: a crash mid-call should cost little. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** This many crashes within `windowMs` park the process instead of restarting it. */
  readonly crashLoopExits: number;
  readonly windowMs: number;
  /** How long a parked process stays down before demand may try it again. */
  readonly parkMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  baseMs: 100,
  maxMs: 5_000,
  crashLoopExits: 5,
  windowMs: 60_000,
  parkMs: 60_000,
};

export type SupervisorState = "stopped" | "starting" | "running" | "backoff" | "parked" | "stopping";

export interface ExitRecord {
  readonly code: number | null;
  readonly signal: string | null;
  readonly at: string;
}

export interface SupervisorSnapshot {
  readonly label: string;
  readonly state: SupervisorState;
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastExit: ExitRecord | null;
  readonly lastError: string | null;
  readonly parkedUntil: string | null;
}

/** After a SIGTERM/SIGKILL, how long to wait for `close` (all pipes shut) before giving up on them. */
const CLOSE_AFTER_EXIT_MS = 200;
/** Child stderr lines longer than this are truncated in the log. */
const STDERR_LOG_CHARS = 2_000;

export class ChildSupervisor {
  readonly #o: SupervisorOptions;
  readonly #backoff: BackoffPolicy;
  #state: SupervisorState = "stopped";
  #proc: ChildProcessWithoutNullStreams | undefined;
  #crashes: number[] = [];
  #restarts = 0;
  #lastExit: ExitRecord | null = null;
  #lastError: string | null = null;
  #parkedUntil = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  /** A start was asked for during a stop: it runs once the stopped process's exit is processed. */
  #startAfterStop = false;
  #abortReason: string | undefined;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  }

  get state(): SupervisorState {
    return this.#state;
  }

  get pid(): number | null {
    return this.#proc?.pid ?? null;
  }

  /** Milliseconds until a parked process may be tried again (0 when not parked). */
  parkedForMs(now = Date.now()): number {
    return this.#state === "parked" ? Math.max(0, this.#parkedUntil - now) : 0;
  }

  /** Makes sure a process is running or on its way. Returns false while parked. */
  ensureStarted(): boolean {
    switch (this.#state) {
      case "running":
      case "starting":
      case "backoff":
        return true;
      case "stopping":
        // A stop in progress finishes first; the caller's demand restarts it afterwards, in #afterExit. Not on
        // `#stopping`: that resolves on `exit`, before `close` processes the exit, and is already cleared then
        // (a restart asked for in between was lost, and the call waiting for it timed out).
        this.#startAfterStop = true;
        return true;
      case "parked":
        if (Date.now() < this.#parkedUntil) return false;
        this.#crashes = [];
        break;
      case "stopped":
        break;
    }
    void this.#spawn();
    return true;
  }

  /** Writes one framed message. False when there is no live process (the caller fails the call). */
  write(line: string): boolean {
    const proc = this.#proc;
    if (!proc || this.#state !== "running" || !proc.stdin.writable) return false;
    proc.stdin.write(line);
    return true;
  }

  async #spawn(): Promise<void> {
    this.#state = "starting";
    let spec: LaunchSpec;
    try {
      spec = await this.#o.spec();
    } catch (error) {
      this.#lastError = `launch failed: ${errorText(error)}`;
      this.#o.log.error("child.launch_failed", { child: this.#o.label, error: errorText(error) });
      this.#afterExit(null, null, false);
      return;
    }
    if (this.#state !== "starting") return; // stopped while preparing
    // SECURITY: argv from the catalog, `shell: false`, and `env` is the launch spec's allow-listed set
    // only (no inheritance of the bridge's own environment, which holds the bridge secret).
    // `detached` puts the child in its own process group so stop() can signal any grandchildren too.
    const proc = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...spec.env },
      shell: false,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.#proc = proc;
    const stdout = new LineDecoder(this.#o.maxLineBytes, this.#o.onLine, (bytes) =>
      this.#o.log.warn("child.line_dropped", { child: this.#o.label, reason: "oversize", bytes }),
    );
    const stderr = new LineDecoder(
      this.#o.maxLineBytes,
      (line) => this.#o.log.info("child.stderr", { child: this.#o.label, line: line.slice(0, STDERR_LOG_CHARS) }),
      () => {},
    );
    proc.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    proc.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // EPIPE on a dying child is reported by its exit; nothing to do here but not crash.
    proc.stdin.on("error", () => {});
    let done = false;
    const finish = (code: number | null, signal: string | null) => {
      if (done) return;
      done = true;
      if (this.#proc === proc) this.#proc = undefined;
      this.#afterExit(code, signal, this.#state === "stopping");
    };
    proc.on("error", (error) => {
      this.#lastError = `spawn failed: ${errorText(error)}`;
      this.#o.log.error("child.spawn_failed", { child: this.#o.label, error: errorText(error) });
      if (proc.pid === undefined) finish(null, null);
    });
    proc.on("exit", (code, signal) => {
      // Prefer `close` (stdout fully read, so a response written just before exiting is delivered),
      // but do not wait on it forever: a grandchild may hold the pipes open.
      setTimeout(() => finish(code, signal), CLOSE_AFTER_EXIT_MS).unref();
      proc.once("close", () => finish(code, signal));
    });
    if (proc.pid === undefined) return;
    this.#state = "running";
    this.#o.log.info("child.spawned", { child: this.#o.label, pid: proc.pid });
    this.#o.onSpawn(proc.pid);
  }

  #afterExit(code: number | null, signal: string | null, expected: boolean): void {
    this.#lastExit = { code, signal, at: new Date().toISOString() };
    this.#o.log[expected ? "info" : "warn"]("child.exited", { child: this.#o.label, code, signal, expected });
    const startAgain = this.#startAfterStop;
    this.#startAfterStop = false;
    if (expected) {
      this.#state = "stopped";
      this.#o.onExit(true);
      if (startAgain && this.#state === "stopped") void this.#spawn();
      return;
    }
    // The reason is, in order: why we killed it, else its exit status, else the launch/spawn error.
    if (this.#abortReason !== undefined) this.#lastError = this.#abortReason;
    else if (code !== null || signal !== null)
      this.#lastError = signal ? `exited on ${signal}` : `exited with code ${code}`;
    this.#abortReason = undefined;
    const now = Date.now();
    this.#crashes = this.#crashes.filter((at) => now - at < this.#backoff.windowMs);
    this.#crashes.push(now);
    if (this.#crashes.length >= this.#backoff.crashLoopExits) {
      this.#state = "parked";
      this.#parkedUntil = now + this.#backoff.parkMs;
      this.#o.log.error("child.parked", { child: this.#o.label, crashes: this.#crashes.length });
      this.#o.onExit(false);
      return;
    }
    this.#state = "stopped";
    this.#o.onExit(false);
    if (!this.#o.wanted()) return;
    const delay = Math.min(this.#backoff.maxMs, this.#backoff.baseMs * 2 ** (this.#crashes.length - 1));
    this.#state = "backoff";
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#state !== "backoff") return;
      this.#restarts += 1;
      void this.#spawn();
    }, delay);
  }

  /** Graceful stop: close stdin, wait, SIGTERM the group, wait, SIGKILL the group. Resolves on exit. */
  stop(reason: string): Promise<void> {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const proc = this.#proc;
    if (!proc || this.#state === "stopped" || this.#state === "parked") {
      if (this.#state === "backoff" || this.#state === "starting") this.#state = "stopped";
      return this.#stopping ?? Promise.resolve();
    }
    if (this.#stopping) return this.#stopping;
    this.#state = "stopping";
    this.#o.log.info("child.stopping", { child: this.#o.label, pid: proc.pid, reason });
    const grace = this.#o.stopGraceMs;
    this.#stopping = new Promise<void>((resolve) => {
      const exited = () => proc.exitCode !== null || proc.signalCode !== null;
      const timers: NodeJS.Timeout[] = [];
      proc.once("exit", () => {
        for (const t of timers) clearTimeout(t);
        resolve();
      });
      proc.stdin.end();
      timers.push(
        setTimeout(() => {
          if (!exited()) signalGroup(proc, "SIGTERM");
        }, grace),
        setTimeout(() => {
          if (!exited()) signalGroup(proc, "SIGKILL");
        }, grace * 2),
      );
    }).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  /**
   * Kills a process that is alive but useless (e.g. it failed the MCP handshake). Its exit counts as a
   * crash: restart with backoff, parking if it keeps happening.
   */
  abort(reason: string): void {
    const proc = this.#proc;
    if (!proc || this.#state !== "running") return;
    this.#abortReason = reason;
    this.#o.log.warn("child.aborted", { child: this.#o.label, pid: proc.pid, reason });
    signalGroup(proc, "SIGKILL");
  }

  /** Last resort when the bridge itself is exiting: SIGKILL the group now, synchronously. */
  killNow(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const proc = this.#proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) signalGroup(proc, "SIGKILL");
  }

  snapshot(): SupervisorSnapshot {
    return {
      label: this.#o.label,
      state: this.#state,
      pid: this.pid,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
      lastError: this.#lastError,
      parkedUntil: this.#state === "parked" ? new Date(this.#parkedUntil).toISOString() : null,
    };
  }
}

function signalGroup(proc: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): void {
  const pid = proc.pid;
  if (pid === undefined) return;
  try {
    // Negative pid: the whole process group the child leads (spawned with `detached: true`).
    process.kill(-pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // Already gone.
    }
  }
}
