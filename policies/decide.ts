import { catalogSnapshot } from "./catalog.snapshot.ts";
import { catalog, isServerId } from "./catalog.ts";
import type { CatalogEntry, ToolAnnotations } from "./catalog.types.ts";
import { isLevel, type Level, levelCovers, maxLevel } from "./levels.ts";
import { toolLevel } from "./tool-level.ts";

/**
 * One row of a principal's effective grants, as the effective-grant query returns it: either a tool a
 * role may call (`kind = "tool"`) or a server-wide grant (`kind = "server"`, `tool = null`).
 */
export interface GrantRow {
  readonly kind: "tool" | "server";
  readonly server: string;
  readonly tool: string | null;
  readonly level: string;
  readonly rate_limit_per_minute: number | null;
}

/** What a principal holds, folded from its grant rows. */
export interface EffectiveGrants {
  /** `server/tool` pairs the principal may call. */
  readonly tools: ReadonlySet<string>;
  /** The highest server-wide level per server (`*` for a wildcard grant). */
  readonly servers: ReadonlyMap<string, Level>;
  /** The highest limit among the principal's roles, or `null` for no limit. */
  readonly rateLimitPerMinute: number | null;
}

export function effectiveGrants(rows: readonly GrantRow[]): EffectiveGrants {
  const tools = new Set<string>();
  const servers = new Map<string, Level>();
  let rateLimit: number | null = null;
  let anyUnlimited = false;
  for (const row of rows) {
    // SECURITY: fail closed on a row we do not understand (a corrupted or newer database).
    if (!isLevel(row.level)) continue;
    if (row.kind === "tool" && row.tool !== null) tools.add(`${row.server}/${row.tool}`);
    if (row.kind === "server") {
      const prior = servers.get(row.server);
      servers.set(row.server, prior ? maxLevel(prior, row.level) : row.level);
    }
    if (row.rate_limit_per_minute === null) anyUnlimited = true;
    else rateLimit = Math.max(rateLimit ?? 0, row.rate_limit_per_minute);
  }
  return { tools, servers, rateLimitPerMinute: anyUnlimited || rateLimit === null ? null : rateLimit };
}

export type Action =
  /** List or call a tool. `annotations` are what the server reports now (used only for tools not in the snapshot). */
  | { readonly kind: "tool"; readonly server: string; readonly tool: string; readonly annotations?: ToolAnnotations }
  /** List or read a server's resources and prompts: needs a server-wide `read`. */
  | { readonly kind: "server-content"; readonly server: string }
  /** Send raw JSON-RPC to a server's process (`execute_stdio`): needs a server-wide `execute`. */
  | { readonly kind: "execute"; readonly server: string }
  /** The admin endpoints: needs `admin` on `*`. */
  | { readonly kind: "admin" };

export type DenyReason =
  | "unknown_server"
  | "tool_not_granted"
  | "unlisted_tool_not_covered"
  | "server_not_granted"
  | "needs_execute"
  | "needs_admin"
  /** A tool outside the snapshot on a server that cannot list its tools now: not decidable, so refused. */
  | "server_unavailable";

export type Decision =
  | { readonly allow: true; readonly reason: "granted"; readonly level: Level }
  | { readonly allow: false; readonly reason: DenyReason };

/**
 * SECURITY: the one authorization decision. Every path (tools/list entries, tools/call, resources,
 * prompts, execute_stdio, admin) asks this function; nothing else re-implements the check.
 */
export function authorize(grants: EffectiveGrants, action: Action): Decision {
  if (action.kind === "admin") {
    const level = grants.servers.get("*");
    return level === "admin" ? { allow: true, reason: "granted", level } : { allow: false, reason: "needs_admin" };
  }
  if (!isServerId(action.server)) return { allow: false, reason: "unknown_server" };
  const serverLevel = grants.servers.get(action.server);
  switch (action.kind) {
    case "execute":
      return serverLevel && levelCovers(serverLevel, "execute")
        ? { allow: true, reason: "granted", level: "execute" }
        : { allow: false, reason: "needs_execute" };
    case "server-content":
      return serverLevel
        ? { allow: true, reason: "granted", level: "read" }
        : { allow: false, reason: "server_not_granted" };
    case "tool": {
      const known: Readonly<Record<string, { level: Level }>> = catalogSnapshot[action.server].tools;
      if (Object.hasOwn(known, action.tool)) {
        const needed = known[action.tool]?.level ?? "admin";
        return grants.tools.has(`${action.server}/${action.tool}`)
          ? { allow: true, reason: "granted", level: needed }
          : { allow: false, reason: "tool_not_granted" };
      }
      // A tool the server reports now that the snapshot does not have: only a server-wide grant at its
      // level covers it, so an allow-list never silently grows.
      const entry: CatalogEntry = catalog[action.server];
      const needed = toolLevel(action.tool, action.annotations, entry.toolLevels);
      return serverLevel && levelCovers(serverLevel, needed)
        ? { allow: true, reason: "granted", level: needed }
        : { allow: false, reason: "unlisted_tool_not_covered" };
    }
  }
}

/**
 * Whether one more call fits the principal's rate limit: the highest `rateLimitPerMinute` among its roles
 * (no limit when any of its roles has none). `callsInWindow` is its allowed calls in the last minute.
 * Calls still in flight when the count was read are not in it, so concurrent calls can exceed the limit
 * by their number; the limit is a brake, not a quota.
 */
export function withinRateLimit(grants: EffectiveGrants, callsInWindow: number): boolean {
  return grants.rateLimitPerMinute === null || callsInWindow < grants.rateLimitPerMinute;
}
