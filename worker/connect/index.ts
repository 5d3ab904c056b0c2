export { deleteConnectionsOfSubject } from "../db/connections.repository.ts";
export { handleBridgeConnectionRequest, REFRESH_BEFORE_EXPIRY_MS, resolveConnection } from "./bridge-token.ts";
export { CONNECT_PATH, createConnectRoutes } from "./connect.routes.ts";
export { type ConnectRuntime, connectRuntime } from "./connect.runtime.ts";
export { type EgressRule, egressRules, handleEgressRequest } from "./egress.ts";
export { deleteConnectionsOnBlock, evictFromBridge, registerEvictRoute } from "./evict.ts";
