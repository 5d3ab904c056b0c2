import type { CatalogEntry, ConnectionSpec } from "./catalog.types.ts";

/**
 * The servers this gateway runs. Ids are the per-server prefix clients see (`memory__read_graph`), so
 * they are short, lowercase, and never contain the separator `__`.
 *
 * Adding a server: say how it is installed (`install`: an npm dependency, a Python package or files, or
 * any executable with pinned build steps) and started (`argv`), name its secrets, run
 * `npm run catalog:snapshot`, then grant it to someone in `policies/environments/`. The image is
 * rendered from this file (container/image.ts).
 */
export const catalog = {
  memory: {
    title: "Knowledge graph memory",
    install: { runtime: "npm", package: "@modelcontextprotocol/server-memory" },
    argv: ["node", "./node_modules/@modelcontextprotocol/server-memory/dist/index.js"],
    // The graph file lives in the process's data directory: one graph per principal.
    env: { set: { MEMORY_FILE_PATH: "{dataDir}/memory.jsonl" } },
    isolation: "per-user",
    idleTimeoutSeconds: 300,
    toolLevels: {},
  },
  everything: {
    title: "MCP reference server (every protocol feature)",
    install: { runtime: "npm", package: "@modelcontextprotocol/server-everything" },
    argv: ["node", "./node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"],
    isolation: "shared",
    idleTimeoutSeconds: 600,
    toolLevels: {
      // SECURITY: prints the process environment. Read-only by annotation, but environment variables are
      // where secrets live, so only admins may call it.
      "get-env": "admin",
    },
    secrets: {
      // A demo of how a secret reaches exactly one server: `get-env` (admins only) shows it here, and no
      // other server's process ever receives it.
      HATAGO_DEMO_SECRET: { as: "env", optional: true, description: "any value; shown by get-env to admins" },
    },
  },
  notes: {
    title: "Notes (a Python server written with the standard library)",
    // A server of another runtime, end to end: the image's Python 3 runs a file of this repository.
    install: { runtime: "python", files: ["servers/notes/server.py"] },
    argv: ["python", "./servers/notes/server.py"],
    env: { set: { NOTES_DIR: "{dataDir}" } },
    isolation: "per-user",
    idleTimeoutSeconds: 300,
    toolLevels: {
      // Exits the process on purpose (supervision tests): admins only.
      crash: "admin",
    },
  },
  "whoami-upstream": {
    title: "Who am I upstream (a demo of a server that acts as each person)",
    // Calls the upstream's userinfo endpoint with the token of the person it runs for: proof of whom the
    // process acts as. Standard library only, like notes.
    install: { runtime: "python", files: ["servers/whoami-upstream/server.py"] },
    argv: ["python", "./servers/whoami-upstream/server.py"],
    // The userinfo URL is the stack's (the mock provider's locally, a fake upstream in tests), not a secret.
    env: { inherit: ["WHOAMI_UPSTREAM_USERINFO_URL"] },
    isolation: "per-user",
    idleTimeoutSeconds: 300,
    toolLevels: {},
    connection: { provider: "demo", scopes: ["profile"], as: "env", name: "UPSTREAM_ACCESS_TOKEN" },
  },
} as const satisfies Record<string, CatalogEntry>;

export type Catalog = typeof catalog;
export type ServerId = keyof Catalog;

export const SERVER_IDS = Object.keys(catalog).sort() as ServerId[];

export function isServerId(value: unknown): value is ServerId {
  // Exact, own-property match: no case folding, no prototype keys such as "constructor".
  return typeof value === "string" && Object.hasOwn(catalog, value);
}

/** The connection a server declares, or null. */
export function connectionOf(id: ServerId): ConnectionSpec | null {
  const entry: CatalogEntry = catalog[id];
  return entry.connection ?? null;
}

/** The servers that act with a provider's connection (shown on its connect page; their processes get the token). */
export function serversUsingProvider(provider: string): ServerId[] {
  return SERVER_IDS.filter((id) => connectionOf(id)?.provider === provider);
}

/** The isolation a server runs with (`per-user` unless the entry says otherwise). */
export function isolationOf(id: ServerId): "per-user" | "shared" {
  const entry: CatalogEntry = catalog[id];
  return entry.isolation ?? "per-user";
}
