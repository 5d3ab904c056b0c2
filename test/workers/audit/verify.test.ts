import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { verifyForConsole } from "../../../worker/admin/audit.verify.ts";
import { auditContentOf } from "../../../worker/audit/audit.ts";
import { type AuditContent, chainHash, GENESIS_HASH, HASHED_COLUMNS } from "../../../worker/audit/chain.ts";
import { verifyAuditChains } from "../../../worker/audit/verify.ts";
import { d1SqlReader } from "../../../worker/db/audit-verify.d1.ts";
import { ledgerOf } from "./ledgers.ts";

/**
 * The audit chain verifier (worker/audit/verify.ts) on real chains: rows written by the real ledgers,
 * shipped to the real D1, then tampered with in D1 as someone with write access to it could, in each of
 * the four ways. Each report must name the kind and the first row concerned. `npm run audit:verify` runs
 * the same verifier on the file of a local D1 (test/e2e/audit-ledger.test.ts runs the script itself).
 */

const BOB = "mock:bob";
const CAROL = "mock:carol";
const T0 = 1_795_708_800_000;

const content = (n: number, principal: string): AuditContent =>
  auditContentOf(
    { principal, clientId: "c1", sessionId: "d-1", policyHash: "p1" },
    n % 3 === 0
      ? { action: "tools/call", server: "everything", tool: "get-env", decision: "deny", reason: "tool_not_granted" }
      : { action: "tools/call", server: "memory", tool: `t${n}`, decision: "allow", reason: "granted", outcome: "ok" },
    T0 + n,
  );

interface Row {
  id: number;
  stream: string;
  seq: number;
  hash: string;
  prev_hash: string;
}

let bobStream = "";

/** bob: 6 rows shipped in two shipments (anchors at 2 and 6); carol: 3 rows, one shipment. */
beforeEach(async () => {
  const bob = ledgerOf(BOB);
  for (let n = 1; n <= 2; n++) await bob.append(content(n, BOB));
  await bob.ship();
  for (let n = 3; n <= 6; n++) await bob.append(content(n, BOB));
  await bob.ship();
  const carol = ledgerOf(CAROL);
  for (let n = 1; n <= 3; n++) await carol.append(content(n, CAROL));
  await carol.ship();
  bobStream = (await bob.state()).stream ?? "";
});

const verify = () => verifyAuditChains(d1SqlReader(env.DB), { pageRows: 4 });

async function rowAt(seq: number, stream = bobStream): Promise<Row> {
  const row = await env.DB.prepare(
    "SELECT id, stream, seq, hash, prev_hash FROM audit_log WHERE stream = ? AND seq = ?",
  )
    .bind(stream, seq)
    .first<Row>();
  if (!row) throw new Error(`no row at seq ${seq}`);
  return row;
}

const run = (sql: string, ...params: (string | number)[]) =>
  env.DB.prepare(sql)
    .bind(...params)
    .run();

/** Moves rows of bob's stream at seq >= from by `by` (through a free range, past the unique index). */
async function shiftSeq(from: number, by: number): Promise<void> {
  await run("UPDATE audit_log SET seq = seq + 1000 WHERE stream = ? AND seq >= ?", bobStream, from);
  await run("UPDATE audit_log SET seq = seq - 1000 + ? WHERE stream = ? AND seq >= 1000", by, bobStream);
}

