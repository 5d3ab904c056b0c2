/**
 * Newline-delimited JSON framing for the children's stdio (the MCP stdio transport), with a size cap.
 *
 * A line longer than the cap is dropped whole (its bytes are discarded up to the next newline) and
 * reported, so one runaway message costs memory up to the cap only and the stream stays in sync.
 */
export class LineDecoder {
  readonly #maxLineBytes: number;
  readonly #onLine: (line: string) => void;
  readonly #onOversize: (bytes: number) => void;
  #parts: Buffer[] = [];
  #size = 0;
  #discarding = false;

  constructor(maxLineBytes: number, onLine: (line: string) => void, onOversize: (bytes: number) => void) {
    this.#maxLineBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#onOversize = onOversize;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      const length = end - start;
      if (this.#discarding || this.#size + length > this.#maxLineBytes) {
        // Keep counting the dropped line's bytes for the report, but hold none of them.
        this.#discarding = true;
        this.#parts = [];
        this.#size += length;
      } else if (length > 0) {
        this.#parts.push(chunk.subarray(start, end));
        this.#size += length;
      }
      if (newline === -1) return;
      this.#flush();
      start = newline + 1;
    }
  }

  #flush(): void {
    const discarded = this.#discarding;
    const size = this.#size;
    const parts = this.#parts;
    this.#parts = [];
    this.#size = 0;
    this.#discarding = false;
    if (discarded) {
      this.#onOversize(size);
      return;
    }
    if (parts.length === 0) return;
    // Decode once per line, after joining: a multi-byte character may span two chunks.
    const first = parts[0];
    let line = parts.length === 1 && first ? first.toString("utf8") : Buffer.concat(parts, size).toString("utf8");
    if (line.endsWith("\r")) line = line.slice(0, -1);
    // A blank line is not a message; `\S` stops at the first non-space, so this is cheap on long lines.
    if (/\S/.test(line)) this.#onLine(line);
  }
}

/**
 * One message as a single line. JSON can hold a raw CR or LF only as whitespace between tokens (inside
 * strings they must be escaped), so replacing them with spaces keeps the message identical in meaning.
 */
export function toLine(json: string): string {
  return json.includes("\n") || json.includes("\r") ? `${json.replace(/[\r\n]/g, " ")}\n` : `${json}\n`;
}
