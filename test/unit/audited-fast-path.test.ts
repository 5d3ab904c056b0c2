import { CallToolRequestSchema, JSONRPCRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { auditedRequestOf, auditedRequestProblem, isPlainToolCall } from "../../worker/mcp/audited.ts";

/**
 * worker/mcp/audited.ts skips the SDK's two zod parses for plain tool calls. That is only sound if every
 * call the shortcut takes is one both schemas accept: otherwise a call the SDK would refuse could run.
 */
const schemasAccept = (id: string | number, params: Record<string, unknown>) =>
  JSONRPCRequestSchema.safeParse({ jsonrpc: "2.0", id, method: "tools/call", params }).success &&
  CallToolRequestSchema.safeParse({ method: "tools/call", params }).success;

/** Params as a client could send them: JSON values in the members the schemas look at, and others. */
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const params = fc.record(
  {
    name: fc.oneof(fc.string(), jsonValue),
    arguments: fc.oneof(fc.dictionary(fc.string(), jsonValue), jsonValue),
    _meta: fc.oneof(fc.record({ progressToken: fc.oneof(fc.string(), fc.integer(), fc.double()) }), jsonValue),
    constructor: jsonValue,
    extra: jsonValue,
  },
  { requiredKeys: [] },
);
/** The same, through JSON as the Worker reads it (own `__proto__` keys and all). */
const sent = fc
  .tuple(fc.oneof(fc.string(), fc.integer()), params)
  .map(([id, p]) => JSON.parse(JSON.stringify({ id, p })));

describe("the plain tool call shortcut accepts only what the SDK's schemas accept", () => {
  it("property: whatever the shortcut takes, JSONRPCRequestSchema and CallToolRequestSchema accept", () => {
    let taken = 0;
    fc.assert(
      fc.property(sent, ({ id, p }: { id: string | number; p: Record<string, unknown> }) => {
        if (!isPlainToolCall("tools/call", p)) return;
        taken++;
        expect(schemasAccept(id, p)).toBe(true);
      }),
      { numRuns: 2_000, seed: 18 },
    );
    // The property says something only if the shortcut was taken often.
    expect(taken).toBeGreaterThan(100);
  });

  it("takes the common shapes, and leaves _meta, non-object arguments and other methods to the schemas", () => {
    expect(isPlainToolCall("tools/call", { name: "everything__echo", arguments: { message: "hi" } })).toBe(true);
    expect(isPlainToolCall("tools/call", { name: "everything__echo" })).toBe(true);
    expect(isPlainToolCall("tools/call", JSON.parse('{"name":"x","arguments":{"__proto__":{"a":1}}}'))).toBe(true);
    expect(isPlainToolCall("tools/call", { name: "x", arguments: [] })).toBe(false);
    expect(isPlainToolCall("tools/call", { name: "x", arguments: null })).toBe(false);
    expect(isPlainToolCall("tools/call", { name: "x", arguments: "{}" })).toBe(false);
    expect(isPlainToolCall("tools/call", { name: 1 })).toBe(false);
    expect(isPlainToolCall("tools/call", { name: "x", _meta: {} })).toBe(false);
    expect(isPlainToolCall("prompts/get", { name: "x" })).toBe(false);
  });

  it("a call the schemas refuse is still refused with their message (the shortcut does not take it)", () => {
    const request = auditedRequestOf({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "x", arguments: [1] },
    });
    expect(request).not.toBeNull();
    expect(request && auditedRequestProblem(request)?.message).toMatch(
      /^Invalid tools\/call request: params\.arguments: /,
    );
  });
});
