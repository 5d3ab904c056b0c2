import type { Level } from "./levels.ts";

/**
 * How the bridge runs a server's processes.
 * - `per-user`: a process per principal (sessions of one principal share it). The default: a stdio
 *   server written for one local user keeps state (files, memory, caches) that must not leak.
 * - `shared`: one process for everyone; the bridge remaps JSON-RPC ids so answers never cross users.
 *   Only for servers that keep no per-user state.
 */
export type Isolation = "per-user" | "shared";

/**
 * A client capability servers gate tools on (policies/client-capabilities.ts): the client can answer the
 * server's `sampling/createMessage`, form or URL `elicitation/create`, or `roots/list`.
 */
export const CLIENT_CAPABILITY_NAMES = ["sampling", "elicitation.form", "elicitation.url", "roots"] as const;
export type ClientCapabilityName = (typeof CLIENT_CAPABILITY_NAMES)[number];

/** The MCP tool annotations we record (the MCP `ToolAnnotations` hints). */
export interface ToolAnnotations {
  readonly title?: string;
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

/**
 * How a server gets into the image. The image is built from these (container/image.ts renders the
 * Dockerfile from the catalog), and nothing is ever fetched when a server starts.
 * - `npm`: a package that is a dependency of this repository (package.json), installed with `npm ci`.
 * - `python`: run by the image's Python 3. A `package` is installed with `uv` at build time into the
 *   server's own virtual environment (`/opt/hatago/python/<server>`); `files` are copied from the
 *   repository (a server written with the standard library needs only those).
 * - `command`: any executable the image provides, installed by the entry's own build steps.
 */
export type Install =
  | { readonly runtime: "npm"; readonly package: string }
  | {
      readonly runtime: "python";
      readonly package?: { readonly name: string; readonly version: string };
      readonly files?: readonly string[];
    }
  | { readonly runtime: "command"; readonly steps: readonly BuildStep[] };

/** One image build step of a `command` entry. Each is pinned: a version, a file of ours, or a digest. */
export type BuildStep =
  /** Debian packages from the image's distribution (bookworm). */
  | { readonly kind: "debian"; readonly packages: readonly string[] }
  /** A file of this repository, copied to an absolute path in the image. */
  | { readonly kind: "copy"; readonly from: string; readonly to: string }
  /** A release artifact fetched at IMAGE BUILD time only, refused unless its SHA-256 matches. */
  | {
      readonly kind: "download";
      readonly url: string;
      readonly sha256: string;
      readonly to: string;
      readonly executable?: boolean;
    };

/**
 * A secret a server needs (an API key, a database URL): its name, never its value. Values come from the
 * stack's Pulumi secrets when deployed and from `<state dir>/secrets.env` locally, and reach only this
 * server's processes.
 */
export interface SecretSpec {
  /** `env`: an environment variable of that name; `file`: a file in the process's data directory. */
  readonly as: "env" | "file";
  /** For `file`: the file name inside the data directory; the variable `<NAME>_FILE` points at it. */
  readonly fileName?: string;
  /** Shown to the operator when the value is missing. */
  readonly description: string;
  /** The server works without it: a missing value skips nothing. Required unless set. */
  readonly optional?: boolean;
}

/**
 * A person's own upstream account the server acts with (issue 17: "connections"). Only `per-user` servers
 * may declare one (a test refuses it elsewhere): a shared process would hold several people's tokens.
 * The person connects once at `/connect/<provider>`; the bridge fetches that person's token from the Worker
 * right before it starts their process, and restarts the process when the token changed (a refresh, a new
 * connection) or is gone (a disconnect, a block).
 */
export interface ConnectionSpec {
  /** A provider id the Worker is configured with (HATAGO_CONNECT_PROVIDERS), e.g. `github`. */
  readonly provider: string;
  /** The upstream scopes the server needs; shown on the connect page and asked for upstream. */
  readonly scopes: readonly string[];
  /**
   * `env`: the environment variable `name` holds the access token. `file`: the token is written (mode 0600)
   * to a file in the process's private directory, never saved with its state, and `<name>_FILE` names it.
   */
  readonly as: "env" | "file";
  /** The variable the server expects, e.g. `GITHUB_PERSONAL_ACCESS_TOKEN`. */
  readonly name: string;
  /**
   * Opt-in, deployed only: the token is added at the container's egress and never enters the process. The
   * process gets a placeholder in `name` (servers that refuse to start without a token still start); each of
   * its requests to `host` passes through the Worker (`@cloudflare/containers` outbound handler, HTTPS
   * intercepted), which sets `header: <prefix><token>` for the person the container runs for. The process
   * must trust Cloudflare's container CA for HTTPS (infra/README.md, "Egress injection"). Locally (no
   * containers) the token is injected as `as` says.
   */
  readonly egress?: {
    /** The one upstream API host (`api.github.com`): exact, no port, no wildcard. */
    readonly host: string;
    /** Default `authorization`. */
    readonly header?: string;
    /** Put before the token; default `Bearer `. */
    readonly prefix?: string;
  };
}

/** One stdio MCP server the gateway can run. */
export interface CatalogEntry {
  /** Shown to people (consent page, README). */
  readonly title: string;
  /** How the server is installed into the image. */
  readonly install: Install;
  /**
   * The fixed argv. No shell ever runs it. `argv[0]` is `"node"` (the bridge's own Node binary) for `npm`
   * entries, `"python"` (the entry's Python: its virtual environment's, else the image's `python3`) for
   * `python` entries, and the executable for `command` entries (an absolute path, or a name on PATH).
   * An argument starting with `./` is a path relative to the application root (the repository locally,
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
  /**
   * The largest its data directory may grow and still be saved (bytes of its files). Defaults to
   * DEFAULT_STATE_MAX_BYTES (16 MiB, container/src/contract.ts). Beyond it a save is refused (logged, shown in
   * /health) and the last good version is kept.
   */
  readonly stateMaxBytes?: number;
  /** Levels for tools whose annotations would say something else (e.g. a "read" that leaks secrets). */
  readonly toolLevels?: Readonly<Record<string, Level>>;
  /** Secrets by the name the server expects (`GITHUB_TOKEN`), and how each reaches the process. */
  readonly secrets?: Readonly<Record<string, SecretSpec>>;
  /** The person's own upstream account this server acts with (per-user servers only). */
  readonly connection?: ConnectionSpec;
}

/** A server's tools as recorded by `npm run catalog:snapshot`. */
export interface ServerSnapshot {
  readonly server: { readonly name: string; readonly version: string };
  readonly tools: Readonly<
    Record<
      string,
      {
        readonly annotations: ToolAnnotations;
        readonly level: Level;
        /**
         * The server lists this tool only to a client that declared one of these capabilities
         * (policies/client-capabilities.ts); absent when it lists it to every client.
         */
        readonly needs?: readonly ClientCapabilityName[];
      }
    >
  >;
}
