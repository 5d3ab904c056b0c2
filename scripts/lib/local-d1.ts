import { readdir } from "node:fs/promises";
import path from "node:path";
import type { DatabaseSync, SQLInputValue } from "node:sqlite";

/**
 * Reads the local D1 of a stack (`npm start`, the e2e stacks) straight from its SQLite file, read-only:
 * `npm run audit:verify` and the e2e tests' D1 reads. `wrangler d1 execute --local` starts a workerd for
 * every query (a second or more); this opens the file in a millisecond. Writes stay on wrangler (the
 * file belongs to the running workerd; test/e2e/helpers/d1.ts, `d1Execute`).
 *
 * Why reading beside the running stack is safe and current: workerd opens each Durable Object's database
 * (a local D1 is one, miniflare's `D1DatabaseObject`) through SQLite's own Unix VFS with its file locks,
 * in WAL mode (workerd src/workerd/server/server.c++, src/workerd/util/sqlite.c++). A reader in another
 * process then sees every committed transaction, and a D1 write is committed before the Worker gets its
 * answer (the output gate). A read-only connection never writes the database, only the WAL index (-shm)
 * that every reader shares.
 */

/** miniflare's D1 directory under wrangler's --persist-to: one SQLite file per database, named by its object id. */
const D1_OBJECT_DIR = ["v3", "d1", "miniflare-D1DatabaseObject"] as const;

/** workerd's own file in that directory (the namespace's alarms), not a database. */
const NOT_A_DATABASE = "metadata.sqlite";

/**
 * When the directory holds more than one database (the database_id in wrangler.jsonc changed), ours is the
 * one with the audit log. The name is no help: miniflare names a file by workerd's Durable Object id for
 * the database_id, an internal scheme. A lone database is taken as it is: a test may rename a table of it.
 */
const OUR_TABLE = "audit_log";

/** A read waits this long when workerd holds a lock a reader must wait for (WAL recovery, a checkpoint edge). */
const BUSY_TIMEOUT_MS = 5_000;

type Sqlite = typeof import("node:sqlite");
let sqlite: Promise<Sqlite> | undefined;

/**
 * node:sqlite, loaded once. Node 22 still calls it experimental and says so on stderr when it loads: that
 * one line is dropped here so the script's output stays its own (other warnings pass through).
 */
function loadSqlite(): Promise<Sqlite> {
  sqlite ??= (async () => {
    const emit = process.emitWarning;
    process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
      const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
      if (type === "ExperimentalWarning" && String(warning).startsWith("SQLite ")) return;
      (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
    }) as typeof process.emitWarning;
    try {
      return await import("node:sqlite");
    } finally {
      process.emitWarning = emit;
    }
  })();
  return sqlite;
}

/** The local D1 directory that wrangler's `--persist-to <persistTo>` uses. */
export function localD1Dir(persistTo: string): string {
  return path.join(persistTo, ...D1_OBJECT_DIR);
}

async function openReadOnly(file: string): Promise<DatabaseSync> {
  const { DatabaseSync } = await loadSqlite();
  return new DatabaseSync(file, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
}

/** This project's local D1 under `persistTo`, opened read-only; the caller closes it. */
async function openLocalD1(persistTo: string): Promise<DatabaseSync> {
  const dir = localD1Dir(persistTo);
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") throw new Error(`no local D1 in ${persistTo} (has a stack run with it?)`);
    throw error;
  });
  const files = names.filter((n) => n.endsWith(".sqlite") && n !== NOT_A_DATABASE).sort();
  if (files.length === 1 && files[0]) return openReadOnly(path.join(dir, files[0]));
  const ours: { name: string; db: DatabaseSync }[] = [];
  for (const name of files) {
    const db = await openReadOnly(path.join(dir, name));
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(OUR_TABLE)) {
      ours.push({ name, db });
    } else db.close();
  }
  if (ours.length === 1 && ours[0]) return ours[0].db;
  for (const { db } of ours) db.close();
  if (ours.length === 0) throw new Error(`no local D1 with an ${OUR_TABLE} table in ${dir}`);
  throw new Error(
    `${ours.length} local D1 databases in ${dir} hold an ${OUR_TABLE} table (${ours.map((o) => o.name).join(", ")}): ` +
      "the database_id in wrangler.jsonc changed? Remove the stale one.",
  );
}

/** Rows as plain objects (node:sqlite gives null-prototype ones), like the JSON of `wrangler d1 execute`. */
function plain<T>(rows: readonly Record<string, unknown>[]): T[] {
  return rows.map((row) => ({ ...row }) as T);
}

/** A read-only view of one moment of the local D1 (the shape of worker/audit/verify.ts's `SqlReader`). */
export interface LocalD1Reader {
  all<T>(sql: string, params: readonly SQLInputValue[]): Promise<T[]>;
}

/**
 * Runs `read` on the local D1 inside one read transaction: every query sees the same moment, so a check
 * that reads in several queries (the audit verifier: anchors, then rows page by page) never sees a
 * shipment that landed between two of them.
 */
export async function readLocalD1<R>(persistTo: string, read: (db: LocalD1Reader) => Promise<R>): Promise<R> {
  const db = await openLocalD1(persistTo);
  try {
    db.exec("BEGIN");
    return await read({
      all: async <T>(sql: string, params: readonly SQLInputValue[]) =>
        plain<T>(db.prepare(sql).all(...params) as Record<string, unknown>[]),
    });
  } finally {
    db.close();
  }
}

/** One query on the local D1 under `persistTo`. */
export function queryLocalD1(
  persistTo: string,
  sql: string,
  params: readonly SQLInputValue[] = [],
): Promise<Record<string, unknown>[]> {
  return readLocalD1(persistTo, (db) => db.all(sql, params));
}
