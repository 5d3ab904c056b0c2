import { mkdir } from "node:fs/promises";
import { errorText, type Logger } from "../log.ts";
import { listDir, packDir, restoreDir } from "./archive.ts";
import { type StateStore, StateStoreError } from "./store.ts";

/**
 * Keeps one process's data directory outside the container (issue 13, "State that survives").
 *
 * - Restore: once, before the process first starts on this bridge; the process never starts on an empty
 *   directory because the store could not be read (its next save would overwrite the good version), so a
 *   failed restore is retried for RESTORE_RETRY_FOR_MS and then fails the launch (a crash: backoff, park).
 * - Save: `QUIET_SAVE_DELAY_MS` after the process has no call in flight, every `intervalMs` while it runs,
 *   and after it exits (idle, shutdown, crash). Only when something changed (the listing's fingerprint).
 *   A save waits for a moment with no call in flight (a tool call may be writing); after two intervals of
 *   continuous calls it saves anyway. So a bridge killed with SIGKILL loses at most the calls answered in
 *   the last QUIET_SAVE_DELAY_MS, or, under continuous load, 2 × intervalMs.
 * - Atomic: the archive is built whole and sent with its digest; the store keeps it only if complete.
 * - Size: a directory over `maxBytes` is not sent; the refusal is logged and shown in /health, and the
 *   store keeps the last good version.
 */

/** A burst of calls ends: save this long after the last answer (coalesces bursts, keeps the loss window small). */
export const QUIET_SAVE_DELAY_MS = 1_000;
/** Restore retries within this long of the first attempt are logged at debug (the Worker may be starting). */
const RESTORE_QUIET_FOR_MS = 10_000;
/** How long a restore keeps trying an unreachable store (locally the Worker may still be starting). */
const RESTORE_RETRY_FOR_MS = 60_000;
const RESTORE_RETRY_BASE_MS = 250;

export interface StateKeeperOptions {
  /** For logs and health: the child's label, never a principal. */
  readonly label: string;
  readonly server: string;
  /** The credential principal: the person for `per-user`, SHARED_STATE_PRINCIPAL for `shared`. */
  readonly principal: string;
  readonly dir: string;
  readonly store: StateStore;
  readonly maxBytes: number;
  readonly intervalMs: number;
  /** Top-level names never saved (the process's secret files). */
  readonly exclude: ReadonlySet<string>;
  /** True while a call is in flight on the process. */
  readonly busy: () => boolean;
  readonly log: Logger;
}

export interface StateSnapshot {
  readonly restored: boolean;
  readonly saves: number;
  readonly refused: number;
  readonly failed: number;
  readonly lastSavedAt: string | null;
  /** The last save's problem, cleared by the next good save. */
  readonly problem: string | null;
}

export class StateKeeper {
  readonly #o: StateKeeperOptions;
  #restored = false;
  #restoring: Promise<void> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #savedFingerprint: string | undefined;
  #refusedFingerprint: string | undefined;
  #quietTimer: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #deferredTicks = 0;
  #saves = 0;
  #refused = 0;
  #failed = 0;
  #lastSavedAt: string | null = null;
  #problem: string | null = null;
  #disposed = false;
  /** The deployment has no state bucket: the process runs unpersisted (an error in the log and /health). */
  #noStore = false;

  constructor(options: StateKeeperOptions) {
    this.#o = options;
  }

