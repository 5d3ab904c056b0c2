import { describe, expect, it } from "vitest";
import { readRequestBytesAtMost } from "../../worker/http/read-capped.ts";

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://gateway/mcp", { method: "POST", body, headers, duplex: "half" } as RequestInit);

/** A body stream of `chunks` chunks of `size` bytes, with no Content-Length (chunked transfer). */
function chunked(chunks: number, size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent++ >= chunks) controller.close();
      else controller.enqueue(new Uint8Array(size).fill(120));
    },
  });
}

describe("request bodies are read with a hard cap", () => {
  it("a body within the cap, with its length declared, comes back whole", async () => {
    const bytes = await readRequestBytesAtMost(post("hello", { "content-length": "5" }), 10);
    expect(new TextDecoder().decode(bytes ?? new Uint8Array())).toBe("hello");
  });

  it("a body longer than its declared length is still refused when it passes the cap", async () => {
    expect(await readRequestBytesAtMost(post("x".repeat(100), { "content-length": "10" }), 50)).toBeNull();
  });

  it("a chunked body with no declared length is cut off once it passes the cap", async () => {
    expect(await readRequestBytesAtMost(post(chunked(100, 1024)), 10_000)).toBeNull();
    const within = await readRequestBytesAtMost(post(chunked(3, 1024)), 10_000);
    expect(within?.byteLength).toBe(3 * 1024);
  });

  it("a malformed or oversized declaration is not trusted: the body is read chunk by chunk", async () => {
    expect(await readRequestBytesAtMost(post(chunked(2, 8), { "content-length": "+16" }), 100)).toHaveLength(16);
    expect(await readRequestBytesAtMost(post(chunked(100, 8), { "content-length": "99999" }), 100)).toBeNull();
  });
});
