// The audit ledger on the local stack (issue 18): real clients, real servers, the metered Worker entry
// (the product's Worker and Durable Objects, unchanged, with counters; test/workers/metering/), and the
// stack's own local D1 for `npm run audit:verify`. Ports 18730–18732 (this file's range: 18730–18739).
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";
import { chainHash, HASHED_COLUMNS } from "../../worker/audit/chain.ts";
import { d1Execute, d1Query, d1QuerySettled, d1QueryUntil } from "./helpers/d1.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import type { DemoPerson } from "./helpers/oauth-flow.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const BASE = 18730;
const METERED_WORKER_ENTRY = "test/workers/metering/metered-worker.ts";
const run = promisify(execFile);

let state: Awaited<ReturnType<typeof tempStateDir>>;
let stack: LocalStack | null = null;
const opened: Connected[] = [];

async function start(): Promise<LocalStack> {
  const started = await startStackIn(BASE, state.dir, { workerEntry: METERED_WORKER_ENTRY });
  stack = started.stack;
  return stack;
}

function url(): string {
  if (!stack) throw new Error("no stack");
  return stack.url;
}

async function open(person: DemoPerson, capabilities: Record<string, unknown> = {}): Promise<Connected> {
  const c = await connectAs(url(), person, { clientOptions: { capabilities } });
  opened.push(c);
  return c;
}

async function closeClients(): Promise<void> {
  for (const c of opened.splice(0)) await c.client.close().catch(() => {});
}

type Tallies = Record<string, { count: number }>;

async function meter(method: "GET" | "POST"): Promise<Tallies> {
  const res = await fetch(`${url()}/__meter`, { method });
  expect(res.status).toBe(200);
  return (await res.json()) as Tallies;
}

/**
 * What `run` cost, once the ledgers have shipped: D1 writes on the request path (the Worker and the
 * session object: `d1.*`), ledger appends (the audit writes the answers waited for), and the ledgers'
 * own D1 batches (`d1.ledger.*`, the shipments, after the answers).
 */
async function costOf(run: () => Promise<unknown>) {
  await meter("POST");
  await run();
  const count = (t: Tallies, k: string) => t[k]?.count ?? 0;
  let t = await meter("GET");
  for (let i = 0; i < 50 && count(t, "d1.ledger.batch") === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    t = await meter("GET");
  }
  return {
    requestPathD1Writes: count(t, "d1.write") + count(t, "d1.batch") + count(t, "d1.exec"),
    ledgerAppends: count(t, "do.ledger.append"),
    shipped: count(t, "d1.ledger.batch") > 0,
  };
}

const echo = (c: Connected, message: string) => c.client.callTool({ name: "everything__echo", arguments: { message } });

const countSql = (principal: string) => `SELECT count(*) AS n FROM audit_log WHERE principal = '${principal}'`;
const countOf = async (principal: string) => Number((await d1Query(state.dir, countSql(principal)))[0]?.n);
const settledCountOf = async (principal: string) =>
  Number((await d1QuerySettled(state.dir, countSql(principal)))[0]?.n);

beforeAll(async () => {
  state = await tempStateDir("audit-ledger");
  await start();
});

afterAll(async () => {
  await closeClients();
  await stack?.stop();
  await state?.remove();
});

describe("the audit write of a real call: 0 D1 writes before the answer, one ledger write, the shipment after", () => {
  it("an allowed tools/call answered by the server, on the direct path: per call 0 D1 writes, 1 ledger append", async () => {
    const erin = await open("erin");
    expect(JSON.stringify((await echo(erin, "warm")).content)).toContain("warm");
    const cost = await costOf(async () => {
      for (let i = 0; i < 3; i++) expect(JSON.stringify((await echo(erin, `m${i}`)).content)).toContain(`m${i}`);
    });
    expect(cost).toEqual({ requestPathD1Writes: 0, ledgerAppends: 3, shipped: true });
  });

  it("through the session object (a client that declares elicitation): likewise", async () => {
    const bob = await open("bob", { elicitation: {} });
    await echo(bob, "warm");
    const cost = await costOf(() => echo(bob, "via the session object"));
    expect(cost).toEqual({ requestPathD1Writes: 0, ledgerAppends: 1, shipped: true });
  });

  it("a denied tools/call: likewise", async () => {
    const dave = await open("dave");
    const cost = await costOf(async () => expect(await callError(dave.client, "everything__echo", {})).not.toBeNull());
    expect(cost).toEqual({ requestPathD1Writes: 0, ledgerAppends: 1, shipped: true });
  });
});

describe("crash between the durable write and the shipment: every row reaches D1 exactly once", () => {
  it("D1 refuses audit rows, the calls are answered anyway, the stack is stopped and started again; then D1 accepts", async () => {
    const erin = await open("erin");
    await echo(erin, "warm");
    // Every row so far in D1 first (the count settled), then count from there.
    const before = await settledCountOf("mock:erin");
    await d1Execute(
      state.dir,
      "CREATE TRIGGER e2e_audit_offline BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit offline'); END",
    );
    try {
      for (const m of ["while D1 refuses 1", "while D1 refuses 2"]) {
        expect(JSON.stringify((await echo(erin, m)).content)).toContain(m);
      }
      expect(await countOf("mock:erin")).toBe(before);
      // The Worker process goes away with the rows still waiting in erin's ledger (a redeploy, a crash).
      await closeClients();
      await stack?.stop();
      stack = null;
      await start();
    } finally {
      await d1Execute(state.dir, "DROP TRIGGER IF EXISTS e2e_audit_offline");
    }
    // Nothing asks erin's ledger for anything: its stored alarm alone ships the rows (backoff ≤ a few s).
    const rows = await d1QueryUntil(
      state.dir,
      "SELECT seq FROM audit_log WHERE principal = 'mock:erin' ORDER BY seq",
      (r) => r.length >= before + 2,
      60_000,
    );
    expect(rows.length).toBe(before + 2);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: before + 2 }, (_, i) => i + 1));
  }, 180_000);
});

