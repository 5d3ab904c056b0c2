import type { Kysely } from "kysely";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import { SERVER_IDS } from "../../policies/catalog.ts";
import type { PolicySource } from "../../policies/compile.ts";
import { authorize, type DenyReason, effectiveGrants } from "../../policies/decide.ts";
import { isLevel, type Level, levelCovers } from "../../policies/levels.ts";
import type { Environment } from "../../policies/policy.types.ts";

type SourceGrant = PolicySource["roles"][string][number];

import type { Database } from "../db/database.ts";
import { loadPrincipalGrants } from "../db/grants.repository.ts";
import { deployedPolicySource, grantRowsOf } from "../db/policy.repository.ts";

/** One link of a reason: this subject is bound to this role, whose grant covers the tool. */
export interface Because {
  readonly subject: string;
  readonly role: string;
  /** `tool` when the role lists this tool (materialized by the compiler), `server` for a server-wide grant. */
  readonly via: "tool" | "server";
  readonly server: string;
  readonly level: Level;
  /** The grant as written in the repository's policy, when the deployed policy is this build's. */
  readonly source: string | null;
}

export interface ToolAccess {
  readonly server: string;
  readonly tool: string;
  /** The level the tool needs. */
  readonly needs: Level;
  readonly allowed: boolean;
  readonly denyReason: DenyReason | null;
  readonly because: readonly Because[];
}

export interface ServerAccess {
  readonly server: string;
  /** The highest server-wide level, if any (resources, prompts, `execute_stdio` at execute). */
  readonly serverLevel: Level | null;
  readonly rawStdio: boolean;
  readonly tools: readonly ToolAccess[];
}

export interface AccessReport {
  readonly subjects: readonly string[];
  readonly blockedSubjects: readonly string[];
  readonly rateLimitPerMinute: number | null;
  readonly admin: boolean;
  readonly servers: readonly ServerAccess[];
  readonly deployedHash: string | null;
  /** Whether the deployed seed carries the policy's own words (then grants are quoted from it). */
  readonly sourceMatches: boolean;
}

/**
 * What a set of binding subjects may use, and why. The decisions come from the same grants query and the
 * same `authorize()` as every MCP call (nothing here decides anything); the reasons are the bindings,
 * roles and grant rows of the deployed policy that produced each allow, quoted from the repository's
 * policy when the deployed one is this build's.
 */
export async function explainAccess(
  db: Kysely<Database>,
  subjects: readonly string[],
  _environment: Environment,
): Promise<AccessReport> {
  const [loaded, rows, source] = await Promise.all([
    loadPrincipalGrants(db, subjects),
    grantRowsOf(db, subjects),
    deployedPolicySource(db),
  ]);
  const { tools: toolRows, servers: serverRows } = rows;
  const grants = effectiveGrants(loaded.rows);
  const sourceMatches = source !== null;
  const roles = source?.roles ?? {};
  const quote = (role: string, server: string, tool: string | null): string | null => {
    if (!sourceMatches) return null;
    const matching = (roles[role] ?? []).filter(
      (g: SourceGrant) =>
        (g.server === server || g.server === "*") &&
        (tool === null ||
          (!("allow" in g && g.allow !== undefined && !(g.allow as readonly string[]).includes(tool)) &&
            !("deny" in g && g.deny !== undefined && (g.deny as readonly string[]).includes(tool)))),
    );
    return matching.length === 0 ? null : matching.map(grantText).join(" and ");
  };

  const servers: ServerAccess[] = SERVER_IDS.map((server) => {
    const snapshot: Readonly<Record<string, { level: Level }>> = catalogSnapshot[server].tools;
    const wide = serverRows.filter((r) => (r.server === server || r.server === "*") && isLevel(r.level));
    const tools = Object.entries(snapshot)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([tool, info]): ToolAccess => {
        const decision = authorize(grants, { kind: "tool", server, tool });
        const because: Because[] = decision.allow
          ? toolRows
              .filter((r) => r.server === server && r.tool === tool && isLevel(r.level))
              .map((r) => ({
                subject: r.subject,
                role: r.role,
                via: wide.some((w) => w.role === r.role && levelCovers(w.level as Level, info.level))
                  ? ("server" as const)
                  : ("tool" as const),
                server,
                level: (wide.find((w) => w.role === r.role)?.level ?? r.level) as Level,
                source: quote(r.role, server, tool),
              }))
          : [];
        return {
          server,
          tool,
          needs: info.level,
          allowed: decision.allow,
          denyReason: decision.allow ? null : decision.reason,
          because,
        };
      });
    return {
      server,
      serverLevel: grants.servers.get(server) ?? null,
      rawStdio: authorize(grants, { kind: "execute", server }).allow,
      tools,
    };
  });
  return {
    subjects,
    blockedSubjects: loaded.standing.blockedSubjects,
    rateLimitPerMinute: grants.rateLimitPerMinute,
    admin: authorize(grants, { kind: "admin" }).allow,
    servers,
    deployedHash: loaded.policyHash,
    sourceMatches,
  };
}

/** A grant as it is written in a policy file. */
function grantText(grant: SourceGrant): string {
  const parts = [`server: ${JSON.stringify(grant.server)}`, `level: ${JSON.stringify(grant.level)}`];
  if ("allow" in grant && grant.allow) parts.push(`allow: ${JSON.stringify(grant.allow)}`);
  if ("deny" in grant && grant.deny) parts.push(`deny: ${JSON.stringify(grant.deny)}`);
  return `{ ${parts.join(", ")} }`;
}
