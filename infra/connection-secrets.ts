import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../policies/catalog.ts";
import type { CatalogEntry } from "../policies/catalog.types.ts";
import { type Environment, POLICIES, type Policy } from "../policies/index.ts";
import type { ConfigReader, ConfigSource } from "./config-reader.ts";

/**
 * Connections (issue 17): the upstream providers people connect their own accounts of, per stack. Three keys:
 *
 *   hatago:connectionProviders   plain, per provider id: kind (github | oauth2 | mock), label, and for oauth2
 *                                 either issuer (discovery) or authorizationUrl + tokenUrl
 *   hatago:connectionSecrets     secret, per provider id: clientId, clientSecret (its OAuth app's, distinct
 *                                 from the login provider's)
 *   hatago:connectionKeys        secret: the sealing key ring, `<key id>:<base64 of 32 random bytes>`, newest
 *                                 first, older ones after a comma (rotation: add a new one in front)
 *
 * They become the Worker's HATAGO_CONNECT_* variables and secrets and HATAGO_CONNECTION_KEYS (worker/config.ts
 * reads them; test/infra/connection-secrets.test.ts holds the two to each other). `pulumi preview` and `up`
 * stop before touching anything when a declared provider lacks its secrets, when the key ring is missing or
 * malformed, when a provider is one no catalog server uses, or, in staging and prod, when the stack's policy
 * grants by name a server whose connection's provider is not declared. SECURITY: secret values are read
 * only as Pulumi secrets; problems name keys, never values.
 */
export const CONNECTION_PROVIDERS_KEY = "connectionProviders";
export const CONNECTION_SECRETS_KEY = "connectionSecrets";
export const CONNECTION_KEYS_KEY = "connectionKeys";

