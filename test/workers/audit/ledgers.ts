import { env, listDurableObjectIds } from "cloudflare:test";
import { ledgerName, type ShipReport } from "../../../worker/audit/ledger.ts";

/**
 * TEST-ONLY: ships every audit ledger's waiting rows to D1 now, and fails if one cannot. Audit rows reach
 * D1 after the answer (worker/audit/ledger.ts); a test that reads `audit_log` right after a request calls
 * this first, instead of racing the ledgers' alarms.
 */
export async function shipAuditRows(): Promise<void> {
  for (const id of await listDurableObjectIds(env.AUDIT_LEDGER)) {
    const report: ShipReport = await env.AUDIT_LEDGER.get(id).ship();
    if (report.error !== null || report.pending > 0) {
      throw new Error(`an audit ledger could not ship its rows: ${report.error ?? `${report.pending} left`}`);
    }
  }
}

/** One principal's ledger. */
export function ledgerOf(principal: string) {
  return env.AUDIT_LEDGER.getByName(ledgerName(principal));
}
