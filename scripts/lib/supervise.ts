import { describeEnd, type Managed, stopManaged } from "./processes.ts";

/**
 * Restarts with backoff, as the platform restarts a container that dies: the n-th consecutive restart
 * waits RESTART_BACKOFF_MS[n] (the last value repeats). Short first waits, so one crash costs ~¼ s.
 */
export const RESTART_BACKOFF_MS = [250, 500, 1_000, 2_000, 4_000] as const;
/** Restarts in a row that never become ready before giving up (a crash loop): the Worker stays up and answers 503. */
export const MAX_CONSECUTIVE_RESTARTS = 5;
/** A process that ran this long before dying was healthy: the next restart waits the shortest backoff again. */
export const STABLE_AFTER_MS = 30_000;

export interface SupervisorOptions {
  /** For the terminal lines ("bridge died …"). */
  readonly name: string;
  /** Starts one process. */
  readonly start: () => Managed;
  /** Resolves when a started process is ready; rejects if it is not (it is then stopped and counted as a failed start). */
  readonly ready: (proc: Managed) => Promise<void>;
  /** One line for the person running the stack. */
  readonly log: (line: string) => void;
  readonly backoffMs?: readonly number[];
  readonly maxConsecutiveRestarts?: number;
  readonly stableAfterMs?: number;
}

export interface Supervised {
  /** The process running now, or `null` between a death and its restart (or after giving up). */
  current(): Managed | null;
  /** Resolves if the supervisor gives up (a crash loop); never rejects. */
  readonly gaveUp: Promise<void>;
  /** Stops the process and the supervision: no restart after this. */
  stop(): Promise<void>;
}

/**
 * Starts a process, waits until it is ready, and restarts it when it exits unexpectedly, with one line
 * saying what died, why (exit code or signal) and what happens next. The first start's failure is the
 * caller's (it rejects, so `npm start` stops with the reason); later failures are counted, and after
 * `maxConsecutiveRestarts` in a row the supervisor stops trying and says so.
 */
export async function supervise(options: SupervisorOptions): Promise<Supervised> {
  const backoff = options.backoffMs ?? RESTART_BACKOFF_MS;
  const maxRestarts = options.maxConsecutiveRestarts ?? MAX_CONSECUTIVE_RESTARTS;
  const stableAfter = options.stableAfterMs ?? STABLE_AFTER_MS;
  let stopping = false;
  let current: Managed | null = options.start();
  let startedAt = Date.now();
  let giveUp: () => void = () => {};
  const gaveUp = new Promise<void>((resolve) => {
    giveUp = resolve;
  });
  let wake: () => void = () => {};

  try {
    await options.ready(current);
  } catch (error) {
    await stopManaged(current);
    throw error;
  }

  const loop = async () => {
    // Deaths soon after a start, in a row: how long to wait before the next start.
    let quickDeaths = 0;
    // Restarts in a row that never became ready: a crash loop after `maxRestarts`.
    let failedStarts = 0;
    while (current !== null) {
      const end = await current.ended;
      if (stopping) return;
      const ranMs = Date.now() - startedAt;
      quickDeaths = ranMs >= stableAfter ? 0 : quickDeaths + 1;
      current = null;
      if (maxRestarts === 0) {
        options.log(`${options.name} died (${describeEnd(end)}); restarts are off, so tool calls answer 503.`);
        giveUp();
        return;
      }
      if (failedStarts >= maxRestarts) {
        options.log(
          `${options.name} died (${describeEnd(end)}) and failed to start ${failedStarts} times in a row: giving up. ` +
            "The Worker stays up and tool calls answer 503 until you restart npm start.",
        );
        giveUp();
        return;
      }
      const waitMs = backoff[Math.min(quickDeaths - 1, backoff.length - 1)] ?? backoff[0] ?? 250;
      options.log(
        `${options.name} died (${describeEnd(end)}) after ${formatDuration(ranMs)}; restarting in ${formatDuration(waitMs)} (attempt ${failedStarts + 1} of ${maxRestarts})`,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (stopping) return;
      const next = options.start();
      current = next;
      startedAt = Date.now();
      try {
        await options.ready(next);
        failedStarts = 0;
        options.log(`${options.name} restarted (pid ${next.child.pid ?? "?"}) and is ready`);
      } catch (error) {
        failedStarts++;
        options.log(`${options.name} restart failed: ${error instanceof Error ? error.message : String(error)}`);
        // The next turn of the loop sees it end (now, if it is still running).
        if (next.child.exitCode === null && next.child.signalCode === null) await stopManaged(next);
      }
    }
  };
  void loop();

  return {
    current: () => current,
    gaveUp,
    async stop() {
      stopping = true;
      wake();
      const proc = current;
      current = null;
      if (proc) await stopManaged(proc);
    },
  };
}

function formatDuration(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
