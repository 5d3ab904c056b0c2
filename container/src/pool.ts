import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { catalog, isolationOf, type ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import type { BridgeConfig } from "./config.ts";
import { findOnPath, type LaunchContext, type LaunchSpec, launchSpec, missingFor } from "./launch.ts";
import type { Logger } from "./log.ts";
import { Multiplexer, type ServerCounters } from "./multiplexer.ts";
import { secretsFor } from "./secrets.ts";
import { DataDirectories } from "./state/directories.ts";
import type { StateKeeper } from "./state/keeper.ts";
import type { StateStore } from "./state/store.ts";

/**
 * The children this bridge runs, one multiplexer each, keyed per catalog isolation:
 * `per-user` → (server, principal), `shared` → server. Children start on demand (shared ones at boot)
 * and leave the pool when they idle out.
 */
export class ServerPool {
  readonly #config: BridgeConfig;
  readonly #log: Logger;
  readonly #appRoot: string;
  readonly #muxes = new Map<string, Multiplexer>();
  readonly counters = new Map<ServerId, ServerCounters>();
  /** Servers this bridge does not run because something is missing here, and what (local only). */
  readonly skipped = new Map<ServerId, string>();
  #serial = 0;
  /** The Python 3 on PATH (the image's /usr/bin/python3), for `python` entries without a package. */
  readonly #python = findOnPath("python3", process.env.PATH);

  /** Data directories kept outside the container (issue 13): restored before a start, saved after. */
  readonly #dirs: DataDirectories;

  constructor(config: BridgeConfig, log: Logger, appRoot: string, store: StateStore | null = null) {
    this.#config = config;
    this.#log = log;
    this.#appRoot = appRoot;
    this.#dirs = new DataDirectories(store, config.stateSaveIntervalMs, log);
    for (const server of config.servers) this.counters.set(server, { inFlight: 0 });
  }

  hosts(server: ServerId): boolean {
    return this.counters.has(server);
  }

  countersOf(server: ServerId): ServerCounters {
    const counters = this.counters.get(server);
    if (!counters) throw new Error(`server ${server} is not hosted here`);
    return counters;
  }

  /**
   * Checks that every hosted server can start here (its runtime, program and required secrets). In the
   * image, where the catalog built everything in, a missing one is a start-up error; locally
   * (`HATAGO_BRIDGE_MISSING_SERVERS=skip`, set by `npm start`) it is skipped with one line saying what
   * to install, and the rest of the catalog is served.
   */
  async checkInstalled(): Promise<void> {
    for (const server of [...this.counters.keys()]) {
      const missing = missingFor(catalog[server], this.#context(this.#config.dataDir, server));
      if (missing === null) continue;
      if (this.#config.missingServers !== "skip") throw new Error(`server ${server}: ${missing}`);
      this.#log.warn("server.skipped", { server, missing });
      this.skipped.set(server, missing);
      this.counters.delete(server);
    }
  }

  /** Starts the shared children now, so the first call does not pay for a process start. */
  prewarm(): void {
    for (const server of this.counters.keys()) {
      if (isolationOf(server) === "shared")
        void this.muxFor(server, "")
          .ready()
          .catch(() => {});
    }
  }

  muxFor(server: ServerId, principal: string): Multiplexer {
    const isolation = isolationOf(server);
    // SECURITY: per-user children are keyed by principal, so one principal's process never serves another.
    const key = isolation === "shared" ? server : `${server}\u0000${principal}`;
    const existing = this.#muxes.get(key);
    if (existing) return existing;
    const entry: CatalogEntry = catalog[server];
    // The data directory is named by a hash: a principal string never becomes a path.
    const owner = isolation === "shared" ? "shared" : createHash("sha256").update(principal).digest("hex").slice(0, 32);
    const dataDir = path.join(this.#config.dataDir, server, owner);
    this.#serial += 1;
    const label = `${server}#${this.#serial}`;
    let keeper: StateKeeper | null = null;
    const mux: Multiplexer = new Multiplexer({
      label,
      isolation,
      log: this.#log,
      callTimeoutMs: this.#config.callTimeoutMs,
      idleTimeoutMs: entry.idleTimeoutSeconds * 1000,
      counters: this.countersOf(server),
      onIdleStop: () => {
        // The exit's save runs first: a new process for this key must restore what it wrote.
        void (keeper?.settled() ?? Promise.resolve()).then(() => {
          if (this.#muxes.get(key) !== mux || mux.ports.size > 0 || mux.pending.size > 0) return;
          this.#muxes.delete(key);
          this.#dirs.forget(label);
        });
      },
      onQuiet: () => keeper?.quiet(),
      onChildExit: () => void keeper?.save("exit"),
      supervisor: {
        maxLineBytes: this.#config.maxLineBytes,
        stopGraceMs: this.#config.stopGraceMs,
        spec: async () => {
          // Restored before the process starts (and before its secret files are written).
          await keeper?.prepare();
          return this.#spec(server, entry, dataDir);
        },
      },
    });
    keeper = this.#dirs.keeperFor({
      label,
      server,
      entry,
      isolation,
      principal,
      dir: dataDir,
      busy: () => mux.pending.size > 0,
    });
    this.#muxes.set(key, mux);
    return mux;
  }

  async #spec(server: ServerId, entry: CatalogEntry, dataDir: string): Promise<LaunchSpec> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const spec = launchSpec(entry, this.#context(dataDir, server));
    // File secrets: private to the process's own directory, rewritten at each start (a rotated value lands).
    for (const file of spec.files ?? []) await writeFile(file.path, file.contents, { mode: 0o600 });
    return spec;
  }

  #context(dataDir: string, server: ServerId): LaunchContext {
    return {
      appRoot: this.#appRoot,
      dataDir,
      parentEnv: process.env,
      nodePath: process.execPath,
      pythonPath: this.#python,
      secrets: secretsFor(server, catalog[server], process.env),
    };
  }

  health() {
    const servers: Record<string, unknown> = {};
    let ok = true;
    // Skipped servers (missing here, local only) are shown and do not make the bridge unhealthy: the
    // person running it was told what to install, and the rest of the catalog answers.
    for (const [server, missing] of this.skipped) {
      servers[server] = { isolation: isolationOf(server), available: false, skipped: missing, running: 0, restarts: 0 };
    }
    for (const server of this.counters.keys()) {
      const children = [...this.#muxes.values()]
        .filter((m) => m.label.startsWith(`${server}#`))
        .map((m) => m.snapshot());
      // A server can answer unless every process it has is parked in a crash loop.
      const available = !(children.length > 0 && children.every((c) => c.state === "parked"));
      ok &&= available;
      servers[server] = {
        isolation: isolationOf(server),
        available,
        running: children.filter((c) => c.state === "running").length,
        restarts: children.reduce((sum, c) => sum + c.restarts, 0),
        inFlight: this.countersOf(server).inFlight,
        state: this.#dirs.health(children.map((c) => c.label)),
        children,
      };
    }
    return { ok, servers };
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.#muxes.values()].map((mux) => mux.stop(reason)));
    // Each exit queued a save; this waits for them (and saves anything changed since).
    await this.#dirs.saveAll(reason);
  }

  /** Whether data directories are kept outside this bridge (HATAGO_BRIDGE_STATE_URL). */
  get statePersisted(): boolean {
    return this.#dirs.persisted;
  }

  killAll(): void {
    for (const mux of this.#muxes.values()) mux.killNow();
  }
}
