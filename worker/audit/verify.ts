import { chainHash, GENESIS_HASH, HASHED_COLUMNS } from "./chain.ts";

/**
 * THE audit chain verifier (issue 18): `npm run audit:verify` (scripts/audit-verify.ts, on a local or a
 * deployed D1) and the console's audit page (worker/admin/audit.verify.ts) both run this, each with its
 * own way of reading D1 (`SqlReader`). It checks every stream against its anchors and names, per stream,
 * the first row that was edited, deleted, inserted or reordered.
 *
 * What each kind looks like in D1 (rows of a stream in seq order; each links to the one before):
 * - edited: the row's content no longer hashes to its `hash`; or its hash was recomputed, and then the
 *   next row's `prev_hash` (or the anchor at its seq) still names the old one.
 * - deleted: a gap in seq where the link breaks; or an anchor past the last row.
 * - inserted: a row the chain goes around (the next row links to the one before it); a row past the
 *   newest anchor (every shipment anchors its last row in the same D1 batch); or, after the chain began,
 *   a row written without one.
 * - reordered: a row that links to a row that comes after it.
 *
 * What it cannot see: rows from before the chain (migrations/0007; counted as not covered); a stream
 * removed whole with all its anchors; a stream rewritten whole, anchors included, by someone who can
 * write D1. Against that last one the console also compares each stream with its ledger's own head
 * (`witnesses`), which D1 cannot reach.
 */

export type TamperKind = "edited" | "deleted" | "inserted" | "reordered";

export interface ChainProblem {
  readonly kind: TamperKind;
  readonly stream: string;
  /** The row's place in its stream (for a deleted row: the missing place). */
  readonly seq: number;
  /** D1's id of the row named (null for a deleted row). */
  readonly id: number | null;
  readonly principal: string | null;
  readonly atMs: number | null;
  /** One sentence for a person. */
  readonly detail: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly streams: number;
  /** Chained rows read and checked. */
  readonly rows: number;
  readonly anchors: number;
  /** Rows without a chain written before it began (before 0007): not covered. */
  readonly unchained: number;
  /** The first problem of each stream that has one, in stream order. */
  readonly problems: readonly ChainProblem[];
  /** Streams compared with their ledger's own head (the console only). */
  readonly witnessed: number;
  /** The check stopped at the row limit: streams past it were not read. */
  readonly truncated: boolean;
}

/** Reads D1: the script a local D1's file (or wrangler, for a deployed one), the Worker its binding. */
export interface SqlReader {
  all<T>(sql: string, params: readonly (string | number)[]): Promise<T[]>;
}

/** A stream's head as its ledger reports it (ledger.ts, `state()`): D1 must hold that row with that hash. */
export interface Witness {
  readonly shippedSeq: number;
  readonly shippedHash: string | null;
}

export interface VerifyOptions {
  /** Rows read per query. */
  readonly pageRows?: number;
  /** Stop after this many chained rows (the console bounds its work; the script reads everything). */
  readonly maxRows?: number;
  /** Called with each stream's first row once read, to get its ledger's head (the console). */
  readonly witness?: (stream: string, principal: string) => Promise<Witness | null>;
  /** Ask at most this many ledgers (each is a Durable Object request). */
  readonly maxWitnessed?: number;
}

/** An unchained row this long after the first chained one is not the deployment of 0007 finishing. */
const UNCHAINED_GRACE_MS = 10 * 60_000;

const DEFAULT_PAGE_ROWS = 2_000;

interface D1ChainRow extends Record<string, unknown> {
  id: number;
  stream: string;
  seq: number;
  prev_hash: string | null;
  hash: string | null;
  principal: string;
  at_ms: number;
}

interface Anchor {
  readonly seq: number;
  readonly hash: string;
}

/** What the walk keeps of a row once its own hash was checked. */
interface Link {
  readonly id: number;
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
  readonly selfOk: boolean;
  readonly principal: string;
  readonly atMs: number;
}

const ROW_COLUMNS = ["id", "stream", "seq", "prev_hash", "hash", ...HASHED_COLUMNS].join(", ");

