import {
  abortAllDurableObjects,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditContentOf } from "../../../worker/audit/audit.ts";
import { chainHash, GENESIS_HASH } from "../../../worker/audit/chain.ts";
import { type AuditLedger, SHIP_BATCH_ROWS, SHIP_RETRY_FIRST_MS } from "../../../worker/audit/ledger.ts";
import { ledgerOf } from "./ledgers.ts";

/**
 * The audit ledger (worker/audit/ledger.ts) in workerd, with real Durable Object storage and real D1:
 * rows are durable in the object when `append` resolves, and reach D1 afterwards, exactly once, whatever
 * happens in between. Faults are real ones: D1 refusing inserts (a trigger, as an operator could make
 * one), the object's own storage refusing a write (a trigger in its SQLite), the object evicted or aborted.
 */

const BOB = "mock:bob";

const row = (n: number, principal = BOB) =>
  auditContentOf(
    { principal, clientId: "client-1", sessionId: "d-1", policyHash: "p1" },
    { action: "tools/call", server: "memory", tool: `tool_${n}`, decision: "allow", reason: "granted", outcome: "ok" },
    1_795_708_800_000 + n,
  );

interface D1Row {
  id: number;
  tool: string;
  stream: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

async function d1Rows(principal = BOB): Promise<D1Row[]> {
  const { results } = await env.DB.prepare(
    "SELECT id, tool, stream, seq, prev_hash, hash FROM audit_log WHERE principal = ? ORDER BY id",
  )
    .bind(principal)
    .all<D1Row>();
  return results;
}

async function anchors(): Promise<{ stream: string; seq: number; hash: string }[]> {
  return (
    await env.DB.prepare("SELECT stream, seq, hash FROM audit_anchors ORDER BY stream, seq").all<{
      stream: string;
      seq: number;
      hash: string;
    }>()
  ).results;
}

const D1_REFUSES_AUDIT_ROWS =
  "CREATE TRIGGER test_audit_offline BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit offline'); END";
const D1_ACCEPTS_AUDIT_ROWS = "DROP TRIGGER test_audit_offline";

/** The message an RPC call rejects with (awaited here: an RPC promise handed to `expect` is also left unhandled). */
async function errorOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    return String(error);
  }
  throw new Error("expected a rejection");
}

