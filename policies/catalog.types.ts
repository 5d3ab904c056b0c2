import type { Level } from "./levels.ts";

/**
 * How the bridge runs a server's processes.
 * - `per-user`: a process per principal (sessions of one principal share it). The default: a stdio
 *   server written for one local user keeps state (files, memory, caches) that must not leak.
 * - `shared`: one process for everyone; the bridge remaps JSON-RPC ids so answers never cross users.
 *   Only for servers that keep no per-user state.
 */
export type Isolation = "per-user" | "shared";

/** The MCP tool annotations we record (the MCP `ToolAnnotations` hints). */
export interface ToolAnnotations {
  readonly title?: string;
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

/** One stdio MCP server the gateway can run. */
export interface CatalogEntry {
  /** Shown to people (consent page, README). */
  readonly title: string;
  /** The npm package that provides the server; it is a dependency of this repository. */
  readonly package: string;
  /**
   * The fixed argv. No shell ever runs it. `argv[0] === "node"` means the bridge's own Node binary;
   * an argument starting with `./` is a path relative to the application root (the repository locally,
   * `/app` in the image). Nothing in a request can change it.
   */
  readonly argv: readonly [string, ...string[]];
  /**
   * Environment for the child: names copied from the bridge's environment when set (an allow-list;
   * nothing else is inherited), plus fixed values. In a fixed value, `{dataDir}` is replaced with the
   * process's own data directory (per principal for `per-user`), so state stays with its owner.
   */
  readonly env?: {
    readonly inherit?: readonly string[];
    readonly set?: Readonly<Record<string, string>>;
  };
  /** Defaults to `per-user`. */
  readonly isolation?: Isolation;
  /** A process with no session and no call for this long is stopped. */
  readonly idleTimeoutSeconds: number;
  /** Levels for tools whose annotations would say something else (e.g. a "read" that leaks secrets). */
  readonly toolLevels?: Readonly<Record<string, Level>>;
}

/** A server's tools as recorded by `npm run catalog:snapshot`. */
export interface ServerSnapshot {
  readonly server: { readonly name: string; readonly version: string };
  readonly tools: Readonly<Record<string, { readonly annotations: ToolAnnotations; readonly level: Level }>>;
}
