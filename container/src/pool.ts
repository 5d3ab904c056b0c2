import { createHash } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { catalog, connectionOf, isolationOf, type ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import type { BridgeConfig } from "./config.ts";
import { type ConnectionSource, ConnectionUnavailable } from "./connections.ts";
import {
  CONNECTION_FILE_NAME,
  findOnPath,
  type LaunchContext,
  type LaunchSpec,
  launchSpec,
  missingFor,
} from "./launch.ts";
import type { ChangeListener } from "./listener.ts";
import { ListenerRegistry } from "./listeners.ts";
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

  /** Where people's upstream tokens come from (servers with a `connection`), or null when not configured. */
  readonly #connections: ConnectionSource | null;
  /**
   * SECURITY: the token each per-user process of a connection server holds (by its mux key), as last fetched;
   * `null` = none. Read by `#spec` when the process starts; compared on every call to know when to restart.
   */
  readonly #tokens = new Map<string, { readonly token: string; readonly fingerprint: string } | null>();
  /** Evictions per mux key: a token fetched before an eviction that lands during the fetch is not used. */
  readonly #evictions = new Map<string, number>();
  /** The open `/listen` streams, by mux key (listeners.ts). */
  readonly listeners: ListenerRegistry;

  constructor(
    config: BridgeConfig,
    log: Logger,
    appRoot: string,
    store: StateStore | null = null,
    connections: ConnectionSource | null = null,
  ) {
    this.#connections = connections;
    this.#config = config;
    this.#log = log;
    this.#appRoot = appRoot;
    this.#dirs = new DataDirectories(store, config.stateSaveIntervalMs, log);
    this.listeners = new ListenerRegistry(log);
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

  /**
   * Hears (server, principal)'s process, as `listener`, while it runs: never starts it, never keeps it running
   * (listen.ts). Returns the removal.
   */
  listen(server: ServerId, principal: string, listener: ChangeListener): () => void {
    const key = muxKey(server, principal);
    return this.listeners.add(key, server, listener, () => this.#muxes.get(key));
  }

  muxFor(server: ServerId, principal: string): Multiplexer {
    const isolation = isolationOf(server);
    const key = muxKey(server, principal);
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
          // SECURITY: a person's token stays in this bridge's memory only while their process may run.
          this.#tokens.delete(key);
          this.#dirs.forget(label);
        });
      },
      onQuiet: () => keeper?.quiet(),
      onChildExit: () => void keeper?.save("exit"),
      listeners: () => this.listeners.of(key),
      onReady: () => this.listeners.ready(key, mux),
      supervisor: {
        maxLineBytes: this.#config.maxLineBytes,
        stopGraceMs: this.#config.stopGraceMs,
        spec: async () => {
          // Restored before the process starts (and before its secret files are written).
          await keeper?.prepare();
          // The person's token, fetched right before their process starts (none when not connected).
          if (connectionOf(server) && isolation === "per-user") await this.#refreshToken(key, server, principal, null);
          return this.#spec(server, entry, dataDir, this.#tokens.get(key)?.token ?? null);
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

  /**
   * Before a `tools/call` to a server with a connection: asks the Worker for the caller's token (the Worker
   * refreshes it when near expiry and audits the use), and restarts the caller's process when the token it
   * holds is not that one (connected, refreshed, reconnected as someone else upstream, or gone). Restart, not a
   * re-read file: most servers read their token once, from the environment, at start. Answers a message for
   * the person when there is no usable connection.
   */
  async connectionFor(
    server: ServerId,
    principal: string,
    tool: string | null,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly message: string }> {
    if (!connectionOf(server) || isolationOf(server) !== "per-user") return { ok: true };
    const key = `${server}\u0000${principal}`;
    let outcome: Awaited<ReturnType<ServerPool["connectionFor"]>>;
    try {
      outcome = await this.#refreshToken(key, server, principal, tool);
    } catch (error) {
      if (!(error instanceof ConnectionUnavailable)) throw error;
      return { ok: false, message: `Your connection could not be checked: ${error.message}` };
    }
    return outcome;
  }

  /** Fetches (server, principal)'s token; restarts their running process when it changed. */
  async #refreshToken(
    key: string,
    server: ServerId,
    principal: string,
    tool: string | null,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly message: string }> {
    if (!this.#connections) {
      this.#tokens.set(key, null);
      return { ok: false, message: "Connections are not configured for this bridge (HATAGO_BRIDGE_CONNECTIONS_URL)." };
    }
    const evictions = this.#evictions.get(key) ?? 0;
    let answer: Awaited<ReturnType<ConnectionSource["fetch"]>>;
    try {
      answer = await this.#connections.fetch(server, principal, tool);
    } catch (error) {
      // Starting a process: run it without a token rather than not at all (tools/list still works).
      if (tool === null) {
        this.#log.warn("connection.unavailable", { server, error: String(error) });
        this.#tokens.set(key, null);
        return { ok: false, message: "no connection" };
      }
      throw error;
    }
    // SECURITY: the connection was deleted (an eviction) while this answer was on its way: it may carry the
    // token just deleted, which must not go back into a process.
    if ((this.#evictions.get(key) ?? 0) !== evictions) {
      this.#tokens.set(key, null);
      return { ok: false, message: "Your connection was removed while this call started; connect again to use it." };
    }
    const next = answer.status === "connected" ? { token: answer.token, fingerprint: answer.fingerprint } : null;
    const had = this.#tokens.get(key);
    this.#tokens.set(key, next);
    if (tool !== null && had !== undefined && (had?.fingerprint ?? null) !== (next?.fingerprint ?? null)) {
      await this.#restart(key, next ? "connection changed" : "connection removed");
    } else if (tool !== null && had === undefined && next !== null) {
      // A process started before this bridge knew of the token (or not started yet): make sure it has it.
      await this.#restart(key, "connection changed");
    }
    return answer.status === "connected" ? { ok: true } : { ok: false, message: answer.message };
  }

  /** Stops the process of `key` so its next start reads the current token; its sessions stay. */
  async #restart(key: string, reason: string): Promise<void> {
    const mux = this.#muxes.get(key);
    if (!mux) return;
    this.#log.info("connection.restart", { child: mux.label, reason });
    await mux.stop(reason);
    // Started again at once (sessions are attached); calls wait for its initialization.
    await mux.ready().catch(() => {});
  }

  /**
   * SECURITY: the Worker deleted (server, principal)'s connection (a disconnect, a block): the token leaves
   * this bridge's memory, the person's process that holds it is stopped, and a token file is removed.
   */
  async evict(server: ServerId, principal: string): Promise<void> {
    const key = `${server}\u0000${principal}`;
    this.#evictions.set(key, (this.#evictions.get(key) ?? 0) + 1);
    this.#tokens.set(key, null);
    const mux = this.#muxes.get(key);
    if (mux) {
      this.#log.info("connection.evicted", { child: mux.label });
      await mux.stop("connection removed");
    }
    const owner = createHash("sha256").update(principal).digest("hex").slice(0, 32);
    await rm(path.join(this.#config.dataDir, server, owner, CONNECTION_FILE_NAME), { force: true });
  }

  async #spec(
    server: ServerId,
    entry: CatalogEntry,
    dataDir: string,
    token: string | null = null,
  ): Promise<LaunchSpec> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // A token file from an earlier start is removed first: a process without a connection must not find one.
    if (entry.connection) await rm(path.join(dataDir, CONNECTION_FILE_NAME), { force: true });
    const spec = launchSpec(entry, { ...this.#context(dataDir, server), connectionToken: token });
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
        // Open `/listen` streams (a count: never whose).
        listening: this.listeners.count(server),
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

/** SECURITY: per-user children are keyed by principal, so one principal's process never serves another. */
function muxKey(server: ServerId, principal: string): string {
  return isolationOf(server) === "shared" ? server : `${server}\u0000${principal}`;
}
