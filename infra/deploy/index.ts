export { applyD1Migrations } from "./d1.ts";
export { type DockerRunner, registryLogin } from "./registry.ts";
export {
  type DeleteOutcome,
  type DeployResult,
  deleteWorkerDeployment,
  deployWorker,
  formatResult,
  newInstanceTag,
  parseResult,
  RESULT_MARKER,
} from "./worker.ts";
export {
  type GeneratedConfig,
  parseGeneratedConfig,
  realWrangler,
  type WranglerRunner,
  withConfigFile,
} from "./wrangler.ts";
