import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { z } from "zod";

/**
 * Runs wrangler with arguments; resolves with its exit code. Injected so tests can stand in for it.
 * `stdin: "inherit"` hands this process's stdin to wrangler unread (see deploy/worker.ts).
 */
export type WranglerRunner = (
  args: readonly string[],
  options: { readonly env: Readonly<Record<string, string>>; readonly stdin: "inherit" | "ignore" },
) => Promise<number>;

/** Wrangler phones home unless told not to; a deployment has no business sending telemetry. */
const QUIET_WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  WRANGLER_HIDE_BANNER: "true",
  DO_NOT_TRACK: "1",
  // Non-interactive: prompts take their defaults instead of waiting on a terminal nobody watches.
  CI: "true",
} as const;

/** The wrangler this repository pins, run by the same Node as this script. */
export function realWrangler(repoRoot: string): WranglerRunner {
  const bin = path.join(repoRoot, "node_modules/wrangler/bin/wrangler.js");
  return (args, options) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [bin, ...args], {
        cwd: repoRoot,
        env: { ...process.env, ...QUIET_WRANGLER_ENV, ...options.env },
        stdio: [options.stdin, "inherit", "inherit"],
      });
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
}

const configShape = z.looseObject({
  name: z.string().min(1),
  account_id: z.string().min(1),
  main: z.string().optional(),
  d1_databases: z.array(z.looseObject({ database_name: z.string(), migrations_dir: z.string().optional() })).optional(),
  containers: z.array(z.looseObject({ name: z.string().optional(), class_name: z.string() })).optional(),
});
export type GeneratedConfig = z.infer<typeof configShape>;

/** Parses the generated config handed over in an environment variable. */
export function parseGeneratedConfig(json: string | undefined, variable: string): GeneratedConfig {
  if (!json) throw new Error(`${variable} is not set: this command is run by the Pulumi program, not by hand`);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error(`${variable} is not JSON`);
  }
  const parsed = configShape.safeParse(value);
  if (!parsed.success) throw new Error(`${variable} is not a wrangler config: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * Writes the config into a fresh temporary folder, with its repository-relative paths made absolute
 * (wrangler resolves paths against the config file's folder), and hands the folder to `use`. The
 * folder is removed afterwards, whatever happens.
 */
export async function withConfigFile<T>(
  config: GeneratedConfig,
  repoRoot: string,
  use: (configPath: string, dir: string) => Promise<T>,
): Promise<T> {
  const absolute = (p: string | undefined) => (p === undefined ? undefined : path.resolve(repoRoot, p));
  const resolved = {
    ...config,
    ...(config.main === undefined ? {} : { main: absolute(config.main) }),
    ...(config.d1_databases === undefined
      ? {}
      : {
          d1_databases: config.d1_databases.map((d) =>
            d.migrations_dir === undefined ? d : { ...d, migrations_dir: absolute(d.migrations_dir) },
          ),
        }),
  };
  const dir = await mkdtemp(path.join(tmpdir(), "hatago-deploy-"));
  try {
    const configPath = path.join(dir, "wrangler.jsonc");
    await writeFile(configPath, `${JSON.stringify(resolved, null, 2)}\n`, { mode: 0o600 });
    return await use(configPath, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
