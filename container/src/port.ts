import type { JsonRpcId } from "./jsonrpc.ts";

/**
 * What a multiplexer needs from whoever talks to it: an MCP session, or one /execute request.
 * A port belongs to exactly one principal; everything routed to it is visible to that principal only.
 */

/** Client capabilities the bridge checks before routing a server→client request to a port. */
export interface ClientCaps {
  readonly sampling: boolean;
  readonly elicitationForm: boolean;
  readonly elicitationUrl: boolean;
  readonly roots: boolean;
}

export const NO_CLIENT_CAPS: ClientCaps = {
  sampling: false,
  elicitationForm: false,
  elicitationUrl: false,
  roots: false,
};

/** Where a call's messages go: the HTTP exchange that carried the request. */
export interface CallSink {
  /** A message about this call (progress, a server→client request, a log line) before its response. */
  message(json: string): void;
  /** The call's response (from the server, or an error from the bridge). */
  done(json: string): void;
  /** The call ended without a response to send (the client cancelled it). */
  abandon(): void;
}

export interface PendingCall {
  readonly port: Port;
  /** The id the client chose; restored on the way back. */
  readonly clientId: JsonRpcId;
  /** The id the child sees: unique per child, so equal client ids never meet. */
  readonly childId: number;
  readonly sink: CallSink;
  readonly method: string;
  /** The client's progress token, replaced toward the child by `childId`. */
  readonly progressToken: JsonRpcId | undefined;
  /** The framed request, kept until it is written (calls wait while the child starts). */
  line: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface Port {
  readonly principal: string;
  /** For logs: a session id or "execute". Never a principal. */
  readonly label: string;
  readonly caps: ClientCaps;
  /** This port's calls in flight, by the client's id (a duplicate id in flight is refused). */
  readonly calls: Map<JsonRpcId, PendingCall>;
  /** Resource URIs this port subscribed to (`resources/subscribe`). */
  readonly subscriptions: Set<string>;
  /** A server-initiated message not tied to one of its calls (the session's GET stream, if open). */
  deliver(json: string): void;
  /** Whether a `notifications/message` of this level passes the port's `logging/setLevel`. */
  acceptsLog(level: unknown): boolean;
}

/** RFC 5424 severities as MCP names them, lowest first (for `logging/setLevel`). */
export const LOG_SEVERITY: Readonly<Record<string, number>> = {
  debug: 0,
  info: 1,
  notice: 2,
  warning: 3,
  error: 4,
  critical: 5,
  alert: 6,
  emergency: 7,
};

/**
 * A port for the bridge's own one-off requests (`/execute`, the listeners' subscribe calls): no client
 * capabilities (a server's request to it is refused), nowhere to stream to, no log lines.
 */
export class SilentPort implements Port {
  readonly principal: string;
  readonly label: string;
  readonly caps = NO_CLIENT_CAPS;
  readonly calls = new Map<JsonRpcId, PendingCall>();
  readonly subscriptions = new Set<string>();

  constructor(principal: string, label: string) {
    this.principal = principal;
    this.label = label;
  }

  deliver(): void {}

  acceptsLog(): boolean {
    return false;
  }
}