/** Polls until `check` holds (the ledger's own alarm is running in the background), or fails after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("append: the row is chained and durable in the ledger when the call resolves", () => {
  it("mints one stream, counts seq from 1, links each row to the one before (SHA-256 over the canonical row)", async () => {
    const ledger = ledgerOf(BOB);
    const first = await ledger.append(row(1));
    const second = await ledger.append(row(2));
    expect(first.seq).toBe(1);
    expect(second).toMatchObject({ stream: first.stream, seq: 2 });
    expect(first.hash).toBe(await chainHash(first.stream, GENESIS_HASH, row(1)));
    expect(second.hash).toBe(await chainHash(first.stream, first.hash, row(2)));
    // Another principal: another ledger, another stream.
    const alice = await ledgerOf("mock:alice").append(row(1, "mock:alice"));
    expect(alice.stream).not.toBe(first.stream);
    expect(alice.seq).toBe(1);
  });

  it("concurrent appends are serialised: no seq is given twice, every link holds", async () => {
    const ledger = ledgerOf(BOB);
    const receipts = await Promise.all(Array.from({ length: 12 }, (_, i) => ledger.append(row(i))));
    expect(receipts.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    await ledger.ship();
    const rows = await d1Rows();
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(rows.map((r) => r.prev_hash)).toEqual([GENESIS_HASH, ...rows.slice(0, -1).map((r) => r.hash)]);
  });

  it("a ledger whose storage refuses the write rejects: no receipt, nothing to ship", async () => {
    const ledger = ledgerOf(BOB);
    await ledger.state();
    await runInDurableObject(ledger, (_: AuditLedger, state) => {
      state.storage.sql.exec(
        "CREATE TRIGGER test_ledger_offline BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'ledger offline'); END",
      );
    });
    expect(await errorOf(() => ledger.append(row(1)))).toMatch(/ledger offline/);
    expect(await ledger.state()).toMatchObject({ headSeq: 0, pending: 0 });
  });
});

describe("shipment: the alarm ships rows to D1 after the answer, in order, in batches, with an anchor each", () => {
  it("the alarm alone brings every row to D1, seq order = D1 order, each batch anchored at its last row", async () => {
    const ledger = ledgerOf(BOB);
    const count = SHIP_BATCH_ROWS + 5;
    for (let i = 1; i <= count; i++) await ledger.append(row(i));
    await eventually(async () => (await ledger.state()).pending === 0);
    const rows = await d1Rows();
    expect(rows.map((r) => r.tool)).toEqual(Array.from({ length: count }, (_, i) => `tool_${i + 1}`));
    const stream = rows[0]?.stream ?? "";
    const anchored = (await anchors()).filter((a) => a.stream === stream);
    // Every anchor names a row D1 has, with its hash; the newest is the last row.
    expect(anchored.length).toBeGreaterThanOrEqual(2);
    for (const a of anchored) expect(rows.find((r) => r.seq === a.seq)?.hash).toBe(a.hash);
    expect(anchored.at(-1)?.seq).toBe(count);
    expect(await ledger.state()).toMatchObject({ shippedSeq: count, pending: 0, failures: 0 });
  });

  it("D1 refusing audit rows: appends still succeed, rows wait with backoff, then arrive exactly once", async () => {
    await env.DB.prepare(D1_REFUSES_AUDIT_ROWS).run();
    const ledger = ledgerOf(BOB);
    for (let i = 1; i <= 3; i++) await ledger.append(row(i));
    const refused = await ledger.ship();
    expect(refused.error).toMatch(/audit offline/);
    const waiting = await ledger.state();
    expect(waiting).toMatchObject({ headSeq: 3, shippedSeq: 0, pending: 3 });
    expect(waiting.failures).toBeGreaterThanOrEqual(1);
    expect(waiting.retryAtMs).toBeGreaterThanOrEqual(Date.now() - 50 + SHIP_RETRY_FIRST_MS / 2);
    expect(await d1Rows()).toEqual([]);

    await env.DB.prepare(D1_ACCEPTS_AUDIT_ROWS).run();
    // The retry alarm (no help from the test) ships them.
    await eventually(async () => (await ledger.state()).pending === 0);
    expect((await d1Rows()).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(await ledger.state()).toMatchObject({ shippedSeq: 3, failures: 0, retryAtMs: 0 });
  });
});

describe("crash between the durable write and the shipment: the row reaches D1 exactly once", () => {
  it("the object evicted, then every instance aborted (as a redeploy does), before any shipment", async () => {
    await env.DB.prepare(D1_REFUSES_AUDIT_ROWS).run();
    const ledger = ledgerOf(BOB);
    const receipt = await ledger.append(row(1));
    await evictDurableObject(ledger);
    await abortAllDurableObjects();
    await env.DB.prepare(D1_ACCEPTS_AUDIT_ROWS).run();
    // The stored alarm survives the object: run it now rather than wait for the backoff.
    const again = ledgerOf(BOB);
    await runDurableObjectAlarm(again);
    await eventually(async () => (await again.state()).pending === 0);
    const rows = await d1Rows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ stream: receipt.stream, seq: 1, hash: receipt.hash });
    // Whatever runs again later inserts nothing.
    await again.ship();
    expect(await d1Rows()).toHaveLength(1);
  });

  it("D1 committed the batch and the object died before noting it: the batch goes again, D1 keeps one copy", async () => {
    const ledger = ledgerOf(BOB);
    await ledger.state();
    // The ledger's own storage refuses to delete shipped rows: exactly the moment after D1 committed.
    await runInDurableObject(ledger, (_: AuditLedger, state) => {
      state.storage.sql.exec(
        "CREATE TRIGGER test_crash_after_commit BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'crashed'); END",
      );
    });
    await ledger.append(row(1));
    await ledger.append(row(2));
    await eventually(async () => (await d1Rows()).length === 2);
    expect((await ledger.state()).pending).toBe(2);
    await runInDurableObject(ledger, (_: AuditLedger, state) => {
      state.storage.sql.exec("DROP TRIGGER test_crash_after_commit");
    });
    await evictDurableObject(ledger).catch(() => {});
    const report = await ledgerOf(BOB).ship();
    expect(report).toMatchObject({ pending: 0, error: null });
    expect((await d1Rows()).map((r) => r.seq)).toEqual([1, 2]);
    const stream = (await d1Rows())[0]?.stream;
    expect((await anchors()).filter((a) => a.stream === stream).map((a) => a.seq)).toEqual([2]);
  });
});
