export { AccessApplications, ADMIN_PATH } from "./access-applications.ts";
export { BRIDGE_BUILD_CONTEXT, BRIDGE_DOCKERFILE, BridgeImage, pinnedByDigest } from "./bridge-image.ts";
export { BridgeStateBucket } from "./bridge-state-bucket.ts";
export { DEPLOY_CLI } from "./deploy-cli.ts";
export { GatewayWorker } from "./gateway-worker.ts";
export { OAuthStateStore } from "./oauth-state-store.ts";
export { PolicyDatabase } from "./policy-database.ts";
