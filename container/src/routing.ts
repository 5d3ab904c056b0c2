import {
  type Classified,
  errorResponse,
  type JsonObject,
  type JsonRpcId,
  paramsOf,
  RPC_ERROR,
  resultResponse,
  withId,
} from "./jsonrpc.ts";
import { CHANGE_METHODS, type ChangeListener } from "./listener.ts";
import type { Logger } from "./log.ts";
import type { ClientCaps, PendingCall, Port } from "./port.ts";

/**
 * What routing needs of the child's multiplexer (multiplexer.ts implements it). Declared here, not
 * imported, so routing.ts does not import multiplexer.ts, which imports routing.ts (no import cycle).
 */
export interface RoutingHost {
  readonly label: string;
  readonly isolation: "per-user" | "shared";
  readonly log: Logger;
  readonly pending: ReadonlyMap<number, PendingCall>;
  readonly serverRequests: Map<number, { childId: JsonRpcId; port: Port }>;
  readonly serverRequestsByChild: Map<JsonRpcId, number>;
  readonly ports: ReadonlySet<Port>;
  readonly activePorts: ReadonlySet<Port>;
  droppedMessages: number;
  nextId(): number;
  write(json: string): void;
  routeToPort(port: Port, json: string): void;
  /** Open `/listen` streams on this process (listener.ts): change notifications only, never a port. */
  listeners?(): Iterable<ChangeListener>;
}

/**
 * Where a message from a child goes when it is not a response (responses go back by remapped id).
 *
 * Over stdio nothing on the wire says which client caused a log line or a sampling request, so:
 *
 * - `notifications/progress` carries our token: back to exactly the call that sent it, or dropped.
 * - `notifications/cancelled` names a server→client request: to the port that request went to.
 * - `notifications/resources/updated`: to the ports subscribed to that URI (and the listeners that named it).
 * - `notifications/…/list_changed`: to every attached session (it describes the server, not a user), and to
 *   every listener (the Worker decides per caller what of it to relay: worker/mcp/modern/listen.ts).
 * - A server→client request (sampling, elicitation, roots/list, …): to the ONE port with calls in
 *   flight, if it declared the capability; otherwise the child gets a JSON-RPC error. With two ports
 *   busy we cannot know which call asked, and guessing could hand one user's prompt to another.
 *   `roots/list` from a `shared` child is always refused: roots describe one client's machine and a
 *   shared process may remember them for everyone.
 * - Any other notification (logging above all): to the one port with calls in flight; else to every
 *   attached session if they all belong to one principal; else dropped and counted.
 *
 * SECURITY: no rule ever delivers to a port of another principal than the one the message is
 * attributed to; when attribution is ambiguous across principals the message is dropped. The one
 * residue is inherent to sharing a process: a `shared` server that emits, during A's only call, a
 * message caused by B's earlier call would reach A. That is why `shared` is reserved for servers that
 * keep no per-user state (policies/catalog.types.ts).
 */
