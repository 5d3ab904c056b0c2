import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type AuditEntry, type AuditOutcome, deliveryOf, resultOf } from "../../../worker/audit/audit.ts";
import type { AuditAction } from "../../../worker/db/audit-log.table.ts";

/**
 * migrations/0007_audit_chain.sql gives the rows written before it their delivery and result levels from
 * `outcome`, by the same rules the gateway writes new rows with (worker/audit/audit.ts, deliveryOf and
 * resultOf). This runs the migration's own UPDATE on rows as the old gateway wrote them, in real D1, and
 * checks each against the gateway's rules: no row loses what it said.
 */

const CASES: readonly (Pick<AuditEntry, "action" | "decision"> & {
  outcome: AuditOutcome | null;
  errorCode?: number;
})[] = [
  { action: "tools/call", decision: "allow", outcome: "ok" },
  { action: "tools/call", decision: "allow", outcome: "tool_error" },
  { action: "prompts/get", decision: "allow", outcome: "jsonrpc_error", errorCode: -32602 },
  { action: "tools/call", decision: "allow", outcome: "transport_error" },
  { action: "execute_stdio", decision: "allow", outcome: "transport_error", errorCode: -32001 },
  { action: "resources/read", decision: "allow", outcome: "transport_error", errorCode: -32000 },
  { action: "tools/call", decision: "deny", outcome: null },
  { action: "resources/subscribe", decision: "deny", outcome: null },
  { action: "admin:block", decision: "allow", outcome: "ok" },
  { action: "admin:request", decision: "deny", outcome: null },
  { action: "login:refused", decision: "deny", outcome: null },
  { action: "connection:use", decision: "allow", outcome: null },
];

/** The gateway's rule for a transport error's code (worker/mcp/call-guards.ts): what it would write today. */
const writtenDelivery = (c: (typeof CASES)[number]) =>
  deliveryOf({
    action: c.action as AuditAction,
    server: null,
    tool: null,
    decision: c.decision,
    reason: "r",
    outcome: c.outcome,
    ...(c.outcome === "transport_error"
      ? { delivery: c.errorCode === -32001 ? "timeout" : c.errorCode === -32000 ? "connection_closed" : "unreachable" }
      : {}),
  });

describe("0007 backfills the three levels of older rows by the gateway's own rules", () => {
  it("every (action, decision, outcome, code) the old gateway wrote maps as the new gateway writes it", async () => {
    await env.DB.batch(
      CASES.map((c, i) =>
        env.DB.prepare(
          "INSERT INTO audit_log (id, at_ms, principal, action, decision, reason, outcome, error_code) VALUES (?, 1, 'mock:old', ?, ?, 'r', ?, ?)",
        ).bind(i + 1, c.action, c.decision, c.outcome, c.errorCode ?? null),
      ),
    );
    // The statement as the migration holds it (its comment lines before it included).
    const backfill = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0007"))?.queries.find((q) =>
      /^\s*(--[^\n]*\n\s*)*UPDATE audit_log SET/.test(q),
    );
    expect(backfill, "0007 has the backfill UPDATE").toBeDefined();
    await env.DB.prepare(backfill ?? "").run();
    const { results } = await env.DB.prepare("SELECT delivery, result FROM audit_log ORDER BY id").all<{
      delivery: string | null;
      result: string | null;
    }>();
    expect(results).toEqual(CASES.map((c) => ({ delivery: writtenDelivery(c), result: resultOf(c.outcome) })));
    // Older rows have no chain: all four columns empty, and any number of them fits the unique index.
    const chain = await env.DB.prepare(
      "SELECT count(*) AS n FROM audit_log WHERE stream IS NULL AND seq IS NULL AND prev_hash IS NULL AND hash IS NULL",
    ).first<number>("n");
    expect(chain).toBe(CASES.length);
  });
});
