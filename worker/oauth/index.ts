export { mountAuthorize } from "./authorize.routes.ts";
export { mountCallback } from "./callback.routes.ts";
export { namesNonPublicHost } from "./cimd-guard.ts";
export { endpointMetadataPath, endpointMetadataResponse } from "./endpoint-resource.ts";
export {
  AuthProps,
  authPropsFrom,
  grantUserId,
  type LoginIdentity,
  MAX_GROUPS,
  principalOfGrantUserId,
  subjectsOf,
} from "./props.ts";
export { AUTHORIZE_PATH, providerOptions, REGISTER_PATH, TOKEN_PATH } from "./provider-options.ts";
export { type AppEnv, MCP_SCOPE, type OAuthRouteDeps } from "./routes.types.ts";
export { guardTokenEndpoint } from "./token-guard.ts";
export { apiApp } from "./whoami.ts";
