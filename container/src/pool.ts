import { createHash } from "node:crypto";
import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import { catalog, isolationOf, type ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import type { BridgeConfig } from "./config.ts";
import { type LaunchSpec, launchSpec } from "./launch.ts";
import type { Logger } from "./log.ts";
import { Multiplexer, type ServerCounters } from "./multiplexer.ts";

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
  #serial = 0;

  constructor(config: BridgeConfig, log: Logger, appRoot: string) {
    this.#config = config;
    this.#log = log;
    this.#appRoot = appRoot;
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

  /** Fails start-up early when a hosted server's program is missing from the image. */
  async checkInstalled(): Promise<void> {
    for (const server of this.#config.servers) {
      const spec = launchSpec(catalog[server], this.#context(this.#config.dataDir));
      for (const file of [spec.command, ...spec.args.filter((arg) => path.isAbsolute(arg))]) {
        await access(file).catch(() => {
          throw new Error(`server ${server}: ${file} is not installed`);
        });
      }
    }
  }

  /** Starts the shared children now, so the first call does not pay for a process start. */
  prewarm(): void {
    for (const server of this.#config.servers) {
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
    const mux: Multiplexer = new Multiplexer({
      label: `${server}#${this.#serial}`,
      isolation,
      log: this.#log,
      callTimeoutMs: this.#config.callTimeoutMs,
      idleTimeoutMs: entry.idleTimeoutSeconds * 1000,
      counters: this.countersOf(server),
      onIdleStop: () => {
        if (this.#muxes.get(key) === mux) this.#muxes.delete(key);
      },
      supervisor: {
        maxLineBytes: this.#config.maxLineBytes,
        stopGraceMs: this.#config.stopGraceMs,
        spec: () => this.#spec(entry, dataDir),
      },
    });
    this.#muxes.set(key, mux);
    return mux;
  }

  async #spec(entry: CatalogEntry, dataDir: string): Promise<LaunchSpec> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    return launchSpec(entry, this.#context(dataDir));
  }

  #context(dataDir: string) {
    return { appRoot: this.#appRoot, dataDir, parentEnv: process.env, nodePath: process.execPath };
  }

  health() {
    const servers: Record<string, unknown> = {};
    let ok = true;
    for (const server of this.#config.servers) {
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
        children,
      };
    }
    return { ok, servers };
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.#muxes.values()].map((mux) => mux.stop(reason)));
  }

  killAll(): void {
    for (const mux of this.#muxes.values()) mux.killNow();
  }
}
