import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localD1Dir, queryLocalD1, readLocalD1 } from "../../scripts/lib/local-d1.ts";
import { WRANGLER_OFFLINE_ENV } from "../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";

// scripts/lib/local-d1.ts reads a local D1 straight from its file: `npm run audit:verify` and the e2e
// tests. The database here is made by the real wrangler (`d1 migrations apply`, `d1 execute`, as `npm start`
// does), so a wrangler or Miniflare upgrade that moves or renames the file fails here.

const run = promisify(execFile);
/** A wrangler run starts a workerd: seconds each, more on a busy machine. */
const WRANGLER_TIMEOUT_MS = 60_000;

let persistTo = "";

function wrangler(...args: string[]) {
  return run(
    process.execPath,
    [
      path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      ...args,
      "--local",
      "--persist-to",
      persistTo,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, ...WRANGLER_OFFLINE_ENV } },
  );
}

const ROW = "(1795708800000, 'mock:bob', 'c1', NULL, 'tools/call', 'memory', 'read_graph', 'allow', 'granted', 'ok')";
const INSERT = `INSERT INTO audit_log (at_ms, principal, client_id, session_id, action, server, tool, decision, reason, outcome) VALUES ${ROW}`;

beforeAll(async () => {
  persistTo = await mkdtemp(path.join(tmpdir(), "hatago-local-d1-"));
  await wrangler("migrations", "apply", "DB");
}, WRANGLER_TIMEOUT_MS);

afterAll(async () => {
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

describe("reading the local D1 from its file", () => {
  it(
    "the rows wrangler wrote, the same as `wrangler d1 execute --json` returns them, as plain objects",
    async () => {
      await wrangler("execute", "DB", "--command", INSERT);
      const sql = "SELECT * FROM audit_log ORDER BY id";
      const { stdout } = await wrangler("execute", "DB", "--json", "--command", sql);
      const viaWrangler = (JSON.parse(stdout) as { results: Record<string, unknown>[] }[])[0]?.results;
      const rows = await queryLocalD1(persistTo, sql);
      expect(rows).toHaveLength(1);
      expect(rows).toEqual(viaWrangler);
      expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype);
    },
    WRANGLER_TIMEOUT_MS,
  );

  it("binds parameters", async () => {
    const rows = await queryLocalD1(persistTo, "SELECT principal FROM audit_log WHERE tool = ? AND at_ms > ?", [
      "read_graph",
      0,
    ]);
    expect(rows).toEqual([{ principal: "mock:bob" }]);
  });

  it("read-only: a write through it fails and changes nothing", async () => {
    await expect(queryLocalD1(persistTo, "DELETE FROM audit_log")).rejects.toThrow(/readonly/);
    expect(await queryLocalD1(persistTo, "SELECT count(*) AS n FROM audit_log")).toEqual([{ n: 1 }]);
  });

  it("one moment: a row committed between two queries of one read is not seen by the second, and is by the next read", async () => {
    const [file] = (await readdir(localD1Dir(persistTo))).filter(
      (n) => n.endsWith(".sqlite") && n !== "metadata.sqlite",
    );
    // Another writer of the file, as the running workerd is (WAL mode, which workerd sets).
    const writer = new DatabaseSync(path.join(localD1Dir(persistTo), file ?? ""));
    try {
      const counts = await readLocalD1(persistTo, async (db) => {
        const first = await db.all<{ n: number }>("SELECT count(*) AS n FROM audit_log", []);
        writer.exec(INSERT);
        const second = await db.all<{ n: number }>("SELECT count(*) AS n FROM audit_log", []);
        return [first[0]?.n, second[0]?.n];
      });
      expect(counts).toEqual([1, 1]);
      expect(await queryLocalD1(persistTo, "SELECT count(*) AS n FROM audit_log")).toEqual([{ n: 2 }]);
    } finally {
      writer.close();
    }
  });
});

describe("which file is the database", () => {
  it("no local D1 there: a clear error naming the directory", async () => {
    await expect(queryLocalD1(path.join(persistTo, "nothing-here"), "SELECT 1")).rejects.toThrow(
      /no local D1 in .*nothing-here/,
    );
  });

  it("another database beside it is passed over; two with an audit log is an error naming both", async () => {
    const dir = localD1Dir(persistTo);
    const other = new DatabaseSync(path.join(dir, "0ther.sqlite"));
    other.exec("CREATE TABLE notes (x TEXT)");
    other.close();
    expect(await queryLocalD1(persistTo, "SELECT count(*) AS n FROM audit_log")).toEqual([{ n: 2 }]);

    const stale = new DatabaseSync(path.join(dir, "5tale.sqlite"));
    stale.exec("CREATE TABLE audit_log (id INTEGER)");
    stale.close();
    await expect(queryLocalD1(persistTo, "SELECT 1")).rejects.toThrow(/2 local D1 databases .*5tale\.sqlite/);
    await rm(path.join(dir, "5tale.sqlite"));
    await rm(path.join(dir, "0ther.sqlite"));
  });
});

describe("npm run audit:verify on a local D1 (the file read directly)", () => {
  it("an empty chain is intact: exit 0, the usual line, nothing on stderr (no experimental warning)", async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [path.join(REPO_ROOT, "scripts/audit-verify.ts"), "--persist-to", persistTo],
      { cwd: REPO_ROOT },
    );
    expect(stdout).toBe(
      `audit:verify: intact (local D1 in ${persistTo}): 0 streams, 0 rows, 0 anchors; 2 older rows carry no chain (before it began): not covered\n`,
    );
    expect(stderr).toBe("");
  });
});
