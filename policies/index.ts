export { catalogSnapshot } from "./catalog.snapshot.ts";
export { type Catalog, catalog, isolationOf, isServerId, SERVER_IDS, type ServerId } from "./catalog.ts";
export type { CatalogEntry, Isolation, ServerSnapshot, ToolAnnotations } from "./catalog.types.ts";
export { compilePolicy, POLICY_TABLES, PolicyError, seedSql } from "./compile.ts";
export type { CompiledPolicy } from "./compiled.types.ts";
export {
  type Action,
  authorize,
  type Decision,
  type DenyReason,
  type EffectiveGrants,
  effectiveGrants,
  type GrantRow,
  withinRateLimit,
} from "./decide.ts";
export { diffPolicies, renderDiffMarkdown, type SubjectChange } from "./diff.ts";
export { environmentForStack, POLICIES, policyFor } from "./environments/index.ts";
export { isLevel, LEVELS, type Level, levelCovers } from "./levels.ts";
export {
  definePolicy,
  ENVIRONMENTS,
  type Environment,
  type Grant,
  type Policy,
  type Role,
  type ToolName,
} from "./policy.types.ts";
export { isGroupSubject, subjectKind } from "./subjects.ts";
export { toolLevel } from "./tool-level.ts";
