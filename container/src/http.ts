import type { IncomingMessage } from "node:http";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "./contract.ts";
import { BridgeHttpError } from "./errors.ts";

/** Request-side HTTP helpers: one header value, media types, and a size-capped body. */

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

export function requireJsonContentType(req: IncomingMessage): void {
  const type = header(req, "content-type")?.toLowerCase() ?? "";
  if (!type.startsWith("application/json")) {
    throw new BridgeHttpError(415, "unsupported_media_type", "Content-Type must be application/json");
  }
}

/** What the client's Accept header allows. No header at all means JSON (curl, simple clients). */
export function accepts(req: IncomingMessage): { json: boolean; sse: boolean } {
  const accept = header(req, "accept")?.toLowerCase();
  if (accept === undefined) return { json: true, sse: false };
  const any = accept.includes("*/*");
  return { json: any || accept.includes("application/json"), sse: any || accept.includes("text/event-stream") };
}

/** Past the cap we keep reading (and discarding) this much, so the client sees our 413, not a reset. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as text, at most `maxBytes` (413 beyond, before or after reading, as Content-Length allows). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new BridgeHttpError(413, "payload_too_large", `request body exceeds ${maxBytes} bytes`, {
      headers: { connection: "close" },
    });
  return new Promise((resolve, reject) => {
    const declared = Number(header(req, "content-length") ?? "0");
    if (declared > DRAIN_LIMIT_BYTES) {
      req.destroy();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > maxBytes;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) over = true;
      if (over) {
        chunks.length = 0;
        if (size > DRAIN_LIMIT_BYTES) {
          req.destroy();
          reject(tooLarge());
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (over) {
        reject(tooLarge());
        return;
      }
      try {
        resolve(utf8.decode(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size)));
      } catch {
        reject(new BridgeHttpError(400, "invalid_utf8", "request body is not valid UTF-8"));
      }
    });
    req.on("error", (error) => reject(error));
  });
}

/** Parses a JSON body; a syntax error is the caller's fault (400), never ours. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BridgeHttpError(400, "parse_error", "request body is not valid JSON");
  }
}

/**
 * Parses a JSON body and refuses one nested more than MAX_JSON_DEPTH levels (400): the Worker refuses such
 * bodies too, so only a caller that is not the Worker sends one, and nothing after this point (the
 * multiplexer's re-serialisation, the child's parser) has to survive it.
 */
export function parseBoundedJson(text: string): unknown {
  const value = parseJson(text);
  if (jsonDepthExceeds(value, MAX_JSON_DEPTH)) {
    throw new BridgeHttpError(400, "too_deep", `request body nests more than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}
