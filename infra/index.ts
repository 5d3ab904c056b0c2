// The Pulumi program: the whole gateway on Cloudflare for one stack. Read infra/README.md first.
// Pulumi loads this file directly (Pulumi.yaml: typescript: false; Node >= 22.18 strips the types).
import * as pulumi from "@pulumi/pulumi";
import { compilePolicy, POLICIES } from "../policies/index.ts";
import { workerBundleSha256 } from "./bundle-inputs.ts";
import {
  AccessApplications,
  ADMIN_PATH,
  BridgeImage,
  BridgeStateBucket,
  GatewayWorker,
  OAuthStateStore,
  PolicyDatabase,
} from "./components/index.ts";
import { parseStackConfig, pulumiConfigSource } from "./config.ts";
import { hashPaths, isMigrationFile, MIGRATIONS_DIR, REPO_ROOT } from "./source-hash.ts";

// 1. Configuration, validated up front: a wrong key fails here, naming the key, before any change.
const config = parseStackConfig(pulumi.getStack(), pulumiConfigSource());

// 2. Data: D1 (schema migrations, then this environment's policy), KV for OAuth state.
const database = new PolicyDatabase("policy-db", {
  config,
  policy: compilePolicy(POLICIES[config.environment]),
  migrationsSha256: hashPaths(REPO_ROOT, [MIGRATIONS_DIR], isMigrationFile),
});
const oauthStore = new OAuthStateStore("oauth-state", { config });
// The servers' data directories, kept outside the ephemeral containers (worker/bridge/state.ts).
const stateBucket = new BridgeStateBucket("bridge-state", { config });

// 3. Access: the OIDC login app (login provider `access`) and the application in front of /admin.
const access = new AccessApplications("access", { config });

// 4. The bridge image in Cloudflare's registry.
// Push credentials are minted after the build, right before the push (components/bridge-image.ts).
const image = new BridgeImage("bridge", { config });

// 5. The Worker, its Durable Objects and the bridge container, deployed after everything above.
const gateway = new GatewayWorker("gateway", {
  config,
  database,
  oauthStore,
  stateBucket,
  image,
  access,
  // What the Worker imports (from the bundler's inputs), not all of policies/: a policy-only change
  // re-seeds D1 and leaves the Worker as it is.
  bundleSourcesSha256: workerBundleSha256(REPO_ROOT),
});

// Outputs: what to give an MCP client, and what a reviewer checks.
export const mcpUrl = `${gateway.url}/mcp`;
export const authorizationServerMetadataUrl = `${gateway.url}/.well-known/oauth-authorization-server`;
export const protectedResourceMetadataUrl = `${gateway.url}/.well-known/oauth-protected-resource`;
export const adminUrl = `${gateway.url}${ADMIN_PATH}`;
export const workerName = config.names.worker;
export const policyEnvironment = config.environment;
export const policyHash = database.policyHash;
export const d1DatabaseId = database.databaseId;
export const kvNamespaceId = oauthStore.namespaceId;
export const bridgeStateBucket = stateBucket.bucketName;
export const bridgeImage = image.ref;
