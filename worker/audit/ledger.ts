import { DurableObject } from "cloudflare:workers";
import { type ChainedRow, shipmentStatements } from "../db/audit-shipment.ts";
import { RATE_LIMITED_ACTIONS, RATE_WINDOW_MS } from "../db/grants.repository.ts";
import type { AuditLog } from "./audit.ts";
import { type AuditContent, chainHash, GENESIS_HASH } from "./chain.ts";

/**
 * THE audit ledger (issue 18): where every audit row is made durable before its request is answered, and
 * from where it is shipped to D1 afterwards.
 *
 * Why a Durable Object of its own, one per principal (`ledger:<principal>`), and not the container's:
 * - A write to a Durable Object's storage is durable before the object's answer is released (its output
 *   gate), so "no row, no result" holds with the row written here, without a round trip to D1's primary.
 * - Most rows never touch a container: denials, admin actions, sign-ins, connections. And locally (no
 *   Docker) the Worker reaches the bridge process directly, with no container object on the path: a
 *   ledger class runs the same way locally, in the tests and deployed.
 * - A shared server's container serves many people; a ledger per principal is one chain per person, made
 *   by that person's first request, so it lives near them (Durable Objects are placed near the request
 *   that creates them).
 *
 * Storage (SQLite): `head` (the stream's id, minted at the first row, its last seq and hash, how far it
 * is shipped, the shipment retry state), `outbox` (rows written and not yet shipped, in seq order) and
 * `calls` (when the principal's allowed calls of the last minute were made: its roles' rate limit).
 *
 * The rate limit counts here, not in D1: D1 has a row only once it is shipped, and a client that calls
 * again at once would find its previous call not counted yet. The ledger has every row of its principal
 * when the row's request is answered, so the count is exact (as exact as before: concurrent calls still
 * race). It costs a rate-limited call one more request to this object, before the call
 * (call-guards.ts, enforceRateLimit); a call without a rate limit does not ask.
 *
 * Shipment: the alarm. Appending to an empty outbox sets it for now; each run sends at most
 * SHIP_BATCH_ROWS rows and their anchor as one D1 batch (worker/db/audit-shipment.ts), deletes them from the outbox, and
 * sets the alarm again while rows remain. A failed batch is retried after 1 s, 2 s, 4 s … up to 60 s,
 * forever: rows are never dropped. Bound (README "Audit log"): with D1 up, a row reaches D1 one alarm run
 * after its write (the run starts at once; backlog goes SHIP_BATCH_ROWS rows per run); with D1 down, at
 * most SHIP_RETRY_MAX_MS after D1 accepts writes again.
 *
 * Exactly once across a crash, an eviction or a redeploy: the rows are in storage before the request
 * is answered, and the alarm is stored with them; an alarm that did not finish runs again (Cloudflare
 * retries a failed or interrupted alarm), and the object sets one when it wakes with rows waiting and
 * none set. A batch D1 committed whose deletion here never happened is sent again, and D1 ignores
 * rows whose id, (stream, seq), it already has.
 */

export interface LedgerEnv {
  readonly DB: D1Database;
}

/**
 * Rows per shipment. A batch is this many inserts and one anchor, 41 queries: under the 50 queries D1
 * allows one invocation on the Workers Free plan (an alarm run is one invocation).
 */
export const SHIP_BATCH_ROWS = 40;
/** The first retry after a failed shipment; each further failure doubles it. */
export const SHIP_RETRY_FIRST_MS = 1_000;
/** The longest wait between retries while D1 refuses: the bound after it accepts writes again. */
export const SHIP_RETRY_MAX_MS = 60_000;
/** `ship()` (tests, the console) sends at most this many batches in one call. */
const MAX_BATCHES_PER_FLUSH = 50;

export interface LedgerReceipt {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
}

/** What a ledger holds now (tests; the console's verification compares D1 with it). */
export interface LedgerState {
  /** Null until the first row. */
  readonly stream: string | null;
  readonly headSeq: number;
  readonly headHash: string;
  /** The last row D1 is known to have (0: none). */
  readonly shippedSeq: number;
  readonly shippedHash: string | null;
  /** Rows written and not shipped yet. */
  readonly pending: number;
  /** Shipments failed in a row, and when the next one runs (0: none waiting). */
  readonly failures: number;
  readonly retryAtMs: number;
}

