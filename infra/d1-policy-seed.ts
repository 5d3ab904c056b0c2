import * as pulumi from "@pulumi/pulumi";

/**
 * `D1PolicySeed`: writes the compiled policy (policies/compile.ts) into the stack's D1 database.
 *
 * - Idempotent: the statements delete every policy table's rows and insert the compiled ones, so a
 *   re-seed replaces the whole policy and nothing stale survives.
 * - Re-seeded exactly when the compiled policy's hash changes (or the database is replaced). The hash
 *   and a readable summary of roles and bindings are inputs, so `pulumi preview` shows the change.
 * - One `POST /accounts/{account}/d1/database/{db}/query` with `{ batch: [{ sql }, …] }`.
 *
 * SECURITY: the provider is serialized into the stack's state. It captures nothing but the optional
 * test fetch; the API token is read from CLOUDFLARE_API_TOKEN when it runs (also on `destroy` and
 * `refresh`, which run it from state), so no credential is ever written to state.
 *
 * Because it is serialized, everything it calls is defined inside `makeD1PolicySeedProvider`: a
 * reference to a module-level helper would drag that module into the serialized closure.
 */

export interface D1PolicySeedInputs {
  readonly accountId: string;
  readonly databaseId: string;
  readonly environment: string;
  readonly policyHash: string;
  /** For reviewers: `role: description`, sorted. Not used to seed. */
  readonly roles: readonly string[];
  /** For reviewers: `subject → role`, sorted. Not used to seed. */
  readonly bindings: readonly string[];
  /** The SQL that replaces the policy, in order (CompiledPolicy.statements). */
  readonly statements: readonly string[];
}

export interface D1PolicySeedOutputs extends D1PolicySeedInputs {
  /** When this policy was written, ISO 8601. */
  readonly appliedAt: string;
}

export type SeedFetch = (input: string, init: RequestInit) => Promise<Response>;

/** The provider; `fetchImpl` is for tests (a fake Cloudflare API). Deployments pass nothing. */
export function makeD1PolicySeedProvider(
  fetchImpl?: SeedFetch,
): pulumi.dynamic.ResourceProvider<D1PolicySeedInputs, D1PolicySeedOutputs> {
  /** D1's documented maximum length of one SQL statement (Platform limits). */
  const MAX_STATEMENT_BYTES = 100_000;
  const API_BASE = "https://api.cloudflare.com/client/v4";

  const describe = (value: unknown): string => {
    if (typeof value !== "object" || value === null) return String(value);
    const errors = (value as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      return errors
        .map((e) => {
          const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
          const message = typeof e === "object" && e !== null ? (e as { message?: unknown }).message : e;
          return code === undefined ? String(message) : `[${String(code)}] ${String(message)}`;
        })
        .join("; ");
    }
    return JSON.stringify(value).slice(0, 300);
  };

  const seed = async (inputs: D1PolicySeedInputs): Promise<D1PolicySeedOutputs> => {
    const token = process.env.CLOUDFLARE_API_TOKEN;
    if (!token) throw new Error("D1PolicySeed: CLOUDFLARE_API_TOKEN is not set; it is read at run time, never stored");
    const path = `/accounts/${inputs.accountId}/d1/database/${inputs.databaseId}/query`;
    const doFetch: SeedFetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    const response = await doFetch(`${API_BASE}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ batch: inputs.statements.map((sql) => ({ sql })) }),
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text.slice(0, 300);
    }
    const envelope = typeof body === "object" && body !== null ? (body as { success?: unknown; result?: unknown }) : {};
    if (!response.ok || envelope.success !== true) {
      throw new Error(
        `D1PolicySeed: seeding policy "${inputs.environment}" into ${inputs.databaseId} failed (HTTP ${response.status}): ${describe(body)}`,
      );
    }
    // The envelope can succeed while one statement of the batch reports failure: check each.
    const results = Array.isArray(envelope.result) ? envelope.result : [];
    const failed = results.findIndex(
      (r) => typeof r !== "object" || r === null || (r as { success?: unknown }).success === false,
    );
    if (failed !== -1) {
      throw new Error(
        `D1PolicySeed: statement ${failed + 1} of ${inputs.statements.length} failed: ${describe(results[failed])}`,
      );
    }
    return { ...inputs, appliedAt: new Date().toISOString() };
  };

  return {
    async check(_olds, news) {
      const failures: pulumi.dynamic.CheckFailure[] = [];
      if (!/^[0-9a-f]{64}$/.test(String(news.policyHash))) {
        failures.push({ property: "policyHash", reason: "must be a hex SHA-256" });
      }
      if (!Array.isArray(news.statements) || news.statements.length === 0) {
        failures.push({ property: "statements", reason: "the compiled policy has no statements" });
      } else {
        news.statements.forEach((sql, index) => {
          if (typeof sql === "string" && new TextEncoder().encode(sql).length > MAX_STATEMENT_BYTES) {
            failures.push({
              property: "statements",
              reason: `statement ${index + 1} is longer than D1's ${MAX_STATEMENT_BYTES}-byte limit; split the insert`,
            });
          }
        });
      }
      return { inputs: news, failures };
    },
    async diff(_id, olds, news) {
      const replaces = olds.databaseId !== news.databaseId || olds.accountId !== news.accountId;
      return {
        changes: replaces || olds.policyHash !== news.policyHash,
        replaces: replaces ? ["databaseId"] : [],
        // A new database is seeded before the old one goes away; there is nothing to undo on the old one.
        deleteBeforeReplace: false,
      };
    },
    async create(inputs) {
      const outs = await seed(inputs);
      return { id: `${inputs.databaseId}/policy`, outs };
    },
    async update(_id, _olds, news) {
      return { outs: await seed(news) };
    },
    async delete() {
      // The rows belong to the database: destroying the stack deletes it, and a replaced seed's old
      // database is being replaced too. Deleting rows here could empty a database that is in use.
    },
  };
}

export type D1PolicySeedArgs = { readonly [K in keyof D1PolicySeedInputs]: pulumi.Input<D1PolicySeedInputs[K]> };

export class D1PolicySeed extends pulumi.dynamic.Resource {
  declare readonly policyHash: pulumi.Output<string>;
  declare readonly appliedAt: pulumi.Output<string>;

  constructor(name: string, args: D1PolicySeedArgs, opts?: pulumi.CustomResourceOptions) {
    super(makeD1PolicySeedProvider(), name, { ...args, appliedAt: undefined }, opts, "hatago", "D1PolicySeed");
  }
}
