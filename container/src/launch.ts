import path from "node:path";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

/** What `child_process.spawn` receives for one server process. Never passed through a shell. */
export interface LaunchSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

export interface LaunchContext {
  /** The application root: argv entries starting with `./` are resolved against it. */
  readonly appRoot: string;
  /** This process's own data directory (per principal for per-user servers). */
  readonly dataDir: string;
  /** The bridge's environment, read only for names on the entry's allow-list. */
  readonly parentEnv: Readonly<Record<string, string | undefined>>;
  /** The Node binary that runs `node` entries (the bridge's own). */
  readonly nodePath: string;
}

/**
 * Turns a catalog entry into a spawn spec. The result depends only on the catalog and the context,
 * never on a request: this is what makes `/execute` unable to name a command.
 */
export function launchSpec(entry: CatalogEntry, ctx: LaunchContext): LaunchSpec {
  const [program, ...rest] = entry.argv;
  const resolve = (arg: string) => (arg.startsWith("./") ? path.join(ctx.appRoot, arg) : arg);
  const env: Record<string, string> = {};
  for (const name of entry.env?.inherit ?? []) {
    const value = ctx.parentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(entry.env?.set ?? {})) {
    env[name] = value.replaceAll("{dataDir}", ctx.dataDir);
  }
  return {
    command: program === "node" ? ctx.nodePath : resolve(program),
    args: rest.map(resolve),
    env,
    cwd: ctx.dataDir,
  };
}
