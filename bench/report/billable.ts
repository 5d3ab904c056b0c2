import type { BillablePhase, Tallies } from "../measure/billable.ts";
import { ms, table } from "./format.ts";

const count = (t: Tallies, match: (kind: string) => boolean) =>
  Object.entries(t)
    .filter(([kind]) => match(kind))
    .reduce((acc, [, v]) => acc + v.count, 0);

const per = (n: number, phase: BillablePhase) => {
  const x = n / phase.per;
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
};

export function billableTable(phases: readonly BillablePhase[]): string {
  const rows = phases.map((p) => {
    const t = p.tallies;
    const c = (match: (kind: string) => boolean) => per(count(t, match), p);
    return [
      p.per === 1 ? p.phase : `${p.phase} (per call, over ${p.per})`,
      c((k) => k === "d1.read"),
      // The request path's D1 writes; the audit ledgers' shipments (`d1.ledger.*`, after the answers) apart.
      c((k) => k.startsWith("d1.") && k !== "d1.read" && !k.startsWith("d1.ledger.")),
      c((k) => k === "do.ledger.append" || k === "do.ledger.callsSince"),
      c((k) => k === "d1.ledger.batch"),
      c((k) => k === "kv.read" || k === "kv.list"),
      c((k) => k === "kv.write" || k === "kv.delete"),
      c((k) => k === "do.session.fetch"),
      `${c((k) => k === "do.session.storage.read")} / ${c((k) => k === "do.session.storage.write")}`,
      c((k) => k.startsWith("fetch.") || k === "do.bridge.fetch"),
      c((k) => k === "worker.request"),
    ];
  });
  return table(
    [
      "operation",
      "D1 read queries",
      "D1 write queries (request path)",
      "audit ledger requests (DO)",
      "D1 batches after the answer (audit shipments)",
      "KV reads",
      "KV writes + deletes",
      "DO requests (session object)",
      "DO storage reads / writes",
      "bridge requests (= container DO requests when deployed)",
      "Worker requests",
    ],
    rows,
  );
}

/** Local wall time per operation kind (workerd's clock, which advances across I/O), for one phase. */
export function localTimeTable(phase: BillablePhase): string {
  const label: Record<string, string> = {
    "worker.request": "Worker request, until the response starts (streamed)",
    "kv.read": "KV read (token lookup by the OAuth provider)",
    "do.session.fetch": "session Durable Object request, until its response starts",
    "do.session.handler": "  inside the session object, until its response starts",
    "d1.read": "D1 read (grants, revocation, policy hash: one query)",
    "d1.write": "D1 write",
    "do.ledger.append": "audit row, durable in the caller's ledger (Durable Object) before the answer",
    "do.ledger.callsSince": "rate limit count in the caller's ledger (rate-limited roles only)",
    "d1.ledger.batch": "audit shipment to D1 (one batch, after the answer)",
    "do.ledger.sql.read": "  ledger SQLite statements (reads)",
    "do.ledger.sql.write": "  ledger SQLite statements (writes)",
  };
  const rows = Object.entries(phase.tallies)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, t]) => [
      label[kind] ?? (kind.startsWith("fetch.") ? "bridge request (HTTP to the local bridge)" : kind),
      `\`${kind}\``,
      (t.count / phase.per).toFixed(2),
      ms(t.ms / t.count),
    ]);
  return table(["step", "tally", "per call", "ms each (local)"], rows);
}

/** CPU per call of each process of the local stack (from /proc), for one phase. */
export function cpuByRoleTable(phase: BillablePhase): string {
  const rows = Object.entries(phase.cpuByRole)
    .filter(([, v]) => v > 0)
    .sort(([, a], [, b]) => b - a)
    .map(([role, v]) => [role, ms(v)]);
  const total = Object.values(phase.cpuByRole).reduce((a, b) => a + b, 0);
  return table(["process", "CPU ms per call"], [...rows, ["**serving tree total**", `**${ms(total)}**`]]);
}
