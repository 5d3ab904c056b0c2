import { type AuditContent, HASHED_COLUMNS } from "../audit/chain.ts";

/** A row as its ledger keeps it until shipped: the content and its place in the chain. */
export interface ChainedRow {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly content: AuditContent;
}

const COLUMNS = [...HASHED_COLUMNS, "stream", "seq", "prev_hash", "hash"] as const;

/**
 * SECURITY/durability: idempotent by the row's id, (stream, seq), minted when the ledger wrote it. A
 * shipment that D1 committed but the ledger never heard back from is sent again, and this inserts
 * nothing the second time (the unique index audit_log_chain, migrations/0007). Only that conflict is
 * ignored: any other failure fails the batch, and the rows wait in the ledger.
 */
const INSERT_ROW = `INSERT INTO audit_log (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})
  ON CONFLICT (stream, seq) DO NOTHING`;

/** The stream's head after this shipment; the same anchor sent twice is one row. */
const INSERT_ANCHOR = `INSERT INTO audit_anchors (stream, seq, hash, shipped_at_ms) VALUES (?, ?, ?, ?)
  ON CONFLICT (stream, seq) DO NOTHING`;

/**
 * One shipment as one D1 batch (a transaction: all of it or nothing): its rows in order, then the anchor
 * of the last one. A row is never in D1 without an anchor at or after it, which is what lets the verifier
 * call a row past the newest anchor inserted.
 */
export function shipmentStatements(
  db: D1Database,
  stream: string,
  rows: readonly ChainedRow[],
  shippedAtMs: number,
): D1PreparedStatement[] {
  const last = rows.at(-1);
  if (!last) return [];
  const insert = db.prepare(INSERT_ROW);
  const statements = rows.map((r) =>
    insert.bind(...HASHED_COLUMNS.map((c) => r.content[c] ?? null), stream, r.seq, r.prevHash, r.hash),
  );
  statements.push(db.prepare(INSERT_ANCHOR).bind(stream, last.seq, last.hash, shippedAtMs));
  return statements;
}
