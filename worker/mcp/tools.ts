import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
} from "@modelcontextprotocol/sdk/types.js";
import type { ServerId } from "../../policies/catalog.ts";
import { declaredCapabilities } from "../../policies/client-capabilities.ts";
import type { Backends } from "./backends.ts";
import { failedOutcome } from "./call-guards.ts";
import { contextOf } from "./context.ts";
import type { ToolCallDeps } from "./deps.types.ts";
import { callTool, type SendCall } from "./tool-call.ts";
import { listTools } from "./tool-list.ts";

/** The session object's handlers' needs: the one tool call's, and the session's backends. */
export interface ToolDeps extends ToolCallDeps {
  readonly backends: () => Backends;
  /** Called around each forwarded call, so server→client requests can be tied to it. */
  readonly inFlight: {
    begin(server: ServerId, requestId: string | number): void;
    end(server: ServerId, requestId: string | number): void;
  };
  /**
   * Runs before an allowed call is sent, with the call's own channel to the client; a result it returns is
   * the call's answer instead (issue 17: the connection the caller has not made, worker/connect/elicit.ts).
   */
  readonly beforeSend?: (
    server: ServerId,
    extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
  ) => Promise<CallToolResult | null>;
}

/**
 * The session path's tools/list and tools/call: the SDK `Server`'s handlers, which bring to the one list
 * (tool-list.ts) and the one call (tool-call.ts) only how this session reaches a server: its SDK client
 * on the bridge session (backends.ts), which relays progress, logging, cancellation and the server's
 * requests to this client.
 */
export function registerToolHandlers(server: Server, deps: ToolDeps): void {
  // What this session's client declared in its initialize: it is listed, and may call, only the tools
  // those capabilities can use (policies/client-capabilities.ts).
  const declared = () => declaredCapabilities(server.getClientCapabilities());
  server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => ({
    tools: await listTools(contextOf(extra), (s) => deps.backends().tools(s), declared()),
  }));

  // Only valid calls reach this handler: an invalid one was refused, after its decision and with its row,
  // before the SDK saw it (audited.ts, refuseInvalidAudited).
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const progressToken = req.params._meta?.progressToken;
    const onprogress =
      progressToken === undefined
        ? undefined
        : (p: { progress: number; total?: number; message?: string }) => {
            void extra.sendNotification({ method: "notifications/progress", params: { ...p, progressToken } });
          };
    const send: SendCall = async (target, params) => {
      const instead = await deps.beforeSend?.(target, extra);
      if (instead) return { kind: "result", result: instead };
      deps.inFlight.begin(target, extra.requestId);
      try {
        const result = (await deps.backends().callTool(target, params, {
          signal: extra.signal,
          onprogress,
        })) as CallToolResult;
        return { kind: "result", result };
      } catch (error) {
        // The backend answered with a JSON-RPC error (passed on as the SDK client raised it), or the
        // request never completed (bridge down, timeout, cancelled).
        const failed = failedOutcome(error);
        return failed.outcome === "jsonrpc_error"
          ? { kind: "server_error", code: failed.errorCode ?? 0, error }
          : { kind: "unavailable", cause: error };
      } finally {
        deps.inFlight.end(target, extra.requestId);
      }
    };
    const answer = await callTool(deps, contextOf(extra), req.params, send, { declared: declared() });
    switch (answer.kind) {
      case "result":
        return answer.result;
      case "error":
        throw answer.error;
      case "server_error":
        throw answer.error;
      case "not_sent":
      case "input_required":
        // The session's sender always sends, and its server→client requests travel on the session: a bug.
        throw new Error(`the session path's call ended ${answer.kind}`);
    }
  });
}
