import type { PostExchange } from "./exchange.ts";
import { type Classified, errorResponse, paramsOf, RPC_ERROR, resultResponse } from "./jsonrpc.ts";
import type { Session } from "./session.ts";

/**
 * One client message of a session, after the HTTP layer parsed it. Most requests go to the child as
 * they are; the few that would change state shared with other sessions are answered here.
 */
export function dispatch(session: Session, message: Classified, raw: string | undefined, exchange: PostExchange) {
  const { mux } = session;
  switch (message.kind) {
    case "request": {
      const { id, method, msg } = message;
      exchange.expect(id);
      switch (method) {
        case "initialize":
          exchange.done(errorResponse(id, RPC_ERROR.invalidRequest, "the session is already initialized"));
          return;
        case "logging/setLevel":
          // Per session, not per child: see Session.setLogLevel.
          exchange.done(
            session.setLogLevel(paramsOf(msg)?.level)
              ? resultResponse(id, {})
              : errorResponse(id, RPC_ERROR.invalidParams, "unknown logging level"),
          );
          return;
        case "resources/subscribe": {
          const uri = paramsOf(msg)?.uri;
          if (typeof uri === "string") session.subscriptions.add(uri);
          break;
        }
        case "resources/unsubscribe": {
          const uri = paramsOf(msg)?.uri;
          if (typeof uri !== "string") break;
          session.subscriptions.delete(uri);
          // The child's subscription is shared: keep it while another session (or a listen stream,
          // listeners.ts) still wants updates.
          const wanted = [...mux.ports].some((p) => p.subscriptions.has(uri));
          if (wanted || [...mux.listeners()].some((l) => l.resources.has(uri))) {
            exchange.done(resultResponse(id, {}));
            return;
          }
          break;
        }
      }
      mux.call(session, id, method, msg, raw, exchange);
      return;
    }
    case "notification": {
      const { method, msg } = message;
      if (method === "notifications/cancelled") {
        const params = paramsOf(msg);
        const requestId = params?.requestId;
        const reason = typeof params?.reason === "string" ? params.reason : "cancelled by the client";
        if (typeof requestId === "string" || typeof requestId === "number") mux.cancel(session, requestId, reason);
      } else if (method === "notifications/roots/list_changed") {
        mux.forward(raw ?? JSON.stringify(msg));
      } else if (method !== "notifications/initialized") {
        // Anything else would reach a process other sessions share, unmapped: not forwarded.
        mux.log.debug("client.notification_dropped", { method, session: session.id });
      }
      return;
    }
    case "response":
      mux.answer(session, message.id, message.msg, raw);
      return;
    case "invalid":
      return;
  }
}
