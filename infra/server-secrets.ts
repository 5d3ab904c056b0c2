import * as pulumi from "@pulumi/pulumi";
import { secretVariable } from "../container/src/secrets.ts";
import { catalog } from "../policies/catalog.ts";
import type { CatalogEntry } from "../policies/catalog.types.ts";
import type { ConfigReader, ConfigSource } from "./config-reader.ts";

/** The stack config key holding the catalog servers' secrets: `serverSecrets.<server>.<NAME>`. */
export const SERVER_SECRETS_KEY = "serverSecrets";

/**
 * The secrets the catalog's servers need, from the stack's configuration, set one by one with
 *   pulumi config set --secret --path 'serverSecrets.<server>.<NAME>' <value>
 * They become Worker secrets named `HATAGO_SECRET_<SERVER>__<NAME>`, and the Worker hands each
 * container only its own server's (worker/bridge/container.ts). SECURITY: values are read only as a
 * Pulumi secret; the checks below look at which names are set, never at a value in a message.
 *
 * `pulumi preview` and `up` stop before touching anything when a required secret is missing (naming the
 * server, the secret and the command), when one is blank, or when a name is not declared by its entry.
 */
export function readServerSecrets(
  r: ConfigReader,
  source: ConfigSource,
  entries: Readonly<Record<string, CatalogEntry>> = catalog,
): pulumi.Output<Record<string, string>> {
  const ids = Object.keys(entries).sort();
  const isServer = (id: string) => Object.hasOwn(entries, id);
  const plain = source.get(SERVER_SECRETS_KEY);
  let given: Record<string, Record<string, unknown>> = {};
  if (plain !== undefined && plain !== "") {
    try {
      const parsed: unknown = JSON.parse(plain);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
      given = parsed as Record<string, Record<string, unknown>>;
    } catch {
      r.fail(SERVER_SECRETS_KEY, "expected an object of servers, each an object of secret names (set with --path)");
    }
  }
  for (const [server, names] of Object.entries(given)) {
    if (!isServer(server)) {
      r.fail(SERVER_SECRETS_KEY, `"${server}" is not a server of the catalog (servers: ${ids.join(", ")})`);
      continue;
    }
    const declared = entries[server]?.secrets ?? {};
    for (const [name, value] of Object.entries(typeof names === "object" && names !== null ? names : {})) {
      if (!Object.hasOwn(declared, name)) r.fail(SERVER_SECRETS_KEY, `server ${server} declares no secret ${name}`);
      else if (typeof value !== "string" || value.trim() === "")
        r.fail(SERVER_SECRETS_KEY, `${server}.${name} must be a non-blank string`);
    }
  }
  for (const server of ids) {
    for (const [name, spec] of Object.entries(entries[server]?.secrets ?? {})) {
      if (spec.optional || typeof given[server]?.[name] === "string") continue;
      r.fail(
        SERVER_SECRETS_KEY,
        `server ${server} needs its secret ${name} (${spec.description}): pulumi config set --secret --path '${SERVER_SECRETS_KEY}.${server}.${name}' <value>`,
      );
    }
  }
  const secret = source.getSecret(SERVER_SECRETS_KEY);
  if (secret === undefined) return pulumi.secret(pulumi.output<Record<string, string>>({}));
  return pulumi.secret(
    secret.apply((text) => {
      const values: Record<string, string> = {};
      let parsed: Record<string, Record<string, unknown>> = {};
      try {
        parsed = JSON.parse(text) as Record<string, Record<string, unknown>>;
      } catch {
        return values;
      }
      for (const [server, names] of Object.entries(parsed)) {
        if (!isServer(server) || typeof names !== "object" || names === null) continue;
        const declared = entries[server]?.secrets ?? {};
        for (const [name, value] of Object.entries(names)) {
          if (Object.hasOwn(declared, name) && typeof value === "string" && value.trim() !== "")
            values[secretVariable(server, name)] = value;
        }
      }
      return values;
    }),
  );
}
