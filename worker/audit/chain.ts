import type { AuditLogTable } from "../db/audit-log.table.ts";
import { canonicalJson } from "./canonical.ts";

/** A row as the gateway writes it: every column but D1's `id` and the chain, which its ledger adds. */
export type AuditContent = Omit<AuditLogTable, "id" | "stream" | "seq" | "prev_hash" | "hash">;

/**
 * The audit log's hash chain (issue 18, migrations/0007_audit_chain.sql). Each ledger (ledger.ts) writes
 * one stream; each row of a stream carries the previous row's hash, and its own:
 *
 *   hash = hex(SHA-256(canonicalJson({ v: 1, stream, prev: prev_hash, row: <every content column> })))
 *
 * The ledger computes it when it writes the row, and the verifier (verify.ts: `npm run audit:verify`, the
 * console) recomputes it from what D1 holds. canonicalJson (canonical.ts) is the one encoder: keys sorted,
 * so the hash does not depend on the order columns come back in.
 *
 * Not in the hash: D1's own `id` (assigned when the row is shipped) and `seq` (the row's place, which the
 * verifier checks against the links and the anchors instead; leaving it out lets the verifier tell a row
 * that was moved from one that was edited).
 */

/** The `prev_hash` of a stream's first row. */
export const GENESIS_HASH = "0".repeat(64);

/** The encoding's version, inside every hash: a change of columns is a new version, never a silent one. */
const CHAIN_VERSION = 1;

/** Every content column, listed once; the record type makes a column added to the table a compile error here. */
const HASHED: Record<keyof AuditContent, true> = {
  at_ms: true,
  principal: true,
  client_id: true,
  session_id: true,
  action: true,
  server: true,
  tool: true,
  decision: true,
  reason: true,
  outcome: true,
  delivery: true,
  result: true,
  error_code: true,
  duration_ms: true,
  args_digest: true,
  policy_hash: true,
  subject: true,
  note: true,
};
export const HASHED_COLUMNS = Object.keys(HASHED) as (keyof AuditContent)[];

/**
 * A row's hash in its stream. `row` may carry more fields (a row read back from D1 has `id` and the chain's
 * own columns): only the content columns are hashed, a missing one as null.
 */
export async function chainHash(
  stream: string,
  prevHash: string,
  row: Readonly<Record<string, unknown>>,
): Promise<string> {
  const content: Record<string, unknown> = {};
  for (const column of HASHED_COLUMNS) content[column] = row[column] ?? null;
  const text = canonicalJson({ v: CHAIN_VERSION, stream, prev: prevHash, row: content });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
