// Usage: npm exec -- node bench/audit-paging.ts [--rows 1000000] [--runs 30] [--write]
// The console's audit queries against a local D1 (workerd's SQLite through wrangler's getPlatformProxy:
// the same engine `npm start` uses) holding a million audit rows, with the migrations as shipped (0005's indexes
// included). It times the very functions the console calls (worker/admin/audit.query.ts, audit.chart.ts,
// people.query.ts) for every filter, on the first page and on a deep page reached by keyset, and, for
// comparison, the same deep page by OFFSET. --write puts the table into bench/AUDIT-PAGING.md.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Kysely } from "kysely";
import { D1Dialect } from "kysely-d1";
import { getPlatformProxy } from "wrangler";
import { chartSeries } from "../worker/admin/audit.chart.ts";
import { knownSubjects } from "../worker/admin/people.query.ts";
import { type AuditCursor, type AuditFilter, auditPage, filtered } from "../worker/db/audit-log.repository.ts";
import type { Database } from "../worker/db/database.ts";
import { machine } from "./machine.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    runs: { type: "string", default: "30" },
    write: { type: "boolean", default: false },
  },
});
const ROWS = Number(values.rows);
const RUNS = Number(values.runs);
/** Rows inserted per statement while filling the table. */
const FILL_CHUNK_ROWS = 100_000;
/** The log spans this long, ending now. */
const SPAN_MS = 30 * 86_400_000;
const PAGE_ROWS = 50;
/** The deep page: this many pages in, reached by keyset (and by OFFSET for comparison). */
const DEEP_PAGES = 200;

type D1Config = ConstructorParameters<typeof D1Dialect>[0];
/** The part of D1's API this bench uses (the Node side has no Workers types). */
interface D1Like {
  prepare(sql: string): { bind(...values: unknown[]): { run(): Promise<unknown> }; run(): Promise<unknown> };
  batch(statements: unknown[]): Promise<unknown>;
}

/** How to read the table; written under it. */
const READING = `Reading: every filter answers a page in about the local D1 round trip (the proxy's ~8 ms floor),
first page or 200 pages deep, because each filter is the leading column of an index in page order
(migrations/0005). Locally OFFSET is about as fast at this depth: SQLite skips index entries cheaply. The
console still pages by keyset because its cost does not grow with depth and because D1 bills rows read:
page 201 by OFFSET reads 10,050 rows, by keyset 51. Not measured here: the same queries without 0005's
indexes, and the extra cost of those indexes on each audit insert.
`;

