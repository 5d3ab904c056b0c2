import { describe, expect, it } from "vitest";
import { LineDecoder, toLine } from "../../container/src/framing.ts";
import { withId } from "../../container/src/jsonrpc.ts";

function decoder(max = 16) {
  const lines: string[] = [];
  const oversize: number[] = [];
  const d = new LineDecoder(
    max,
    (l) => lines.push(l),
    (n) => oversize.push(n),
  );
  return { d, lines, oversize };
}

describe("newline framing with a size cap (MCP stdio transport)", () => {
  it("joins a line split across chunks, including a multi-byte character split in the middle", () => {
    const { d, lines } = decoder(64);
    const bytes = Buffer.from('{"t":"é"}\n');
    d.push(bytes.subarray(0, 7)); // splits the two bytes of "é"
    d.push(bytes.subarray(7));
    expect(lines).toEqual(['{"t":"é"}']);
  });

  it("splits several lines in one chunk, strips CR, skips blank lines", () => {
    const { d, lines } = decoder(64);
    d.push(Buffer.from('{"a":1}\r\n\n  \n{"b":2}\n{"c"'));
    d.push(Buffer.from(":3}\n"));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it("drops an oversize line whole, reports its size, and stays in sync for the next line", () => {
    const { d, lines, oversize } = decoder(16);
    d.push(Buffer.from("x".repeat(10)));
    d.push(Buffer.from(`${"y".repeat(20)}\n{"ok":true}\n`));
    expect(oversize).toEqual([30]);
    expect(lines).toEqual(['{"ok":true}']);
  });

  it("toLine keeps one message on one line (raw newlines in JSON are whitespace)", () => {
    expect(toLine('{\n  "a": "x\\ny"\r\n}')).toBe('{   "a": "x\\ny"  }\n');
  });
});

describe("id splice (pass bytes through, change only the id)", () => {
  it("replaces a trailing top-level id without re-serialising", () => {
    const raw = '{"result":{"id":5,"n":1e400},"jsonrpc":"2.0","id":5}';
    // 1e400 would become null if the message were re-serialised: the splice keeps the bytes.
    expect(withId(raw, { id: 5 }, 5, "client-id")).toBe(
      '{"result":{"id":5,"n":1e400},"jsonrpc":"2.0","id":"client-id"}',
    );
  });

  it("falls back to re-serialising when the id is not the last member", () => {
    const msg = { jsonrpc: "2.0", id: 5, error: { code: 1, message: "m" } };
    expect(JSON.parse(withId(JSON.stringify(msg), msg, 5, 0))).toEqual({ ...msg, id: 0 });
  });

  it("does not splice a nested id or a look-alike inside a string", () => {
    const raw = '{"jsonrpc":"2.0","id":1,"result":{"x":",\\"id\\":1}"}}';
    const msg = JSON.parse(raw) as Record<string, unknown>;
    expect(JSON.parse(withId(raw, msg, 1, 9))).toMatchObject({ id: 9, result: { x: ',"id":1}' } });
  });
});
