import type { GeneratedConfig, WranglerRunner } from "./wrangler.ts";
import { withConfigFile } from "./wrangler.ts";

/**
 * Applies migrations/*.sql to the stack's D1 database with `wrangler d1 migrations apply --remote`.
 * Wrangler records applied files in the `d1_migrations` table and applies only the new ones, so
 * running it again is harmless; it auto-confirms when not on a terminal.
 */
export async function applyD1Migrations(options: {
  readonly config: GeneratedConfig;
  readonly repoRoot: string;
  readonly wrangler: WranglerRunner;
}): Promise<void> {
  const { config } = options;
  const database = config.d1_databases?.[0]?.database_name;
  if (!database) throw new Error("the generated config names no D1 database");
  await withConfigFile(config, options.repoRoot, async (configPath) => {
    const code = await options.wrangler(["d1", "migrations", "apply", database, "--remote", "--config", configPath], {
      env: { CLOUDFLARE_ACCOUNT_ID: config.account_id },
      stdin: "ignore",
    });
    if (code !== 0)
      throw new Error(`wrangler d1 migrations apply ${database} failed (exit ${code}); its output is above`);
  });
}
