// Usage:
//   npm run audit:verify                         the local D1 of `npm start` (HATAGO_STATE_DIR, else .hatago)
//   npm run audit:verify -- --persist-to <dir>   a local D1 kept elsewhere (wrangler's --persist-to)
//   npm run audit:verify -- --remote --database <name> [--config <wrangler config>]
//                                                a deployed stack's D1 (needs wrangler's Cloudflare login)
//
// Checks every audit stream's hash chain against its anchors (worker/audit/verify.ts, the verifier the
// console runs too) and names, per stream, the first row that was edited, deleted, inserted or reordered.
// Exit status: 0 intact, 1 tampering found, 2 could not check.
//
// A local D1 is read straight from its SQLite file, read-only, in one read transaction (scripts/lib/local-d1.ts),
// so the stack may keep running and shipping while this checks one moment of it; a remote one through wrangler.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describeProblem, type SqlReader, type VerifyReport, verifyAuditChains } from "../worker/audit/verify.ts";
import { readLocalD1 } from "./lib/local-d1.ts";
import { WRANGLER_OFFLINE_ENV } from "./lib/local-stack.ts";
import { REPO_ROOT } from "./lib/server-tools.ts";

const run = promisify(execFile);

/** Rows per query: each remote query starts wrangler (a second or two), so pages are large. */
const PAGE_ROWS = 5_000;

function fail(message: string): never {
  process.stderr.write(`audit:verify: ${message}\n`);
  process.exit(2);
}

type Target =
  | { readonly kind: "remote"; readonly args: readonly string[]; readonly label: string }
  | { readonly kind: "local"; readonly persistTo: string; readonly label: string };

function targetFrom(argv: readonly string[]): Target {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i === -1) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) fail(`${flag} needs a value`);
    return v;
  };
  const known = new Set(["--remote", "--database", "--config", "--persist-to"]);
  for (const arg of argv) {
    if (arg.startsWith("--") && !known.has(arg))
      fail(`unknown option ${arg} (see the usage in scripts/audit-verify.ts)`);
  }
  if (argv.includes("--remote")) {
    const database = value("--database") ?? fail("--remote needs --database <the D1 database's name>");
    const config = value("--config");
    return {
      kind: "remote",
      args: [database, "--remote", ...(config ? ["--config", config] : [])],
      label: `remote D1 ${database}`,
    };
  }
  const persistTo = path.resolve(
    value("--persist-to") ??
      path.join(process.env.HATAGO_STATE_DIR?.trim() || path.join(REPO_ROOT, ".hatago"), "wrangler"),
  );
  return { kind: "local", persistTo, label: `local D1 in ${persistTo}` };
}

/** A literal for wrangler's --command, which takes no bound parameters: numbers as written, text quoted. */
function literal(value: string | number): string {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  return `'${value.replaceAll("'", "''")}'`;
}

function inline(sql: string, params: readonly (string | number)[]): string {
  let i = 0;
  const text = sql.replace(/\?/g, () => {
    if (i >= params.length) throw new Error("more placeholders than parameters");
    return literal(params[i++] as string | number);
  });
  if (i !== params.length) throw new Error("more parameters than placeholders");
  return text.replace(/\s+/g, " ");
}

function wranglerReader(args: readonly string[]): SqlReader {
  return {
    async all<T>(sql: string, params: readonly (string | number)[]): Promise<T[]> {
      const { stdout } = await run(
        process.execPath,
        [
          path.join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
          "d1",
          "execute",
          ...args,
          "--json",
          "--command",
          inline(sql, params),
        ],
        { cwd: REPO_ROOT, env: { ...process.env, ...WRANGLER_OFFLINE_ENV }, maxBuffer: 256 * 1024 * 1024 },
      );
      const parsed = JSON.parse(stdout) as { results?: T[] }[];
      return parsed[0]?.results ?? [];
    },
  };
}

const target = targetFrom(process.argv.slice(2));
let report: VerifyReport;
try {
  report =
    target.kind === "local"
      ? await readLocalD1(target.persistTo, (db) => verifyAuditChains(db, { pageRows: PAGE_ROWS }))
      : await verifyAuditChains(wranglerReader(target.args), { pageRows: PAGE_ROWS });
} catch (error) {
  const detail = error instanceof Error ? ((error as { stderr?: string }).stderr ?? error.message) : String(error);
  fail(`could not read the ${target.label}: ${detail.trim()}`);
}
const covered = `${report.streams} streams, ${report.rows} rows, ${report.anchors} anchors`;
const older =
  report.unchained > 0 ? `; ${report.unchained} older rows carry no chain (before it began): not covered` : "";
if (report.ok) {
  process.stdout.write(`audit:verify: intact (${target.label}): ${covered}${older}\n`);
  process.exit(0);
}
process.stdout.write(`audit:verify: TAMPERED (${target.label}): ${covered}${older}\n`);
for (const problem of report.problems) process.stdout.write(`  ${describeProblem(problem)}\n`);
process.exit(1);
