import { describe, expect, it } from "vitest";
import { auditLine } from "../../../worker/audit/audit-line.ts";
import type { AuditLogTable } from "../../../worker/db/database.ts";

const row = (over: Partial<Omit<AuditLogTable, "id">> = {}): Omit<AuditLogTable, "id"> => ({
  at_ms: Date.UTC(2026, 10, 5, 12, 0, 1, 123),
  principal: "mock:bob",
  client_id: "Zm9vYmFyYmF6cXV4",
  session_id: "d-1",
  action: "tools/call",
  server: "memory",
  tool: "create_entities",
  decision: "allow",
  reason: "granted",
  outcome: "ok",
  error_code: null,
  duration_ms: 12,
  args_digest: "ab",
  policy_hash: "cd",
  subject: null,
  note: null,
  delivery: "delivered",
  result: "ok",
  stream: null,
  seq: null,
  prev_hash: null,
  hash: null,
  ...over,
});

describe("the terminal's line per decided request (npm start, HATAGO_LOG=calls)", () => {
  it("names the time, person, client, tool, decision, outcome and duration, never the arguments", () => {
    expect(auditLine(row())).toBe(
      "call 12:00:01.123 mock:bob client=Zm9vYmFy tools/call memory__create_entities allow ok 12ms",
    );
    expect(auditLine(row({ decision: "deny", reason: "tool_not_granted", outcome: null, duration_ms: null }))).toBe(
      "call 12:00:01.123 mock:bob client=Zm9vYmFy tools/call memory__create_entities deny(tool_not_granted)",
    );
    expect(
      auditLine(
        row({
          action: "admin:block",
          server: null,
          tool: null,
          subject: "mock:bob",
          note: "laptop stolen",
          principal: "mock:alice",
        }),
      ),
    ).toContain(
      'audit 12:00:01.123 mock:alice client=Zm9vYmFy admin:block subject=mock:bob allow ok 12ms note="laptop stolen"',
    );
    expect(auditLine(row())).not.toContain("ab");
  });

  it("terminal injection: control characters and ANSI escapes in a client's tool name are shown, not obeyed", () => {
    const line = auditLine(row({ tool: "x\u001b[2J\u001b]0;pwned\u0007\r\nfake line" }));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not appear.
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(line).toContain("memory__x\\u001b[2J\\u001b]0;pwned\\u0007\\u000d\\u000afake line");
  });
});
