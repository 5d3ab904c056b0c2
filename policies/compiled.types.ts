import type { Level } from "./levels.ts";
import type { Environment } from "./policy.types.ts";

/**
 * The rows a policy compiles to, one array per D1 table (see migrations/STORAGE.md).
 * Arrays are sorted, so the same policy always gives the same rows, SQL and hash.
 */
export interface CompiledPolicy {
  readonly environment: Environment;
  /** Hex SHA-256 of the canonical rows; stored in `policy_meta` and shown in deployment previews. */
  readonly hash: string;
  readonly roles: readonly RoleRow[];
  /** Every tool a role may call, materialized from its grants against the catalog snapshot. */
  readonly roleTools: readonly RoleToolRow[];
  /** Server-wide grants (no `allow` list); `server = "*"` marks a wildcard grant. */
  readonly roleServers: readonly RoleServerRow[];
  readonly bindings: readonly BindingRow[];
  readonly toolLevels: readonly ToolLevelRow[];
  /** The SQL that replaces whatever policy D1 held with this one. Apply as one batch. */
  readonly statements: readonly string[];
}

export interface RoleRow {
  readonly name: string;
  readonly description: string;
  readonly rate_limit_per_minute: number | null;
}
export interface RoleToolRow {
  readonly role: string;
  readonly server: string;
  readonly tool: string;
  readonly level: Level;
}
export interface RoleServerRow {
  readonly role: string;
  readonly server: string;
  readonly level: Level;
}
export interface BindingRow {
  readonly subject: string;
  readonly role: string;
}
export interface ToolLevelRow {
  readonly server: string;
  readonly tool: string;
  readonly level: Level;
  readonly read_only: 0 | 1;
}
