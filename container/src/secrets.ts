import type { ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

/**
 * Where the bridge finds a server's secret values: its own environment, one variable per (server,
 * secret), `HATAGO_SECRET_<SERVER>__<NAME>` (the server id upper-cased, `-` as `_`). Deployed, the
 * container of a server receives only that server's variables (worker/bridge/container.ts); locally
 * `npm start` sets them from `<state dir>/secrets.env`.
 */
export function secretVariable(server: string, name: string): string {
  return `HATAGO_SECRET_${server.toUpperCase().replaceAll("-", "_")}__${name}`;
}

/** Prefix of every secret variable: never inherited by a child through an entry's allow-list. */
export const SECRET_VARIABLE_PREFIX = "HATAGO_SECRET_";

/**
 * SECURITY: the secret values of ONE server, read by the names its entry declares. A value of another
 * server can never be returned here, whatever the catalog says, because the variable names carry the
 * server id.
 */
export function secretsFor(
  server: ServerId,
  entry: CatalogEntry,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of Object.keys(entry.secrets ?? {})) {
    const value = env[secretVariable(server, name)];
    if (value !== undefined && value !== "") values[name] = value;
  }
  return values;
}
