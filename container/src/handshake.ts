/**
 * The bridge's own MCP handshake with a child, done once per process: the child must believe in ONE
 * client, and each session's `initialize` is then answered from the cached InitializeResult.
 */

/** The id of the bridge's `initialize`; calls get ids from 1 up, so it never collides. */
export const INIT_ID = 0;
/** A child that does not answer `initialize` in this time is killed (and counts as a crash). */
export const INIT_TIMEOUT_MS = 20_000;
const BRIDGE_CLIENT_INFO = { name: "hatago-bridge", version: "1.0.0" };
const BRIDGE_PROTOCOL_VERSION = "2025-11-25";

/**
 * Declares every client capability (sampling, elicitation in both modes, roots): some servers register
 * tools only for clients that can answer such requests (server-everything does, see
 * scripts/lib/server-tools.ts), and the bridge routes each request to a session that declared it.
 */
export const INITIALIZE_LINE = `${JSON.stringify({
  jsonrpc: "2.0",
  id: INIT_ID,
  method: "initialize",
  params: {
    protocolVersion: BRIDGE_PROTOCOL_VERSION,
    capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } },
    clientInfo: BRIDGE_CLIENT_INFO,
  },
})}\n`;

export const INITIALIZED_LINE = `${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`;

/** The server's process is parked after a crash loop; callers get 503 with this Retry-After. */
export class ParkedError extends Error {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super("server unavailable: its process keeps crashing");
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
