import { readFile } from "node:fs/promises";
import path from "node:path";
import { secretVariable } from "../../container/src/secrets.ts";
import { catalog, isServerId, SERVER_IDS } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

/** The local secrets file, in the state directory (git-ignored with it): `<server>.<NAME>=<value>` lines. */
export const LOCAL_SECRETS_FILE = "secrets.env";

export interface LocalSecrets {
  /** Environment variables for the bridge (`HATAGO_SECRET_<SERVER>__<NAME>`), only for declared secrets. */
  readonly env: Readonly<Record<string, string>>;
  /** One line per server that cannot start for want of a required secret, saying what to add where. */
  readonly missing: readonly string[];
  /** Lines of the file that name no declared secret (a typo), without their values. */
  readonly unknown: readonly string[];
}

/**
 * Reads the local secrets for `npm start`. SECURITY: values are never printed; a line naming a secret
 * that no catalog entry declares is reported by its name only and not passed on.
 */
export async function readLocalSecrets(stateDir: string): Promise<LocalSecrets> {
  const file = path.join(stateDir, LOCAL_SECRETS_FILE);
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch {
    // No file: no secrets.
  }
  const env: Record<string, string> = {};
  const unknown: string[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-z][a-z0-9-]*)\.([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    const server = match?.[1];
    const name = match?.[2];
    const entry: CatalogEntry | undefined = server && isServerId(server) ? catalog[server] : undefined;
    if (!match || !server || !name || !entry?.secrets?.[name]) {
      unknown.push(
        `${LOCAL_SECRETS_FILE} line ${index + 1}: ${match ? `${server}.${name}` : "not <server>.<NAME>=<value>"}`,
      );
      continue;
    }
    env[secretVariable(server, name)] = match[3] ?? "";
  }
  const missing: string[] = [];
  for (const server of SERVER_IDS) {
    const entry: CatalogEntry = catalog[server];
    for (const [name, spec] of Object.entries(entry.secrets ?? {})) {
      if (spec.optional || env[secretVariable(server, name)]) continue;
      missing.push(
        `server ${server} is skipped: its secret ${name} (${spec.description}) is not set; add "${server}.${name}=…" to ${file}`,
      );
    }
  }
  return { env, missing, unknown };
}