const log = (line: string) => process.stderr.write(`[audit-bench] ${line}\n`);
const root = path.resolve(import.meta.dirname, "..");
const persist = await mkdtemp(path.join(os.tmpdir(), "hatago-audit-bench-"));
// The local D1 of wrangler.jsonc's `DB` binding, on a private directory (wrangler's own local runtime).
const proxy = await getPlatformProxy<{ DB: D1Like }>({
  configPath: path.join(root, "wrangler.jsonc"),
  persist: { path: persist },
});
try {
  const d1 = proxy.env.DB;
  for (const file of (await readdir(path.join(root, "migrations"))).filter((f) => f.endsWith(".sql")).sort()) {
    const text = (await readFile(path.join(root, "migrations", file), "utf8"))
      .split("\n")
      .filter((l) => !l.trim().startsWith("--"))
      .join("\n");
    const statements = text
      .split(/;\s*$/m)
      .map((s) => s.trim())
      .filter(Boolean);
    await d1.batch(statements.map((s) => d1.prepare(s)));
  }
  const now = Date.now();
  const start = now - SPAN_MS;
  log(`filling ${ROWS} rows`);
  const t0 = performance.now();
  for (let done = 0; done < ROWS; done += FILL_CHUNK_ROWS) {
    const n = Math.min(FILL_CHUNK_ROWS, ROWS - done);
    // Deterministic spread: 1,000 principals, two servers, 20 tools, 5% denials, 2% errors, time increasing.
    await d1
      .prepare(
        `INSERT INTO audit_log (at_ms, principal, client_id, action, server, tool, decision, reason, outcome, duration_ms, policy_hash)
         WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         SELECT ?3 + i * ?4, 'github:' || ((i * 7919) % 1000), 'client' || (i % 7), 'tools/call',
                CASE WHEN i % 3 = 0 THEN 'everything' ELSE 'memory' END, 'tool_' || (i % 20),
                CASE WHEN i % 20 = 0 THEN 'deny' ELSE 'allow' END,
                CASE WHEN i % 20 = 0 THEN 'tool_not_granted' ELSE 'granted' END,
                CASE WHEN i % 20 = 0 THEN NULL WHEN i % 50 = 1 THEN 'tool_error' ELSE 'ok' END,
                i % 40, 'bench'
         FROM n`,
      )
      .bind(done, done + n - 1, start, Math.floor(SPAN_MS / ROWS))
      .run();
  }
  log(`filled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const db = new Kysely<Database>({
    dialect: new D1Dialect({ database: d1 as unknown as D1Config["database"] }),
  });

  const time = async (fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> => {
    await fn();
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await fn();
      samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
    return { p50: at(0.5), p95: at(0.95) };
  };
  const filters: Record<string, AuditFilter> = {
    "no filter": {},
    person: { principal: "github:42" },
    server: { server: "everything" },
    "server + tool": { server: "memory", tool: "tool_7" },
    "decision = deny": { decision: "deny" },
    "outcome = tool_error": { outcome: "tool_error" },
    "last 24 h": { fromMs: now - 86_400_000, toMs: now },
    "person + last 7 days": { principal: "github:42", fromMs: now - 7 * 86_400_000, toMs: now },
  };
  const rows: string[] = [];
  for (const [name, filter] of Object.entries(filters)) {
    // The deep page's cursor, reached by walking the keyset (as a person clicking "Older" would).
    let cursor: AuditCursor | null = null;
    for (let i = 0; i < DEEP_PAGES && (i === 0 || cursor); i++)
      cursor = (await auditPage(db, filter, cursor, PAGE_ROWS)).next;
    const deep = cursor;
    const first = await time(() => auditPage(db, filter, null, PAGE_ROWS));
    const keyset = deep ? await time(() => auditPage(db, filter, deep, PAGE_ROWS)) : null;
    const offset = await time(() =>
      filtered(db.selectFrom("audit_log").selectAll(), filter)
        .orderBy("at_ms", "desc")
        .orderBy("id", "desc")
        .limit(PAGE_ROWS)
        .offset(DEEP_PAGES * PAGE_ROWS)
        .execute(),
    );
    const ms = (v: number) => v.toFixed(2);
    rows.push(
      `| ${name} | ${ms(first.p50)} / ${ms(first.p95)} | ${keyset ? `${ms(keyset.p50)} / ${ms(keyset.p95)}` : "(fewer pages)"} | ${ms(offset.p50)} / ${ms(offset.p95)} |`,
    );
    log(rows.at(-1) ?? "");
  }
  const chart = await time(() => chartSeries(db, {}, now));
  const people = await time(() => knownSubjects(db, "dev"));
  const report = [
    `Audit paging at ${ROWS.toLocaleString("en")} rows (${machine().cpus} × ${machine().cpuModel}; local D1 through wrangler's getPlatformProxy; ${RUNS} runs each, ms p50 / p95).`,
    "",
    `| filter | first page | page ${DEEP_PAGES + 1} by keyset | page ${DEEP_PAGES + 1} by OFFSET (not used) |`,
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    `Chart of the last 24 h (${Math.round(ROWS / 30).toLocaleString("en")} rows grouped): ${chart.p50.toFixed(1)} / ${chart.p95.toFixed(1)} ms. ` +
      `Principals seen in the log (skip scan over 1,000 distinct): ${people.p50.toFixed(1)} / ${people.p95.toFixed(1)} ms.`,
    "",
  ].join("\n");
  process.stdout.write(`${report}\n`);
  if (values.write) {
    await writeFile(
      path.join(root, "bench", "AUDIT-PAGING.md"),
      `# Audit paging (the console's audit view)\n\nMeasured by \`npm exec -- node bench/audit-paging.ts --write\`.\n\n${report}\n${READING}`,
    );
  }
} finally {
  await proxy.dispose();
  await rm(persist, { recursive: true, force: true });
}
