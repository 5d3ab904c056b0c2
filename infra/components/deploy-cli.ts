/**
 * The commands the Pulumi program runs (infra/deploy/cli.ts). They run from the project folder, where
 * Pulumi starts its provider plugins, and need Node >= 22.18 on PATH (it runs TypeScript natively),
 * the same Node that runs this program. A path changed here also changes the delete step recorded in
 * each existing stack's state only after that stack's next `pulumi up`.
 */
export const DEPLOY_CLI = {
  d1Migrate: "node infra/deploy/cli.ts d1-migrate",
  workerDeploy: "node infra/deploy/cli.ts worker-deploy",
  workerDelete: "node infra/deploy/cli.ts worker-delete",
  registryLogin: "node infra/deploy/cli.ts registry-login",
} as const;