export function routeChildMessage(
  mux: RoutingHost,
  message: Exclude<Classified, { kind: "invalid" } | { kind: "response" }>,
  line: string,
): void {
  if (message.kind === "request") {
    routeServerRequest(mux, message.id, message.method, message.msg, line);
    return;
  }
  const { method, msg } = message;
  const params = paramsOf(msg);
  switch (method) {
    case "notifications/progress": {
      const token = params?.progressToken;
      const call = typeof token === "number" ? mux.pending.get(token) : undefined;
      if (!params || !call || call.progressToken === undefined || call.line !== undefined) {
        drop(mux, method, "no call in flight with this progress token");
        return;
      }
      params.progressToken = call.progressToken;
      call.sink.message(JSON.stringify(msg));
      return;
    }
    case "notifications/cancelled": {
      const requestId = params?.requestId;
      const bridgeId =
        requestId === undefined ? undefined : mux.serverRequestsByChild.get(requestId as string | number);
      const request = bridgeId === undefined ? undefined : mux.serverRequests.get(bridgeId);
      if (!params || bridgeId === undefined || !request) {
        drop(mux, method, "no server request with this id");
        return;
      }
      mux.serverRequests.delete(bridgeId);
      mux.serverRequestsByChild.delete(request.childId);
      params.requestId = bridgeId;
      mux.routeToPort(request.port, JSON.stringify(msg));
      return;
    }
    case "notifications/resources/updated": {
      const uri = params?.uri;
      if (typeof uri !== "string") return;
      for (const port of mux.ports) if (port.subscriptions.has(uri)) port.deliver(line);
      for (const listener of mux.listeners?.() ?? []) if (listener.resources.has(uri)) listener.change(method, line);
      return;
    }
  }
  if (method.startsWith("notifications/") && method.endsWith("/list_changed")) {
    for (const port of mux.ports) port.deliver(line);
    if (CHANGE_METHODS.has(method)) for (const listener of mux.listeners?.() ?? []) listener.change(method, line);
    return;
  }
  const audience = audienceOf(mux);
  if (!audience) {
    drop(mux, method, "no single principal to attribute it to");
    return;
  }
  const isLog = method === "notifications/message";
  for (const port of audience) if (!isLog || port.acceptsLog(params?.level)) mux.routeToPort(port, line);
}

function routeServerRequest(mux: RoutingHost, id: string | number, method: string, msg: JsonObject, line: string) {
  if (method === "ping") {
    mux.write(resultResponse(id, {}));
    return;
  }
  if (method === "roots/list" && mux.isolation === "shared") {
    // SECURITY: roots are one client's file locations, and a shared process may keep them (server-everything
    // caches the first answer process-wide and shows it to every later caller of `get-roots-list`).
    mux.log.info("child.request_refused", {
      child: mux.label,
      method,
      reason: "roots are not given to a shared server",
    });
    mux.write(errorResponse(id, RPC_ERROR.methodNotFound, "bridge: roots are not given to a shared server"));
    return;
  }
  const port = soleActivePort(mux);
  const refusal = !port
    ? "no single session has a call in flight, so the request cannot be attributed"
    : supports(port.caps, method, msg)
      ? undefined
      : "the session's client did not declare this capability";
  if (!port || refusal) {
    mux.log.info("child.request_refused", { child: mux.label, method, reason: refusal });
    mux.write(errorResponse(id, port ? RPC_ERROR.methodNotFound : RPC_ERROR.internalError, `bridge: ${refusal}`));
    return;
  }
  const bridgeId = mux.nextId();
  mux.serverRequests.set(bridgeId, { childId: id, port });
  mux.serverRequestsByChild.set(id, bridgeId);
  mux.routeToPort(port, withId(line, msg, id, bridgeId));
}

function supports(caps: ClientCaps, method: string, msg: JsonObject): boolean {
  switch (method) {
    case "sampling/createMessage":
      return caps.sampling;
    case "elicitation/create":
      return paramsOf(msg)?.mode === "url" ? caps.elicitationUrl : caps.elicitationForm;
    case "roots/list":
      return caps.roots;
    default:
      return true;
  }
}

function soleActivePort(mux: RoutingHost): Port | undefined {
  if (mux.activePorts.size !== 1) return undefined;
  return mux.activePorts.values().next().value;
}

/** The one busy port; else all attached sessions when they share a principal; else nobody. */
function audienceOf(mux: RoutingHost): Port[] | undefined {
  const sole = soleActivePort(mux);
  if (sole) return [sole];
  let principal: string | undefined;
  for (const port of [...mux.ports, ...mux.activePorts]) {
    if (principal === undefined) principal = port.principal;
    else if (port.principal !== principal) return undefined;
  }
  return mux.ports.size > 0 ? [...mux.ports] : undefined;
}

function drop(mux: RoutingHost, method: string, reason: string): void {
  mux.droppedMessages += 1;
  mux.log.debug("child.message_dropped", { child: mux.label, method, reason });
}
