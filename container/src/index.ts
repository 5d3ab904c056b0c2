// The bridge's public surface. The Worker imports `contract.ts` directly (it runs in workerd, and the
// rest of this folder is Node-only); Node code (scripts, tests) may use this index.
export { type RunningBridge, startBridge } from "./bridge.ts";
export { type BackoffPolicy, ChildSupervisor, DEFAULT_BACKOFF, type SupervisorSnapshot } from "./child.ts";
export { type BridgeConfig, ConfigError, loadConfig } from "./config.ts";
export {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_LIMITS,
  BRIDGE_ROUTES,
  type BridgeClaims,
  type BridgeKey,
  bridgeMcpPath,
  CREDENTIAL_TTL_SECONDS,
  type CredentialFailure,
  type CredentialUse,
  type ExecuteRequestBody,
  importBridgeKey,
  jsonDepthExceeds,
  jsonRpcRequestProblem,
  MAX_JSON_DEPTH,
  MCP_SESSION_HEADER,
  mintBridgeCredential,
  ReplayCache,
  type VerifyResult,
  verifyBridgeCredential,
} from "./contract.ts";
export { BRIDGE_COMMAND, BRIDGE_ENTRY } from "./entry.ts";
export { ParkedError } from "./handshake.ts";
export { type LaunchContext, type LaunchSpec, launchSpec } from "./launch.ts";
export { createLogger, type Logger, type LogLevel } from "./log.ts";
export { Multiplexer } from "./multiplexer.ts";
