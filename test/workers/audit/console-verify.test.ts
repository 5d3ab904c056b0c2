import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { auditContentOf } from "../../../worker/audit/audit.ts";
import { adminBrowser, CONSOLE, pageOf, seedDevPolicy } from "../console/harness.ts";
import { ledgerOf, shipAuditRows } from "./ledgers.ts";

/**
 * The console's audit page: each row's three levels (decision, delivery, result), and the integrity check
 * it runs when asked (`?verify=1`, worker/admin/audit.verify.ts), which is the verifier of
 * `npm run audit:verify` plus each stream's ledger.
 */

beforeEach(seedDevPolicy);

async function writeRows(): Promise<void> {
  const origin = { principal: "mock:bob", clientId: "c1", sessionId: "d-1", policyHash: "p1" };
  const bob = ledgerOf("mock:bob");
  await bob.append(
    auditContentOf(
      origin,
      {
        action: "tools/call",
        server: "memory",
        tool: "read_graph",
        decision: "allow",
        reason: "granted",
        outcome: "tool_error",
      },
      Date.now() - 2_000,
    ),
  );
  await bob.append(
    auditContentOf(
      origin,
      {
        action: "tools/call",
        server: "everything",
        tool: "echo",
        decision: "allow",
        reason: "granted",
        outcome: "transport_error",
        delivery: "timeout",
        errorCode: -32001,
      },
      Date.now() - 1_000,
    ),
  );
  await shipAuditRows();
}

describe("console audit page: three levels per row, and the integrity check", () => {
  it("shows the delivery and the result of each row", async () => {
    await writeRows();
    const page = await pageOf(await adminBrowser(), `${CONSOLE}/audit?person=mock:bob`);
    expect(page.text).toContain('<th scope="col">Delivery</th><th scope="col">Result</th>');
    expect(page.text).toMatch(/<td>delivered<\/td>\s*<td>tool_error<\/td>/);
    expect(page.text).toMatch(/<td>timeout<\/td>\s*<td> <span class="muted">-32001<\/span><\/td>/);
  });

  it("verifies on request: intact, then the edited row named, and the check itself audited", async () => {
    await writeRows();
    const browser = await adminBrowser();
    const plain = await pageOf(browser, `${CONSOLE}/audit`);
    expect(plain.text).toContain("Check the log's integrity");
    expect(plain.text).not.toContain("Integrity</h2>");

    const intact = await pageOf(browser, `${CONSOLE}/audit?verify=1`);
    expect(intact.status).toBe(200);
    expect(intact.text).toContain('<span class="tag allow">intact</span>');

    const edited = await env.DB.prepare(
      "UPDATE audit_log SET result = 'ok' WHERE principal = 'mock:bob' AND seq = 1 RETURNING id",
    ).first<{ id: number }>();
    const tampered = await pageOf(browser, `${CONSOLE}/audit?verify=1`);
    expect(tampered.text).toContain('<span class="tag deny">tampered</span>');
    expect(tampered.text).toMatch(new RegExp(`<span class="tag deny">edited</span></td>\\s*<td>${edited?.id}</td>`));

    await shipAuditRows();
    const notes = (
      await env.DB.prepare("SELECT note FROM audit_log WHERE action = 'admin:read' ORDER BY id").all<{ note: string }>()
    ).results.map((r) => r.note);
    expect(notes).toEqual(["console:audit", "console:audit.verify", "console:audit.verify"]);
  });
});