export async function verifyAuditChains(db: SqlReader, options: VerifyOptions = {}): Promise<VerifyReport> {
  const pageRows = options.pageRows ?? DEFAULT_PAGE_ROWS;
  const maxRows = options.maxRows ?? Number.POSITIVE_INFINITY;
  const anchors = await readAnchors(db, pageRows);
  const anchorCount = [...anchors.values()].reduce((n, a) => n + a.length, 0);
  const problems: ChainProblem[] = [];
  const seen = new Set<string>();
  let rows = 0;
  let witnessed = 0;
  let asked = 0;
  let truncated = false;
  let current: { stream: string; links: Link[] } | null = null;

  const finish = async (stream: string, links: Link[]) => {
    seen.add(stream);
    let witness: Witness | null = null;
    const first = links[0];
    if (options.witness && first && asked < (options.maxWitnessed ?? Number.POSITIVE_INFINITY)) {
      asked++;
      witness = await options.witness(stream, first.principal);
      const lastSeq = links.at(-1)?.seq ?? 0;
      if (witness && witness.shippedSeq > lastSeq) {
        // The ledger may have shipped more since this stream was read: only rows D1 still lacks count.
        const [now] = await db.all<{ seq: number | null }>("SELECT max(seq) AS seq FROM audit_log WHERE stream = ?", [
          stream,
        ]);
        if ((now?.seq ?? 0) >= witness.shippedSeq) witness = null;
      }
      if (witness) witnessed++;
    }
    const problem = checkStream(stream, links, anchors.get(stream) ?? [], witness);
    if (problem) problems.push(problem);
  };

  let after: { stream: string; seq: number; id: number } | null = null;
  for (;;) {
    const page: D1ChainRow[] = await db.all<D1ChainRow>(
      after === null
        ? `SELECT ${ROW_COLUMNS} FROM audit_log WHERE stream IS NOT NULL ORDER BY stream, seq, id LIMIT ?`
        : `SELECT ${ROW_COLUMNS} FROM audit_log WHERE stream IS NOT NULL
             AND (stream > ? OR (stream = ? AND (seq > ? OR (seq = ? AND id > ?))))
           ORDER BY stream, seq, id LIMIT ?`,
      after === null ? [pageRows] : [after.stream, after.stream, after.seq, after.seq, after.id, pageRows],
    );
    for (const row of page) {
      if (current && current.stream !== row.stream) {
        await finish(current.stream, current.links);
        current = null;
        if (rows >= maxRows) {
          truncated = true;
          break;
        }
      }
      current ??= { stream: row.stream, links: [] };
      const prev = row.prev_hash ?? "";
      const hash = row.hash ?? "";
      current.links.push({
        id: row.id,
        seq: row.seq,
        prev,
        hash,
        selfOk: hash !== "" && (await chainHash(row.stream, prev, row)) === hash,
        principal: row.principal,
        atMs: row.at_ms,
      });
      rows++;
    }
    const last = page.at(-1);
    if (truncated || page.length < pageRows || !last) break;
    after = { stream: last.stream, seq: last.seq, id: last.id };
  }
  if (current) await finish(current.stream, current.links);

  // Streams D1 has anchors for and no rows at all: every row of them is gone.
  if (!truncated) {
    for (const [stream, list] of anchors) {
      const top = list.at(-1);
      if (seen.has(stream) || !top) continue;
      problems.push(
        deleted(stream, 1, null, `all ${top.seq} rows are missing: its anchors say it reached seq ${top.seq}`),
      );
    }
  }

  const unchained = await checkUnchained(db);
  if (unchained.inserted) problems.push(unchained.inserted);
  return {
    ok: problems.length === 0,
    streams: seen.size,
    rows,
    anchors: anchorCount,
    unchained: unchained.before,
    problems,
    witnessed,
    truncated,
  };
}

/** Anchors by stream, in seq order. */
async function readAnchors(db: SqlReader, pageRows: number): Promise<Map<string, Anchor[]>> {
  const byStream = new Map<string, Anchor[]>();
  let after: { stream: string; seq: number } | null = null;
  for (;;) {
    const page: { stream: string; seq: number; hash: string }[] = await db.all<{
      stream: string;
      seq: number;
      hash: string;
    }>(
      after === null
        ? "SELECT stream, seq, hash FROM audit_anchors ORDER BY stream, seq LIMIT ?"
        : "SELECT stream, seq, hash FROM audit_anchors WHERE stream > ? OR (stream = ? AND seq > ?) ORDER BY stream, seq LIMIT ?",
      after === null ? [pageRows] : [after.stream, after.stream, after.seq, pageRows],
    );
    for (const a of page) {
      const list = byStream.get(a.stream) ?? [];
      list.push({ seq: a.seq, hash: a.hash });
      byStream.set(a.stream, list);
    }
    const last = page.at(-1);
    if (page.length < pageRows || !last) return byStream;
    after = { stream: last.stream, seq: last.seq };
  }
}

/**
 * The first problem of one stream, or null. `links` are its rows in (seq, id) order, each with whether its
 * own hash matches its content.
 */
