import { accessSync, constants } from "node:fs";
import path from "node:path";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

/** What `child_process.spawn` receives for one server process. Never passed through a shell. */
export interface LaunchSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Files to write (mode 0600) in the process's data directory before it starts: its `file` secrets. */
  readonly files?: readonly { readonly path: string; readonly contents: string }[];
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
  /** The Python 3 that runs `python` entries without a package (the image's; locally the one on PATH). */
  readonly pythonPath?: string | null;
  /** Where `python` entries with a package have their virtual environments (`<root>/<package>/bin/python`). */
  readonly pythonEnvRoot?: string;
  /** This server's secret values, by the name the server expects (only this server's: see secrets.ts). */
  readonly secrets?: Readonly<Record<string, string>>;
  /** The upstream token of the ONE person this process runs for (per-user servers with a `connection`). */
  readonly connectionToken?: string | null;
}

/** The file a `file` connection token is written to, in the process's own directory (never saved with its state). */
export const CONNECTION_FILE_NAME = ".hatago-connection-token";

/** The image's layout for `python` entries (container/image.ts installs them there). */
export const IMAGE_PYTHON = "/usr/bin/python3";
export const IMAGE_PYTHON_ENV_ROOT = "/opt/hatago/python";

/**
 * Turns a catalog entry into a spawn spec. The result depends only on the catalog and the context,
 * never on a request: this is what makes `/execute` unable to name a command.
 */
export function launchSpec(entry: CatalogEntry, ctx: LaunchContext): LaunchSpec {
  const [, ...rest] = entry.argv;
  const resolve = (arg: string) => (arg.startsWith("./") ? path.join(ctx.appRoot, arg) : arg);
  const env: Record<string, string> = {};
  for (const name of entry.env?.inherit ?? []) {
    const value = ctx.parentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(entry.env?.set ?? {})) {
    env[name] = value.replaceAll("{dataDir}", ctx.dataDir);
  }
  // SECURITY: a secret reaches the process only as the entry says, and only this entry's secrets are
  // in `ctx.secrets` (the pool reads them per server).
  const files: { path: string; contents: string }[] = [];
  for (const [name, spec] of Object.entries(entry.secrets ?? {})) {
    const value = ctx.secrets?.[name];
    if (value === undefined) continue;
    if (spec.as === "env") {
      env[name] = value;
    } else {
      const file = path.join(ctx.dataDir, spec.fileName ?? `.secret-${name.toLowerCase()}`);
      files.push({ path: file, contents: value });
      env[`${name}_FILE`] = file;
    }
  }
  // SECURITY: the person's upstream token reaches their own process only, as the entry says; a shared entry
  // never gets one (the catalog test refuses a connection there, and the pool passes none).
  const connection = entry.connection;
  if (connection && ctx.connectionToken && (entry.isolation ?? "per-user") === "per-user") {
    if (connection.as === "env") {
      env[connection.name] = ctx.connectionToken;
    } else {
      const file = path.join(ctx.dataDir, CONNECTION_FILE_NAME);
      files.push({ path: file, contents: ctx.connectionToken });
      env[`${connection.name}_FILE`] = file;
    }
  }
  return {
    command: programOf(entry, ctx) ?? resolve(entry.argv[0]),
    args: rest.map(resolve),
    env,
    cwd: ctx.dataDir,
    files,
  };
}

/** The interpreter or executable that starts the entry, or `null` when it is missing here. */
function programOf(entry: CatalogEntry, ctx: LaunchContext): string | null {
  const program = entry.argv[0];
  switch (entry.install.runtime) {
    case "npm":
      return program === "node" ? ctx.nodePath : null;
    case "python": {
      if (program !== "python") return null;
      const pkg = entry.install.package;
      if (pkg) return path.join(ctx.pythonEnvRoot ?? IMAGE_PYTHON_ENV_ROOT, pkg.name, "bin", "python");
      return ctx.pythonPath ?? null;
    }
    case "command":
      return null;
  }
}

/**
 * What is missing on this machine for the entry to start, in words that say what to install, or `null`
 * when it can start. Locally the bridge skips such an entry with this line; in the image (where the
 * catalog built everything in) it is a start-up error.
 */
export function missingFor(entry: CatalogEntry, ctx: LaunchContext): string | null {
  const spec = launchSpec(entry, ctx);
  const install = entry.install;
  if (install.runtime === "python") {
    if (install.package && !isExecutable(spec.command)) {
      return `Python package ${install.package.name}==${install.package.version} is not installed in ${path.dirname(path.dirname(spec.command))} (uv venv there, then uv pip install ${install.package.name}==${install.package.version})`;
    }
    if (!install.package && !ctx.pythonPath) return "Python 3 is not installed (apt-get install python3)";
  }
  if (install.runtime === "command" && !commandFound(spec.command, ctx.parentEnv.PATH)) {
    const debian = install.steps.flatMap((s) => (s.kind === "debian" ? s.packages : []));
    return `${spec.command} is not installed${debian.length > 0 ? ` (apt-get install ${debian.join(" ")})` : " (see its catalog entry's build steps)"}`;
  }
  for (const file of [
    spec.command,
    ...spec.args.filter((arg) => path.isAbsolute(arg) && arg.startsWith(ctx.appRoot)),
  ]) {
    if (path.isAbsolute(file) && !exists(file)) return `${file} is not installed`;
  }
  const unset = Object.entries(entry.secrets ?? {})
    .filter(([name, s]) => !s.optional && ctx.secrets?.[name] === undefined)
    .map(([name]) => name);
  if (unset.length > 0)
    return `its secret${unset.length > 1 ? "s" : ""} ${unset.join(", ")} ${unset.length > 1 ? "are" : "is"} not set`;
  return null;
}

/** A `python3` on PATH, for `python` entries outside the image (local development, tests). */
export function findOnPath(name: string, pathVariable: string | undefined): string | null {
  for (const dir of (pathVariable ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function commandFound(command: string, pathVariable: string | undefined): boolean {
  return path.isAbsolute(command) ? isExecutable(command) : findOnPath(command, pathVariable) !== null;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function exists(file: string): boolean {
  try {
    accessSync(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}