describe("npm run audit:verify on the stack's local D1", () => {
  const verify = async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts["audit:verify"]).toBe("node scripts/audit-verify.ts");
    try {
      const out = await run(
        process.execPath,
        [path.join(REPO_ROOT, "scripts/audit-verify.ts"), "--persist-to", path.join(state.dir, "wrangler")],
        { cwd: REPO_ROOT },
      );
      return { code: 0, stdout: out.stdout };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: `${e.stdout ?? ""}${e.stderr ?? ""}` };
    }
  };

  /** A person's stream and its rows, as D1 has them. */
  const streamOf = async (principal: string) => {
    const rows = await d1Query(
      state.dir,
      `SELECT id, stream, seq, hash FROM audit_log WHERE principal = '${principal}' AND stream IS NOT NULL ORDER BY seq`,
    );
    return {
      stream: String(rows[0]?.stream),
      rows: rows.map((r) => ({ id: Number(r.id), seq: Number(r.seq), hash: String(r.hash) })),
    };
  };

  it("intact, then each of the four kinds of tampering named with its first row", async () => {
    const people = ["alice", "carol", "dave", "frank"] as const;
    for (const person of people) {
      const c = await open(person);
      for (let i = 0; i < 3; i++) await echo(c, `verify ${i}`).catch(() => {});
    }
    await d1QueryUntil(
      state.dir,
      "SELECT principal, count(*) AS n FROM audit_log WHERE principal IN ('mock:alice','mock:carol','mock:dave','mock:frank') GROUP BY principal",
      (r) => r.length === 4 && r.every((x) => Number(x.n) >= 3),
    );
    const intact = await verify();
    expect(intact.stdout).toMatch(/^audit:verify: intact \(local D1 in .*\): \d+ streams, \d+ rows, \d+ anchors/);
    expect(intact.code).toBe(0);

    // edited: one of alice's rows says something else.
    const alice = await streamOf("mock:alice");
    const edited = alice.rows[1];
    await d1Execute(state.dir, `UPDATE audit_log SET reason = 'edited_by_hand' WHERE id = ${edited?.id}`);
    // deleted: one of carol's rows is gone.
    const carol = await streamOf("mock:carol");
    await d1Execute(state.dir, `DELETE FROM audit_log WHERE id = ${carol.rows[1]?.id}`);
    // reordered: two of dave's rows trade places.
    const dave = await streamOf("mock:dave");
    const [d2, d3] = [dave.rows[1], dave.rows[2]];
    await d1Execute(
      state.dir,
      `UPDATE audit_log SET seq = -1 WHERE id = ${d2?.id}; UPDATE audit_log SET seq = 2 WHERE id = ${d3?.id}; UPDATE audit_log SET seq = 3 WHERE id = ${d2?.id};`,
    );
    // inserted: a forged row chained after frank's first one, the rows after it moved up.
    const frank = await streamOf("mock:frank");
    const [template] = await d1Query(state.dir, `SELECT * FROM audit_log WHERE id = ${frank.rows[0]?.id}`);
    const forged: Record<string, unknown> = { ...template, tool: "forged", at_ms: Number(template?.at_ms) + 1 };
    const hash = await chainHash(frank.stream, frank.rows[0]?.hash ?? "", forged);
    const sqlValue = (v: unknown) =>
      v === null || v === undefined
        ? "NULL"
        : typeof v === "number"
          ? String(v)
          : `'${String(v).replaceAll("'", "''")}'`;
    await d1Execute(
      state.dir,
      `UPDATE audit_log SET seq = seq + 1000 WHERE stream = '${frank.stream}' AND seq >= 2;
       UPDATE audit_log SET seq = seq - 999 WHERE stream = '${frank.stream}' AND seq >= 1000;
       INSERT INTO audit_log (${[...HASHED_COLUMNS, "stream", "seq", "prev_hash", "hash"].join(", ")})
         VALUES (${[...HASHED_COLUMNS.map((c) => sqlValue(forged[c])), sqlValue(frank.stream), "2", sqlValue(frank.rows[0]?.hash), sqlValue(hash)].join(", ")});`,
    );
    const forgedId = Number((await d1Query(state.dir, "SELECT id FROM audit_log WHERE tool = 'forged'"))[0]?.id);

    const tampered = await verify();
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain("audit:verify: TAMPERED");
    const lines = tampered.stdout.split("\n").filter((l) => l.startsWith("  "));
    const line = (kind: string, stream: string) =>
      lines.find((l) => l.includes(`${kind}: stream ${stream} `)) ?? lines.join("\n");
    expect(line("edited", alice.stream)).toContain(`seq 2 (row ${edited?.id}) of mock:alice`);
    expect(line("deleted", carol.stream)).toContain("seq 2");
    expect(line("reordered", dave.stream)).toContain(`seq 2 (row ${d3?.id}) of mock:dave`);
    expect(line("inserted", frank.stream)).toContain(`seq 2 (row ${forgedId}) of mock:frank`);
    expect(lines).toHaveLength(4);
  }, 180_000);
});