/** A forged row, chained correctly after `prevHash`: what a careful forger inserts. */
async function insertForged(seq: number, prevHash: string): Promise<number> {
  const forged = content(99, BOB);
  const hash = await chainHash(bobStream, prevHash, forged);
  const columns = [...HASHED_COLUMNS, "stream", "seq", "prev_hash", "hash"];
  const result = await run(
    `INSERT INTO audit_log (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
    ...HASHED_COLUMNS.map((c) => forged[c] ?? (null as unknown as string)),
    bobStream,
    seq,
    prevHash,
    hash,
  );
  return Number(result.meta.last_row_id);
}

describe("an untouched log verifies", () => {
  it("every stream, row and anchor checks out, across pages", async () => {
    const report = await verify();
    expect(report).toMatchObject({ ok: true, streams: 2, rows: 9, anchors: 3, unchained: 0, problems: [] });
  });

  it("rows from before the chain (0007) are counted as not covered, not as tampering", async () => {
    await run(
      "INSERT INTO audit_log (at_ms, principal, action, decision, reason) VALUES (?, 'mock:old', 'tools/call', 'allow', 'granted')",
      T0 - 1_000,
    );
    // Written first: an older id than every chained row.
    await run("UPDATE audit_log SET id = 0 WHERE principal = 'mock:old'");
    expect(await verify()).toMatchObject({ ok: true, unchained: 1 });
  });
});

describe("tampering with D1 is named: the kind and the first row", () => {
  it("edited: a denial turned into an allow", async () => {
    const target = await rowAt(3);
    await run("UPDATE audit_log SET decision = 'allow', reason = 'granted' WHERE id = ?", target.id);
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({ kind: "edited", stream: bobStream, seq: 3, id: target.id, principal: BOB }),
    ]);
  });

  it("edited, with the forger recomputing its hash: the next row still names the old hash", async () => {
    const target = await rowAt(4);
    await run("UPDATE audit_log SET tool = 'forged' WHERE id = ?", target.id);
    const row = await env.DB.prepare("SELECT * FROM audit_log WHERE id = ?")
      .bind(target.id)
      .first<Record<string, unknown>>();
    await run(
      "UPDATE audit_log SET hash = ? WHERE id = ?",
      await chainHash(bobStream, target.prev_hash, row ?? {}),
      target.id,
    );
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: "edited", seq: 4, id: target.id })]);
  });

  it("deleted: a row in the middle", async () => {
    const target = await rowAt(3);
    const after = await rowAt(4);
    await run("DELETE FROM audit_log WHERE id = ?", target.id);
    expect((await verify()).problems).toEqual([
      expect.objectContaining({ kind: "deleted", stream: bobStream, seq: 3, id: null }),
    ]);
    expect((await verify()).problems[0]?.detail).toContain(`row ${after.id}`);
  });

  it("deleted: the newest row (the anchor says the stream reached it)", async () => {
    await run("DELETE FROM audit_log WHERE id = ?", (await rowAt(6)).id);
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: "deleted", seq: 6 })]);
  });

  it("deleted: a whole stream whose anchors remain", async () => {
    const carol = (await ledgerOf(CAROL).state()).stream ?? "";
    await run("DELETE FROM audit_log WHERE stream = ?", carol);
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: "deleted", stream: carol, seq: 1 })]);
  });

  it("inserted: a forged row chained in the middle, the rows after it renumbered", async () => {
    const before = await rowAt(2);
    await shiftSeq(3, 1);
    const forged = await insertForged(3, before.hash);
    expect((await verify()).problems).toEqual([
      expect.objectContaining({ kind: "inserted", stream: bobStream, seq: 3, id: forged }),
    ]);
  });

  it("inserted: a forged row chained after the newest one (past the newest anchor)", async () => {
    const forged = await insertForged(7, (await rowAt(6)).hash);
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: "inserted", seq: 7, id: forged })]);
  });

  it("inserted: a row without a chain, written long after the chain began", async () => {
    const result = await run(
      "INSERT INTO audit_log (at_ms, principal, action, decision, reason) VALUES (?, 'mock:mallory', 'admin:unblock', 'allow', 'granted')",
      T0 + 86_400_000,
    );
    expect((await verify()).problems).toEqual([
      expect.objectContaining({ kind: "inserted", id: Number(result.meta.last_row_id), principal: "mock:mallory" }),
    ]);
  });

  it("reordered: two rows' places swapped", async () => {
    const second = await rowAt(2);
    const fourth = await rowAt(4);
    await run("UPDATE audit_log SET seq = -2 WHERE id = ?", second.id);
    await run("UPDATE audit_log SET seq = 2 WHERE id = ?", fourth.id);
    await run("UPDATE audit_log SET seq = 4 WHERE id = ?", second.id);
    expect((await verify()).problems).toEqual([
      expect.objectContaining({ kind: "reordered", stream: bobStream, seq: 2, id: fourth.id }),
    ]);
  });

  it("reordered: the newest two rows swapped", async () => {
    const fifth = await rowAt(5);
    const sixth = await rowAt(6);
    await run("UPDATE audit_log SET seq = -5 WHERE id = ?", fifth.id);
    await run("UPDATE audit_log SET seq = 5 WHERE id = ?", sixth.id);
    await run("UPDATE audit_log SET seq = 6 WHERE id = ?", fifth.id);
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: "reordered", seq: 5, id: sixth.id })]);
  });

  it("each stream names its own first problem; the other streams still verify", async () => {
    await run("DELETE FROM audit_log WHERE id = ?", (await rowAt(2)).id);
    const carol = (await ledgerOf(CAROL).state()).stream ?? "";
    await run("UPDATE audit_log SET tool = 'x' WHERE id = ?", (await rowAt(1, carol)).id);
    const kinds = (await verify()).problems.map((p) => [p.stream, p.kind, p.seq]);
    expect(kinds.sort()).toEqual(
      [
        [bobStream, "deleted", 2],
        [carol, "edited", 1],
      ].sort(),
    );
  });
});

describe("what D1's anchors cannot catch, the ledgers can (the console's check)", () => {
  it("a stream rewritten whole, every hash and anchor recomputed: the script's check passes, the console's does not", async () => {
    // The forger changes row 2 and re-chains everything after it, anchors included.
    const rows = (
      await env.DB.prepare("SELECT * FROM audit_log WHERE stream = ? ORDER BY seq")
        .bind(bobStream)
        .all<Record<string, unknown>>()
    ).results;
    let prev = GENESIS_HASH;
    for (const r of rows) {
      const edited = r.seq === 2 ? { ...r, tool: "rewritten" } : r;
      const hash = await chainHash(bobStream, prev, edited);
      await run(
        "UPDATE audit_log SET tool = ?, prev_hash = ?, hash = ? WHERE id = ?",
        String(edited.tool),
        prev,
        hash,
        Number(r.id),
      );
      await run("UPDATE audit_anchors SET hash = ? WHERE stream = ? AND seq = ?", hash, bobStream, Number(r.seq));
      prev = hash;
    }
    expect((await verify()).ok).toBe(true);
    const consoleReport = await verifyForConsole(env);
    expect(consoleReport.witnessed).toBe(2);
    expect(consoleReport.problems).toEqual([expect.objectContaining({ kind: "edited", stream: bobStream, seq: 6 })]);
  });

  it("the console compares every stream with its ledger and finds nothing on an untouched log", async () => {
    expect(await verifyForConsole(env)).toMatchObject({ ok: true, witnessed: 2, streams: 2 });
  });
});
