import { describe, expect, it } from "vitest";
import { attribute, type CpuProfile } from "../../bench/profile/attribute.ts";

/**
 * The profiler's bookkeeping (bench/profile/attribute.ts) on a made-up profile whose answer is known:
 * CPU by sample count, the Durable Objects' samples apart, and D1 client work that resumed without its
 * caller split in the proportion of the D1 work whose caller is known.
 */

// A bundle: a Worker module with one function (lines 1-3), then the AuditLedger class (lines 4-8).
const BUNDLE = [
  "// worker/mcp/handler.ts",
  "function mcpHandler() {",
  "}",
  "// worker/audit/ledger.ts",
  "var AuditLedger = class extends DurableObject {",
  "  alarm() {",
  "  }",
  "};",
].join("\n");
const SOURCES = new Map([["1", BUNDLE]]);

type Frame = { functionName: string; scriptId: string; url: string; lineNumber: number };
const root: Frame = { functionName: "(root)", scriptId: "0", url: "", lineNumber: -1 };
const idle: Frame = { functionName: "(idle)", scriptId: "0", url: "", lineNumber: -1 };
const handler: Frame = { functionName: "mcpHandler", scriptId: "1", url: "bundle.js", lineNumber: 1 };
const alarm: Frame = { functionName: "alarm", scriptId: "1", url: "bundle.js", lineNumber: 5 };
const d1: Frame = { functionName: "batch", scriptId: "9", url: "cloudflare-internal:d1-api", lineNumber: 10 };
const d1Resumed: Frame = { functionName: "toJson", scriptId: "9", url: "cloudflare-internal:d1-api", lineNumber: 611 };

/** A profile from stacks (root first) and how many samples each got. */
function profile(stacks: readonly (readonly [readonly Frame[], number])[]): CpuProfile {
  const nodes: { id: number; callFrame: Frame; children: number[] }[] = [{ id: 1, callFrame: root, children: [] }];
  const samples: number[] = [];
  for (const [frames, count] of stacks) {
    let parent = nodes[0];
    for (const frame of frames) {
      let child = parent?.children.map((id) => nodes[id - 1]).find((n) => n?.callFrame === frame);
      if (!child) {
        child = { id: nodes.length + 1, callFrame: frame, children: [] };
        nodes.push(child);
        parent?.children.push(child.id);
      }
      parent = child;
    }
    for (let i = 0; i < count; i++) samples.push(parent?.id ?? 1);
  }
  return { nodes, samples, timeDeltas: samples.map(() => 5_000) };
}

describe("bench/profile/attribute.ts", () => {
  it("counts samples, not time deltas, and keeps the Durable Objects' samples apart", () => {
    const result = attribute(
      profile([
        [[handler], 4],
        [[alarm], 6],
        [[idle], 100],
      ]),
      SOURCES,
      1,
    );
    expect(result.cpuMs).toBe(4);
    expect(result.objectMs).toBe(6);
    expect(result.wallMs).toBe(110 * 5);
    expect(result.byGroup.get("worker/mcp")).toBe(4);
  });

  it("splits D1 work resumed without its caller by the known callers' shares (3 : 1 here)", () => {
    const result = attribute(
      profile([
        [[alarm, d1], 3],
        [[handler, d1], 1],
        [[d1Resumed], 8],
      ]),
      SOURCES,
      1,
    );
    expect(result.orphanD1Ms).toBe(8);
    expect(result.orphanD1ObjectShare).toBe(0.75);
    expect(result.objectMs).toBe(3 + 6);
    expect(result.cpuMs).toBe(1 + 2);
    expect(result.byGroup.get("(runtime: cloudflare-internal:d1-api, resumed)")).toBe(2);
  });

  it("a package's marker behind a symlinked node_modules still names the package", () => {
    const bundle = ["// ../../other-checkout/node_modules/hono/dist/hono.js", "function dispatch() {", "}"].join("\n");
    const dispatch: Frame = { functionName: "dispatch", scriptId: "1", url: "bundle.js", lineNumber: 1 };
    const result = attribute(profile([[[dispatch], 2]]), new Map([["1", bundle]]), 1);
    expect([...result.byGroup]).toEqual([["hono", 2]]);
  });

  it("with no D1 caller known, resumed D1 work is all the Worker's (the side that cannot flatter it)", () => {
    const result = attribute(profile([[[d1Resumed], 5]]), SOURCES, 1);
    expect(result.orphanD1ObjectShare).toBe(0);
    expect(result.cpuMs).toBe(5);
    expect(result.objectMs).toBe(0);
  });
});