export function checkStream(
  stream: string,
  links: readonly Link[],
  anchors: readonly Anchor[],
  witness: Witness | null,
): ChainProblem | null {
  const indexOfHash = new Map<string, number>();
  links.forEach((l, i) => {
    if (!indexOfHash.has(l.hash)) indexOfHash.set(l.hash, i);
  });
  const anchorAt = new Map(anchors.map((a) => [a.seq, a.hash]));
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  for (let i = 0; i < links.length; i++) {
    const r = links[i] as Link;
    const next = links[i + 1];
    const before = links[i - 1];
    if (r.prev !== prev) {
      const linked = indexOfHash.get(r.prev);
      if (linked !== undefined && linked > i)
        return named("reordered", stream, r, `it follows seq ${links[linked]?.seq}, which comes after it`);
      if (next && next.prev === prev)
        return named("inserted", stream, r, "the chain goes around it: the next row follows the row before it");
      if (!r.selfOk) return named("edited", stream, r, "its content does not match its hash");
      if (r.seq > expectedSeq)
        return deleted(
          stream,
          expectedSeq,
          r,
          `seq ${expectedSeq}${r.seq - 1 > expectedSeq ? `–${r.seq - 1}` : ""} missing before it`,
        );
      if (linked !== undefined && linked < i - 1) {
        const skipped = links[linked + 1] as Link;
        return named("inserted", stream, skipped, "the chain goes around it: a later row follows the row before it");
      }
      if (before) return named("edited", stream, before, "the next row was chained to another hash: it was rewritten");
      return named("edited", stream, r, "the stream's first row does not start the chain");
    }
    if (next && next.prev === prev)
      return named("inserted", stream, r, "the chain goes around it: the next row follows the row before it");
    if (!r.selfOk) return named("edited", stream, r, "its content does not match its hash");
    if (r.seq !== expectedSeq)
      return named("edited", stream, r, `its seq was changed (the chain puts it at ${expectedSeq})`);
    const anchored = anchorAt.get(r.seq);
    if (anchored !== undefined && anchored !== r.hash)
      return named("edited", stream, r, "its hash is not the one anchored for its seq: it was rewritten");
    if (witness && witness.shippedSeq === r.seq && witness.shippedHash !== r.hash)
      return named("edited", stream, r, "its hash is not the one its ledger shipped: the stream was rewritten");
    prev = r.hash;
    expectedSeq = r.seq + 1;
  }
  const lastSeq = links.at(-1)?.seq ?? 0;
  const topAnchor = anchors.at(-1)?.seq ?? 0;
  const topKnown = Math.max(topAnchor, witness?.shippedSeq ?? 0);
  if (topKnown > lastSeq) {
    const by = topAnchor >= topKnown ? "its newest anchor" : "its ledger";
    return deleted(
      stream,
      lastSeq + 1,
      null,
      `seq ${lastSeq + 1}${topKnown > lastSeq + 1 ? `–${topKnown}` : ""} missing at the end: ${by} says the stream reached seq ${topKnown}`,
    );
  }
  const past = links.find((l) => l.seq > topAnchor);
  if (past)
    return named(
      "inserted",
      stream,
      past,
      topAnchor === 0 ? "its stream has no anchor" : `it is past the newest anchor (seq ${topAnchor})`,
    );
  return null;
}

/** Rows without a chain: before it began, not covered; after it (past the deployment), inserted. */
async function checkUnchained(db: SqlReader): Promise<{ before: number; inserted: ChainProblem | null }> {
  const [start] = await db.all<{ id: number | null; at_ms: number | null }>(
    "SELECT id, at_ms FROM audit_log WHERE stream IS NOT NULL ORDER BY id LIMIT 1",
    [],
  );
  const [count] = await db.all<{ n: number }>("SELECT count(*) AS n FROM audit_log WHERE stream IS NULL", []);
  if (!start || start.id === null || start.at_ms === null) return { before: count?.n ?? 0, inserted: null };
  const [late] = await db.all<{ id: number; principal: string; at_ms: number }>(
    "SELECT id, principal, at_ms FROM audit_log WHERE stream IS NULL AND id > ? AND at_ms > ? ORDER BY id LIMIT 1",
    [start.id, start.at_ms + UNCHAINED_GRACE_MS],
  );
  return {
    before: count?.n ?? 0,
    inserted: late
      ? {
          kind: "inserted",
          stream: "",
          seq: 0,
          id: late.id,
          principal: late.principal,
          atMs: late.at_ms,
          detail: "it has no chain but was written after the chain began",
        }
      : null,
  };
}

function named(kind: TamperKind, stream: string, r: Link, detail: string): ChainProblem {
  return { kind, stream, seq: r.seq, id: r.id, principal: r.principal, atMs: r.atMs, detail };
}

function deleted(stream: string, seq: number, after: Link | null, detail: string): ChainProblem {
  return {
    kind: "deleted",
    stream,
    seq,
    id: null,
    principal: after?.principal ?? null,
    atMs: after?.atMs ?? null,
    detail: after ? `${detail} (row ${after.id})` : detail,
  };
}

/** One line per problem, for a terminal or a log. */
export function describeProblem(p: ChainProblem): string {
  const where =
    p.stream === "" ? `row ${p.id}` : `stream ${p.stream} seq ${p.seq}${p.id === null ? "" : ` (row ${p.id})`}`;
  const who = p.principal ? ` of ${p.principal}` : "";
  return `${p.kind}: ${where}${who}: ${p.detail}`;
}
