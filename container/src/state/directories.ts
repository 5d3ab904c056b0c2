import type { CatalogEntry } from "../../../policies/catalog.types.ts";
import { DEFAULT_STATE_MAX_BYTES, SHARED_STATE_PRINCIPAL } from "../contract.ts";
import { CONNECTION_FILE_NAME } from "../launch.ts";
import type { Logger } from "../log.ts";
import { StateKeeper, type StateSnapshot } from "./keeper.ts";
import type { StateStore } from "./store.ts";

/**
 * The pool's side of state: one keeper per process (per (server, principal), or per shared server), made
 * when its multiplexer is, and the per-server summary /health shows. Without a store (no
 * HATAGO_BRIDGE_STATE_URL) nothing is kept and /health says `persisted: false`.
 */
export class DataDirectories {
  readonly #store: StateStore | null;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #keepers = new Map<string, StateKeeper>();

  constructor(store: StateStore | null, intervalMs: number, log: Logger) {
    this.#store = store;
    this.#intervalMs = intervalMs;
    this.#log = log;
  }

  get persisted(): boolean {
    return this.#store !== null;
  }

  /** A keeper for the process labelled `label`, or null when state is not persisted. */
  keeperFor(options: {
    readonly label: string;
    readonly server: string;
    readonly entry: CatalogEntry;
    readonly isolation: "per-user" | "shared";
    readonly principal: string;
    readonly dir: string;
    readonly busy: () => boolean;
  }): StateKeeper | null {
    if (this.#store === null) return null;
    const keeper = new StateKeeper({
      label: options.label,
      server: options.server,
      // SECURITY: the principal the credential names is the one whose directory this is; a shared
      // server's directory belongs to nobody in particular.
      principal: options.isolation === "shared" ? SHARED_STATE_PRINCIPAL : options.principal,
      dir: options.dir,
      store: this.#store,
      maxBytes: options.entry.stateMaxBytes ?? DEFAULT_STATE_MAX_BYTES,
      intervalMs: this.#intervalMs,
      exclude: secretFileNames(options.entry),
      busy: options.busy,
      log: this.#log,
    });
    this.#keepers.set(options.label, keeper);
    return keeper;
  }

  /** The process left the pool: its last save has run (the caller awaited `settled()`). */
  forget(label: string): void {
    this.#keepers.get(label)?.dispose();
    this.#keepers.delete(label);
  }

  /** Saves every directory that changed (bridge shutdown, after the processes stopped). */
  async saveAll(reason: string): Promise<void> {
    await Promise.all([...this.#keepers.values()].map((k) => k.save(reason)));
  }

  /** What /health shows for one server's processes: counts and problems, never a principal or a path. */
  health(labels: readonly string[]): {
    persisted: boolean;
    saves: number;
    refused: number;
    failed: number;
    problems: string[];
  } {
    const snapshots = labels
      .map((label) => [label, this.#keepers.get(label)?.snapshot()] as const)
      .filter((pair): pair is readonly [string, StateSnapshot] => pair[1] !== undefined);
    return {
      persisted: this.persisted,
      saves: snapshots.reduce((sum, [, s]) => sum + s.saves, 0),
      refused: snapshots.reduce((sum, [, s]) => sum + s.refused, 0),
      failed: snapshots.reduce((sum, [, s]) => sum + s.failed, 0),
      problems: snapshots.filter(([, s]) => s.problem !== null).map(([label, s]) => `${label}: ${s.problem}`),
    };
  }
}

/**
 * SECURITY: a server's `file` secrets are written into its data directory at each start (launch.ts); they
 * are never saved with it (they would land in storage outside the stack's secrets).
 */
function secretFileNames(entry: CatalogEntry): ReadonlySet<string> {
  const names = new Set<string>();
  // A person's upstream token file (issue 17) is never saved with the directory either.
  if (entry.connection) names.add(CONNECTION_FILE_NAME);
  for (const [name, spec] of Object.entries(entry.secrets ?? {})) {
    if (spec.as !== "file") continue;
    const file = spec.fileName ?? `.secret-${name.toLowerCase()}`;
    names.add(file.split("/")[0] ?? file);
  }
  return names;
}
