/**
 * Counting wrappers around the Worker's bindings, for measuring what a request costs on Cloudflare (D1
 * queries, KV reads and writes, Durable Object requests and storage operations, outbound fetches).
 *
 * The wrappers sit between the Worker and the real bindings (local D1, KV and Durable Objects in workerd)
 * and change nothing but a tally: same arguments, same results, same errors. Each tally keeps a count and
 * the wall time the operation took (workerd's clock advances across I/O, which is what these are).
 */

export interface Tally {
  count: number;
  ms: number;
}

/** Operation kind → tally; module-level, so the Worker and its Durable Objects (one isolate locally) share it. */
const tallies = new Map<string, Tally>();

export function meterSnapshot(): Record<string, Tally> {
  return Object.fromEntries([...tallies].map(([kind, t]) => [kind, { ...t }]));
}

export function meterReset(): void {
  tallies.clear();
}

function record(kind: string, startedMs: number): void {
  const tally = tallies.get(kind) ?? { count: 0, ms: 0 };
  tally.count += 1;
  tally.ms += performance.now() - startedMs;
  tallies.set(kind, tally);
}

async function timed<T>(kind: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    record(kind, started);
  }
}

/** D1 bills rows read and written per query; a query's verb says which side it is on. */
function d1Kind(sql: string, prefix = "d1"): string {
  return `${prefix}.${sqlSide(sql)}`;
}

function sqlSide(sql: string): string {
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? "other";
  if (verb === "select" || verb === "with") return "read";
  if (verb === "insert" || verb === "update" || verb === "delete" || verb === "replace") return "write";
  return verb;
}

function meterStatement(statement: D1PreparedStatement, kind: string): D1PreparedStatement {
  const metered: D1PreparedStatement = Object.assign(Object.create(statement) as D1PreparedStatement, {
    bind: (...values: unknown[]) => meterStatement(statement.bind(...values), kind),
    first: (column?: string) => timed(kind, () => (column === undefined ? statement.first() : statement.first(column))),
    run: () => timed(kind, () => statement.run()),
    all: () => timed(kind, () => statement.all()),
    raw: (options?: { columnNames?: boolean }) =>
      timed(kind, () =>
        options?.columnNames ? statement.raw({ columnNames: true }) : statement.raw(options as { columnNames?: false }),
      ),
  });
  return metered;
}

/**
 * `prefix` tells D1's users apart: `d1` for the request path (the Worker, the session object), `d1.ledger`
 * for the audit ledgers' shipments, which no answer waits for.
 */
export function meterD1(db: D1Database, prefix = "d1"): D1Database {
  return Object.assign(Object.create(db) as D1Database, {
    prepare: (sql: string) => meterStatement(db.prepare(sql), d1Kind(sql, prefix)),
    batch: (statements: D1PreparedStatement[]) => timed(`${prefix}.batch`, () => db.batch(statements)),
    exec: (sql: string) => timed(`${prefix}.exec`, () => db.exec(sql)),
  });
}

export function meterKv(kv: KVNamespace): KVNamespace {
  const forward = (name: "get" | "getWithMetadata" | "put" | "delete" | "list", kind: string) => {
    const method = kv[name] as (...args: unknown[]) => Promise<unknown>;
    return (...args: unknown[]) => timed(kind, () => method.apply(kv, args));
  };
  return Object.assign(Object.create(kv) as KVNamespace, {
    get: forward("get", "kv.read"),
    getWithMetadata: forward("getWithMetadata", "kv.read"),
    put: forward("put", "kv.write"),
    delete: forward("delete", "kv.delete"),
    list: forward("list", "kv.list"),
  });
}

/**
 * Every `fetch()` on a stub of this namespace is one Durable Object request (billed per request), and so
 * is every call of one of its RPC methods named in `rpc` (tallied as `do.<label>.<method>`).
 */
export function meterDurableObjects<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  label: string,
  rpc: readonly string[] = [],
): DurableObjectNamespace<T> {
  const meterStub = (stub: DurableObjectStub): DurableObjectStub =>
    new Proxy(stub, {
      get(target, property) {
        if (property === "fetch") {
          return (input: RequestInfo | URL, init?: RequestInit) =>
            timed(`do.${label}.fetch`, () => target.fetch(input, init));
        }
        if (typeof property === "string" && rpc.includes(property)) {
          const method = Reflect.get(target, property, target) as (...args: unknown[]) => Promise<unknown>;
          return (...args: unknown[]) => timed(`do.${label}.${property}`, () => method(...args));
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return new Proxy(namespace, {
    get(target, property) {
      if (property === "get") return (id: DurableObjectId) => meterStub(target.get(id) as DurableObjectStub);
      if (property === "getByName") return (name: string) => meterStub(target.getByName(name) as DurableObjectStub);
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Durable Object storage operations (SQLite-backed objects bill rows read and written). */
export function meterStorage(storage: DurableObjectStorage, label: string): void {
  const patch = (name: "get" | "put" | "delete" | "deleteAll" | "list" | "setAlarm" | "getAlarm", kind: string) => {
    const method = storage[name] as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(storage, name, {
      configurable: true,
      value: (...args: unknown[]) => timed(`do.${label}.storage.${kind}`, () => method.apply(storage, args)),
    });
  };
  patch("get", "read");
  patch("list", "read");
  patch("getAlarm", "read");
  patch("put", "write");
  patch("delete", "write");
  patch("deleteAll", "write");
  patch("setAlarm", "write");
}

/**
 * A SQLite-backed object's statements (`ctx.storage.sql.exec`), by side: `do.<label>.sql.read|write`.
 * Counted once each (SQLite-backed objects bill rows; a statement here writes one or a few).
 */
export function meterSql(storage: DurableObjectStorage, label: string): void {
  const sql = storage.sql;
  const wrapped = new Proxy(sql, {
    get(target, property) {
      if (property === "exec") {
        return (query: string, ...bindings: unknown[]) => {
          const started = performance.now();
          try {
            return target.exec(query, ...bindings);
          } finally {
            record(`do.${label}.sql.${sqlSide(query)}`, started);
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  Object.defineProperty(storage, "sql", { configurable: true, get: () => wrapped });
}

/** Outbound `fetch()` from this isolate, by host (locally, the dev bridge hop goes this way). */
export function meterGlobalFetch(): void {
  const original = globalThis.fetch;
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    return timed(`fetch.${url.host}`, () => original(input, init));
  };
}

/** Wall time of a whole handler (a request to the Worker, or one Durable Object fetch). */
export function meterTime<T>(kind: string, run: () => Promise<T>): Promise<T> {
  return timed(kind, run);
}