/** The Worker's own rules (worker/config.ts): provider ids, kinds, and the key ring's items. */
const PROVIDER_ID = /^[a-z][a-z0-9-]{0,31}$/;
const KINDS = ["github", "oauth2", "mock"] as const;
const KEY_ITEM = /^([A-Za-z0-9._-]{1,32}):([A-Za-z0-9+/_-]{43}=?)$/;
/** The Worker puts client ids in URLs: URL-safe characters only. */
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,255}$/;
const LABEL = /^[^<>&"]{1,64}$/;
const ENDPOINT_NAMES = ["authorizationUrl", "tokenUrl"] as const;

/** What a stack gives the Worker for connections: plain variables and (a Pulumi secret) secret bindings. */
export interface ConnectionSettings {
  readonly vars: Readonly<Record<string, string>>;
  readonly secrets: pulumi.Output<Record<string, string>>;
}

/** `HATAGO_CONNECT_<ID>_<NAME>`, as worker/config.ts's connectSetting spells it. */
export function connectVariable(id: string, name: string): string {
  return `HATAGO_CONNECT_${id.toUpperCase().replaceAll("-", "_")}_${name}`;
}

/** Servers a policy grants by name (a `*` grant names none: it is everything, not a decision about this one). */
export function serversNamedBy(policy: Policy): Set<string> {
  return new Set(Object.values(policy.roles).flatMap((role) => role.grants.map((g) => g.server)));
}

export function readConnections(
  r: ConfigReader,
  source: ConfigSource,
  stack: { readonly environment: Environment; readonly isPreview: boolean },
  entries: Readonly<Record<string, CatalogEntry>> = catalog,
  policies: Readonly<Record<Environment, Policy>> = POLICIES,
): ConnectionSettings {
  const used = new Map<string, string[]>();
  for (const [server, entry] of Object.entries(entries)) {
    if (entry.connection) used.set(entry.connection.provider, [...(used.get(entry.connection.provider) ?? []), server]);
  }
  const providers = objectOf(r, source, CONNECTION_PROVIDERS_KEY, "an object of provider ids (set with --path)");
  const secretNames = objectOf(r, source, CONNECTION_SECRETS_KEY, "an object of provider ids (set with --path)");
  const vars: Record<string, string> = {};
  const ids = Object.keys(providers).sort();

  for (const id of ids) {
    const settings = providers[id];
    if (!PROVIDER_ID.test(id)) {
      r.fail(CONNECTION_PROVIDERS_KEY, `"${id}" is not a provider id ([a-z][a-z0-9-]*, at most 32)`);
      continue;
    }
    if (!used.has(id)) {
      const known = [...used.keys()].sort().join(", ") || "none";
      r.fail(CONNECTION_PROVIDERS_KEY, `no server of the catalog connects with "${id}" (providers in use: ${known})`);
    }
    if (typeof settings !== "object" || settings === null) {
      r.fail(CONNECTION_PROVIDERS_KEY, `${id} must be an object (kind, label, endpoints)`);
      continue;
    }
    const s = settings as Record<string, unknown>;
    const kind = s.kind;
    if (typeof kind !== "string" || !(KINDS as readonly string[]).includes(kind)) {
      r.fail(CONNECTION_PROVIDERS_KEY, `${id}.kind must be one of ${KINDS.join(", ")}`);
      continue;
    }
    for (const field of Object.keys(s)) {
      if (!["kind", "label", "issuer", ...ENDPOINT_NAMES].includes(field)) {
        r.fail(
          CONNECTION_PROVIDERS_KEY,
          `${id}.${field} is not a setting (kind, label, issuer, authorizationUrl, tokenUrl)`,
        );
      }
    }
    vars[connectVariable(id, "KIND")] = kind;
    if (s.label !== undefined) {
      if (typeof s.label === "string" && LABEL.test(s.label)) vars[connectVariable(id, "LABEL")] = s.label;
      else r.fail(CONNECTION_PROVIDERS_KEY, `${id}.label must be 1 to 64 characters without < > & "`);
    }
    if (kind === "mock") {
      // SECURITY: the mock upstream lets anyone claim any upstream identity.
      if (stack.environment === "prod")
        r.fail(CONNECTION_PROVIDERS_KEY, `${id}.kind "mock" is refused for the prod policy environment`);
    } else {
      readEndpoints(r, id, kind, s, vars);
      const given = secretNames[id];
      for (const name of ["clientId", "clientSecret"]) {
        const value =
          typeof given === "object" && given !== null ? (given as Record<string, unknown>)[name] : undefined;
        if (typeof value !== "string" || value.trim() === "") {
          r.fail(
            CONNECTION_SECRETS_KEY,
            `provider ${id} needs its OAuth app's ${name} (distinct from the login's): pulumi config set --secret --path '${CONNECTION_SECRETS_KEY}.${id}.${name}' <value>`,
          );
        } else if (name === "clientId" && !CLIENT_ID.test(value)) {
          r.fail(CONNECTION_SECRETS_KEY, `${id}.clientId must be URL-safe characters (A-Z a-z 0-9 . _ ~ -)`);
        }
      }
    }
  }
  for (const id of Object.keys(secretNames)) {
    if (!Object.hasOwn(providers, id)) {
      r.fail(CONNECTION_SECRETS_KEY, `"${id}" is not a declared provider (${CONNECTION_PROVIDERS_KEY}.${id}.kind)`);
    }
  }

  // In the stacks people rely on, a server the policy grants by name that acts as each person needs its provider.
  if (!stack.isPreview && stack.environment !== "dev") {
    const named = serversNamedBy(policies[stack.environment]);
    for (const [provider, servers] of used) {
      if (Object.hasOwn(providers, provider)) continue;
      for (const server of servers.filter((s) => named.has(s))) {
        r.fail(
          CONNECTION_PROVIDERS_KEY,
          `server ${server} acts with each person's "${provider}" account and the ${stack.environment} policy grants it: declare the provider (pulumi config set --path '${CONNECTION_PROVIDERS_KEY}.${provider}.kind' github|oauth2) and its secrets`,
        );
      }
    }
  }

  const keys = readKeyRing(r, source, ids.length > 0);
  if (ids.length > 0) vars.HATAGO_CONNECT_PROVIDERS = ids.join(",");
  return { vars, secrets: secretsOf(source, ids, providers, keys) };
}

function readEndpoints(
  r: ConfigReader,
  id: string,
  kind: string,
  s: Record<string, unknown>,
  vars: Record<string, string>,
): void {
  const endpoints = ENDPOINT_NAMES.filter((n) => s[n] !== undefined);
  if (kind === "github") {
    if (s.issuer !== undefined || endpoints.length > 0) {
      r.fail(CONNECTION_PROVIDERS_KEY, `${id}: a github provider has fixed endpoints; remove issuer and the URLs`);
    }
    return;
  }
  if (s.issuer !== undefined) {
    if (endpoints.length > 0) r.fail(CONNECTION_PROVIDERS_KEY, `${id}: set issuer or the endpoint URLs, not both`);
    if (typeof s.issuer === "string" && isHttpsUrl(s.issuer, { bare: true }))
      vars[connectVariable(id, "ISSUER")] = s.issuer;
    else r.fail(CONNECTION_PROVIDERS_KEY, `${id}.issuer must be an https URL without query or fragment`);
    return;
  }
  if (endpoints.length !== ENDPOINT_NAMES.length) {
    r.fail(CONNECTION_PROVIDERS_KEY, `${id}: an oauth2 provider needs issuer, or both authorizationUrl and tokenUrl`);
    return;
  }
  for (const name of ENDPOINT_NAMES) {
    const value = s[name];
    const variable = connectVariable(id, name === "authorizationUrl" ? "AUTHORIZATION_URL" : "TOKEN_URL");
    if (typeof value === "string" && isHttpsUrl(value, { bare: false })) vars[variable] = value;
    else r.fail(CONNECTION_PROVIDERS_KEY, `${id}.${name} must be an https URL without credentials or fragment`);
  }
}

/** The key ring, checked on the plain value (decrypted by Pulumi before the program runs); never echoed. */
function readKeyRing(r: ConfigReader, source: ConfigSource, needed: boolean): pulumi.Output<string> | undefined {
  const secret = source.getSecret(CONNECTION_KEYS_KEY);
  if (!needed) {
    if (secret !== undefined)
      r.fail(CONNECTION_KEYS_KEY, `is set but no provider is declared in ${r.key(CONNECTION_PROVIDERS_KEY)}`);
    return undefined;
  }
  if (secret === undefined) {
    r.fail(
      CONNECTION_KEYS_KEY,
      `required when providers are declared: pulumi config set --secret ${r.key(CONNECTION_KEYS_KEY)} "k1:$(openssl rand -base64 32)"`,
    );
    return undefined;
  }
  const plain = source.get(CONNECTION_KEYS_KEY) ?? "";
  const ids = new Set<string>();
  for (const item of plain.split(/\s*,\s*/)) {
    const match = KEY_ITEM.exec(item);
    const bytes = match?.[2] ? base64Length(match[2]) : 0;
    if (!match?.[1] || bytes !== 32 || ids.has(match[1])) {
      r.fail(
        CONNECTION_KEYS_KEY,
        "must be a list of <id>:<base64 of 32 random bytes>, newest first, with distinct ids",
      );
      break;
    }
    ids.add(match[1]);
  }
  return secret;
}

function secretsOf(
  source: ConfigSource,
  ids: readonly string[],
  providers: Record<string, unknown>,
  keys: pulumi.Output<string> | undefined,
): pulumi.Output<Record<string, string>> {
  const secretText = source.getSecret(CONNECTION_SECRETS_KEY) ?? pulumi.secret("{}");
  const keyText = keys ?? pulumi.output("");
  return pulumi.secret(
    pulumi.all([secretText, keyText]).apply(([text, ring]) => {
      const values: Record<string, string> = {};
      let parsed: Record<string, Record<string, unknown>> = {};
      try {
        parsed = JSON.parse(text) as Record<string, Record<string, unknown>>;
      } catch {
        // Refused above (objectOf): nothing is deployed.
      }
      for (const id of ids) {
        const kind = (providers[id] as { kind?: unknown } | null)?.kind;
        if (kind === "mock") continue;
        const given = parsed[id] ?? {};
        if (typeof given.clientId === "string") values[connectVariable(id, "CLIENT_ID")] = given.clientId;
        if (typeof given.clientSecret === "string") values[connectVariable(id, "CLIENT_SECRET")] = given.clientSecret;
      }
      if (ring !== "") values.HATAGO_CONNECTION_KEYS = ring;
      return values;
    }),
  );
}

/** A plain object key as Pulumi hands it over (JSON text), or {} with a problem recorded. */
function objectOf(r: ConfigReader, source: ConfigSource, key: string, expected: string): Record<string, unknown> {
  const text = source.get(key);
  if (text === undefined || text === "") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // Recorded below.
  }
  r.fail(key, `expected ${expected}`);
  return {};
}

function isHttpsUrl(value: string, options: { bare: boolean }): boolean {
  const url = URL.parse(value);
  if (url?.protocol !== "https:" || url.username || url.password || url.hash || value.includes("#")) return false;
  return !options.bare || !url.search;
}

function base64Length(text: string): number {
  try {
    return atob(text.replaceAll("-", "+").replaceAll("_", "/")).length;
  } catch {
    return 0;
  }
}
