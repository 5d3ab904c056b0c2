import type { ServerResponse } from "node:http";

/** Server-Sent Events framing for Streamable HTTP. JSON text has no raw newlines, so one `data:` line. */

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  // Proxies in front of a local bridge (nginx and friends) would otherwise buffer the stream.
  "x-accel-buffering": "no",
} as const;

export function writeSseEvent(res: ServerResponse, json: string): void {
  res.write(`event: message\ndata: ${json}\n\n`);
}

/** A comment line: keeps idle streams open through proxies that cut silent connections. */
export function writeSseKeepAlive(res: ServerResponse): void {
  res.write(": keepalive\n\n");
}