  /** Before each start of the process: waits for a save in progress, restores the first time. */
  async prepare(): Promise<void> {
    await this.#chain;
    if (!this.#restored) {
      this.#restoring ??= this.#restore().finally(() => {
        this.#restoring = undefined;
      });
      await this.#restoring;
    }
    this.#interval ??= setInterval(() => this.#tick(), this.#o.intervalMs).unref();
  }

  /** No call is in flight any more: save shortly unless another call comes. */
  quiet(): void {
    if (this.#disposed || !this.#restored) return;
    if (this.#quietTimer) clearTimeout(this.#quietTimer);
    this.#quietTimer = setTimeout(() => {
      this.#quietTimer = undefined;
      if (!this.#o.busy()) void this.save("quiet");
    }, QUIET_SAVE_DELAY_MS).unref();
  }

  /** Saves now if anything changed; saves never overlap. Never rejects (failures are logged and counted). */
  save(reason: string): Promise<void> {
    if (!this.#restored) return this.#chain; // nothing of ours on disk yet: never overwrite the store
    this.#chain = this.#chain.then(() => this.#save(reason));
    return this.#chain;
  }

  /** Resolves when no save is running. */
  settled(): Promise<void> {
    return this.#chain;
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#quietTimer) clearTimeout(this.#quietTimer);
    if (this.#interval) clearInterval(this.#interval);
    this.#quietTimer = undefined;
    this.#interval = undefined;
  }

  snapshot(): StateSnapshot {
    return {
      restored: this.#restored,
      saves: this.#saves,
      refused: this.#refused,
      failed: this.#failed,
      lastSavedAt: this.#lastSavedAt,
      problem: this.#problem,
    };
  }

  #tick(): void {
    if (this.#o.busy() && this.#deferredTicks === 0) {
      this.#deferredTicks = 1; // try again at the next tick, or as soon as it goes quiet
      return;
    }
    this.#deferredTicks = 0;
    void this.save("interval");
  }

  async #restore(): Promise<void> {
    const { log, label, dir } = this.#o;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const archive = await this.#o.store.load(this.#o.server, this.#o.principal);
        if (archive === null) {
          // Nothing saved yet: whatever is on disk (nothing, in a new container) is the first version.
          await mkdir(dir, { recursive: true, mode: 0o700 });
          log.info("state.restored", { child: label, bytes: 0, fresh: true });
        } else {
          await restoreDir(dir, archive);
          log.info("state.restored", { child: label, bytes: archive.byteLength, ms: Date.now() - started });
        }
        this.#savedFingerprint = (await listDir(dir, this.#o.exclude)).fingerprint;
        this.#restored = true;
        return;
      } catch (error) {
        if (error instanceof StateStoreError && error.code === "no_state_store") {
          // A deployment without the bucket must not stop every per-user server: run, but say so loudly.
          this.#noStore = true;
          this.#restored = true;
          this.#problem = "not persisted: this deployment has no state bucket (BRIDGE_STATE)";
          log.error("state.no_store", { child: label, error: errorText(error) });
          await mkdir(dir, { recursive: true, mode: 0o700 });
          return;
        }
        const waited = Date.now() - started;
        // Locally the bridge starts before the Worker that stores state: the first seconds of retries are
        // expected, so they are debug lines; a store still unreachable after that is a warning.
        const level = waited < RESTORE_QUIET_FOR_MS ? "debug" : "warn";
        log[level]("state.restore_failed", { child: label, attempt, error: errorText(error) });
        if (waited >= RESTORE_RETRY_FOR_MS || this.#disposed) {
          throw new Error(`the saved state could not be restored: ${errorText(error)}`);
        }
        await new Promise((r) => setTimeout(r, Math.min(5_000, RESTORE_RETRY_BASE_MS * 2 ** attempt)));
      }
    }
  }

  async #save(reason: string): Promise<void> {
    const { log, label, dir, maxBytes } = this.#o;
    if (this.#noStore) return;
    try {
      const listing = await listDir(dir, this.#o.exclude);
      if (listing.fingerprint === this.#savedFingerprint) return;
      if (listing.bytes > maxBytes) {
        this.#refused += 1;
        this.#problem = `save refused: the data directory holds ${listing.bytes} bytes, over its limit of ${maxBytes} (stateMaxBytes); the last good version is kept`;
        // Once per distinct content, not once per second.
        if (listing.fingerprint !== this.#refusedFingerprint) {
          log.error("state.save_refused", { child: label, reason, bytes: listing.bytes, limit: maxBytes });
        }
        this.#refusedFingerprint = listing.fingerprint;
        return;
      }
      const started = Date.now();
      const archive = await packDir(dir, listing);
      await this.#o.store.save(this.#o.server, this.#o.principal, archive);
      this.#savedFingerprint = listing.fingerprint;
      this.#saves += 1;
      this.#lastSavedAt = new Date().toISOString();
      this.#problem = null;
      log.info("state.saved", {
        child: label,
        reason,
        bytes: listing.bytes,
        archiveBytes: archive.byteLength,
        ms: Date.now() - started,
      });
    } catch (error) {
      this.#failed += 1;
      this.#problem = `save failed: ${errorText(error)}`;
      log.error("state.save_failed", { child: label, reason, error: errorText(error) });
    }
  }
}