export interface ShipReport {
  readonly shipped: number;
  readonly pending: number;
  /** The last failure's text, when the shipment stopped on one. */
  readonly error: string | null;
}

interface HeadRow extends Record<string, SqlStorageValue> {
  stream: string;
  seq: number;
  hash: string;
  shipped_seq: number;
  shipped_hash: string | null;
  failures: number;
  retry_at_ms: number;
}

interface OutboxRow extends Record<string, SqlStorageValue> {
  seq: number;
  prev_hash: string;
  hash: string;
  content: string;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    shipped_seq INTEGER NOT NULL DEFAULT 0,
    shipped_hash TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    retry_at_ms INTEGER NOT NULL DEFAULT 0
  )`,
  `CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    content TEXT NOT NULL
  )`,
  "CREATE TABLE IF NOT EXISTS calls (seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL)",
];

const COUNTED: ReadonlySet<string> = new Set(RATE_LIMITED_ACTIONS);

export class AuditLedger extends DurableObject<LedgerEnv> {
  /** Appends run one at a time: each reads the head, hashes (asynchronously), then writes the new head. */
  #appending: Promise<unknown> = Promise.resolve();
  /** The shipment in flight, which the alarm and `ship()` share rather than send the same rows twice. */
  #shipping: Promise<ShipReport> | null = null;

  constructor(ctx: DurableObjectState, env: LedgerEnv) {
    super(ctx, env);
    for (const statement of SCHEMA) ctx.storage.sql.exec(statement);
    // Rows waiting with no alarm set are never expected (the alarm is stored with the rows); should it
    // happen, the first wake-up sets one, so no row waits for another row to be written.
    void ctx.blockConcurrencyWhile(async () => {
      if (this.#pending() > 0 && (await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now());
    });
  }

  /**
   * Writes one row, chained to the previous one. Resolves once the row is durable here: the answer of a
   * Durable Object is held until its storage writes are confirmed. A rejection means no row: the caller
   * fails its request (call-guards.ts, auditOrFail).
   */
  append(row: AuditContent): Promise<LedgerReceipt> {
    const run = this.#appending.then(() => this.#appendNow(row));
    this.#appending = run.catch(() => {});
    return run;
  }

  async #appendNow(row: AuditContent): Promise<LedgerReceipt> {
    const sql = this.ctx.storage.sql;
    const head = this.#head();
    const stream = head?.stream ?? crypto.randomUUID();
    const seq = (head?.seq ?? 0) + 1;
    const prevHash = head?.hash ?? GENESIS_HASH;
    const hash = await chainHash(stream, prevHash, row);
    const first = this.#pending() === 0;
    this.ctx.storage.transactionSync(() => {
      sql.exec(
        "INSERT INTO outbox (seq, prev_hash, hash, content) VALUES (?, ?, ?, ?)",
        seq,
        prevHash,
        hash,
        JSON.stringify(row),
      );
      if (head) sql.exec("UPDATE head SET seq = ?, hash = ? WHERE id = 1", seq, hash);
      else sql.exec("INSERT INTO head (id, stream, seq, hash) VALUES (1, ?, ?, ?)", stream, seq, hash);
      if (row.decision === "allow" && COUNTED.has(row.action)) {
        sql.exec("DELETE FROM calls WHERE at_ms <= ?", Date.now() - RATE_WINDOW_MS);
        sql.exec("INSERT INTO calls (seq, at_ms) VALUES (?, ?)", seq, row.at_ms);
      }
    });
    // Set in the same turn as the rows, so it is committed with them. A non-empty outbox has an alarm
    // already (or a shipment in flight, which sets the next one when it sees this row).
    if (first) await this.ctx.storage.setAlarm(Date.now());
    return { stream, seq, hash };
  }

  /** The principal's allowed calls (the rate-limited actions) made after `sinceMs`: its rows, shipped or not. */
  callsSince(sinceMs: number): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM calls WHERE at_ms > ?", sinceMs).one().n;
  }

  override async alarm(): Promise<void> {
    await this.#shipOnce();
  }

  /**
   * Ships every waiting row now, whatever the retry schedule says, and reports what is left. For tests
   * and the console's "ship now"; the alarm does this on its own.
   */
  async ship(): Promise<ShipReport> {
    let shipped = 0;
    for (let i = 0; i < MAX_BATCHES_PER_FLUSH; i++) {
      const report = await this.#shipOnce();
      shipped += report.shipped;
      if (report.error !== null || report.pending === 0) return { ...report, shipped };
    }
    return { shipped, pending: this.#pending(), error: null };
  }

  state(): LedgerState {
    const head = this.#head();
    return {
      stream: head?.stream ?? null,
      headSeq: head?.seq ?? 0,
      headHash: head?.hash ?? GENESIS_HASH,
      shippedSeq: head?.shipped_seq ?? 0,
      shippedHash: head?.shipped_hash ?? null,
      pending: this.#pending(),
      failures: head?.failures ?? 0,
      retryAtMs: head?.retry_at_ms ?? 0,
    };
  }

  #shipOnce(): Promise<ShipReport> {
    this.#shipping ??= this.#shipBatch().finally(() => {
      this.#shipping = null;
    });
    return this.#shipping;
  }

  async #shipBatch(): Promise<ShipReport> {
    const sql = this.ctx.storage.sql;
    const head = this.#head();
    const rows = sql
      .exec<OutboxRow>("SELECT seq, prev_hash, hash, content FROM outbox ORDER BY seq LIMIT ?", SHIP_BATCH_ROWS)
      .toArray();
    const last = rows.at(-1);
    if (!head || !last) return { shipped: 0, pending: 0, error: null };
    const chained: ChainedRow[] = rows.map((r) => ({
      seq: r.seq,
      prevHash: r.prev_hash,
      hash: r.hash,
      content: JSON.parse(r.content) as AuditContent,
    }));
    try {
      await this.env.DB.batch(shipmentStatements(this.env.DB, head.stream, chained, Date.now()));
      this.ctx.storage.transactionSync(() => {
        sql.exec("DELETE FROM outbox WHERE seq <= ?", last.seq);
        sql.exec(
          "UPDATE head SET shipped_seq = ?, shipped_hash = ?, failures = 0, retry_at_ms = 0 WHERE id = 1 AND shipped_seq < ?",
          last.seq,
          last.hash,
          last.seq,
        );
      });
    } catch (error) {
      // D1 refused or did not answer (or it answered and this object could not note it: the same rows go
      // again, and D1 ignores what it has). The rows stay; the next try waits longer each time.
      const failures = head.failures + 1;
      const delayMs = Math.min(SHIP_RETRY_FIRST_MS * 2 ** (failures - 1), SHIP_RETRY_MAX_MS);
      const retryAtMs = Date.now() + delayMs;
      sql.exec("UPDATE head SET failures = ?, retry_at_ms = ? WHERE id = 1", failures, retryAtMs);
      await this.ctx.storage.setAlarm(retryAtMs);
      console.error(
        JSON.stringify({
          event: "audit_shipment_failed",
          stream: head.stream,
          rows: rows.length,
          failures,
          retryInMs: delayMs,
          error: String(error),
        }),
      );
      return { shipped: 0, pending: this.#pending(), error: String(error) };
    }
    const pending = this.#pending();
    if (pending > 0) await this.ctx.storage.setAlarm(Date.now());
    return { shipped: rows.length, pending, error: null };
  }

  #head(): HeadRow | null {
    return this.ctx.storage.sql.exec<HeadRow>("SELECT * FROM head WHERE id = 1").toArray()[0] ?? null;
  }

  #pending(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n;
  }
}

/** The bindings a Worker or an object needs to write audit rows (name: worker/bindings.ts). */
export interface LedgerBindings {
  readonly AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
}

/** Each principal's rows go to its own ledger: one stream per person, near that person. */
export function ledgerName(principal: string): string {
  return `ledger:${principal}`;
}

/** The audit log of a Worker or an object: each row to its principal's ledger, durable when this resolves. */
export function auditLog(env: LedgerBindings): AuditLog {
  const ledger = (principal: string) => env.AUDIT_LEDGER.getByName(ledgerName(principal));
  return {
    async append(row) {
      await ledger(row.principal).append(row);
    },
    async callsSince(principal, sinceMs) {
      return await ledger(principal).callsSince(sinceMs);
    },
  };
}
