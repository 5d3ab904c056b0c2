import { catalogSnapshot as defaultSnapshot } from "./catalog.snapshot.ts";
import { SERVER_IDS } from "./catalog.ts";
import type { ServerSnapshot } from "./catalog.types.ts";
import type {
  BindingRow,
  CompiledPolicy,
  RoleRow,
  RoleServerRow,
  RoleToolRow,
  ToolLevelRow,
} from "./compiled.types.ts";
import { isLevel, type Level, levelCovers, maxLevel } from "./levels.ts";
import type { Policy } from "./policy.types.ts";
import { isMockSubject, SUBJECT_EXAMPLES, subjectKind } from "./subjects.ts";

/** Thrown when a policy is invalid; `problems` names every role, principal or tool at fault. */
export class PolicyError extends Error {
  readonly problems: readonly string[];
  constructor(environment: string, problems: readonly string[]) {
    super(`Policy "${environment}" is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "PolicyError";
    this.problems = problems;
  }
}

const ROLE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
/** Rate limits above this are almost certainly a typo (10 calls a second, sustained). */
const MAX_RATE_LIMIT_PER_MINUTE = 600_000;

export interface CompileOptions {
  /** For tests: another catalog snapshot (defaults to the committed one). */
  readonly snapshot?: Readonly<Record<string, ServerSnapshot>>;
  readonly serverIds?: readonly string[];
}

/**
 * Validates a policy and compiles it to D1 rows and SQL. Deterministic: the same policy, in any
 * declaration order, gives byte-identical statements and the same hash.
 */
export async function compilePolicy(policy: Policy, options: CompileOptions = {}): Promise<CompiledPolicy> {
  const snapshot = options.snapshot ?? (defaultSnapshot as Readonly<Record<string, ServerSnapshot>>);
  const serverIds = [...(options.serverIds ?? SERVER_IDS)].sort();
  const problems: string[] = [];
  const roleNames = Object.keys(policy.roles).sort();

  const roles: RoleRow[] = [];
  const roleTools = new Map<string, RoleToolRow>();
  const roleServers = new Map<string, RoleServerRow>();
  const addServerRow = (role: string, server: string, level: Level) => {
    const key = `${role}\u0000${server}`;
    const prior = roleServers.get(key);
    roleServers.set(key, { role, server, level: prior ? maxLevel(prior.level, level) : level });
  };

  for (const name of roleNames) {
    const role = policy.roles[name];
    if (!role) continue;
    if (!ROLE_NAME.test(name)) problems.push(`role "${name}": names are lowercase letters, digits and dashes`);
    if (hasControlChars(role.description)) problems.push(`role "${name}": description contains control characters`);
    const limit = role.rateLimitPerMinute;
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0 && limit <= MAX_RATE_LIMIT_PER_MINUTE)) {
      problems.push(`role "${name}": rateLimitPerMinute must be a whole number from 1 to ${MAX_RATE_LIMIT_PER_MINUTE}`);
    }
    roles.push({ name, description: role.description, rate_limit_per_minute: limit ?? null });

    const allowedInRole = new Set<string>();
    const deniedInRole = new Set<string>();
    for (const [index, grant] of role.grants.entries()) {
      const where = `role "${name}", grant ${index + 1}`;
      if (!isLevel(grant.level)) {
        problems.push(`${where}: unknown level "${String(grant.level)}"`);
        continue;
      }
      if (grant.server === "*") {
        if ("allow" in grant || "deny" in grant) problems.push(`${where}: a "*" grant cannot list tools`);
        addServerRow(name, "*", grant.level);
        for (const server of serverIds) {
          addServerRow(name, server, grant.level);
          for (const [tool, info] of Object.entries(snapshot[server]?.tools ?? {})) {
            if (levelCovers(grant.level, info.level)) {
              roleTools.set(`${name}\u0000${server}\u0000${tool}`, { role: name, server, tool, level: info.level });
            }
          }
        }
        continue;
      }
      const server: string = grant.server;
      const tools = serverIds.includes(server) ? snapshot[server]?.tools : undefined;
      if (!tools) {
        problems.push(`${where}: unknown server "${server}" (servers: ${serverIds.join(", ")})`);
        continue;
      }
      const allow: readonly string[] | undefined = grant.allow;
      const deny = new Set<string>(grant.deny ?? []);
      for (const tool of [...(allow ?? []), ...deny]) {
        if (!Object.hasOwn(tools, tool)) problems.push(`${where}: server "${server}" has no tool "${tool}"`);
      }
      for (const tool of allow ?? []) {
        const info = Object.hasOwn(tools, tool) ? tools[tool] : undefined;
        if (info && !levelCovers(grant.level, info.level)) {
          problems.push(`${where}: tool "${server}/${tool}" needs ${info.level}, above this grant's ${grant.level}`);
        }
        if (deny.has(tool)) problems.push(`${where}: tool "${server}/${tool}" is both allowed and denied`);
        else allowedInRole.add(`${server}/${tool}`);
      }
      for (const tool of deny) if (!allow?.includes(tool)) deniedInRole.add(`${server}/${tool}`);
      if (!allow) addServerRow(name, server, grant.level);
      for (const [tool, info] of Object.entries(tools)) {
        if (allow && !allow.includes(tool)) continue;
        if (deny.has(tool) || !levelCovers(grant.level, info.level)) continue;
        roleTools.set(`${name}\u0000${server}\u0000${tool}`, { role: name, server, tool, level: info.level });
      }
    }
    for (const tool of allowedInRole) {
      if (deniedInRole.has(tool))
        problems.push(`role "${name}": tool "${tool}" is allowed by one grant and denied by another`);
    }
  }

  const bindings: BindingRow[] = [];
  const seenSubjects = new Set<string>();
  for (const binding of policy.bindings) {
    const where = `binding "${binding.subject}"`;
    if (seenSubjects.has(binding.subject))
      problems.push(`${where}: the subject is bound twice; list all its roles in one binding`);
    seenSubjects.add(binding.subject);
    if (!subjectKind(binding.subject)) {
      problems.push(`${where}: not a valid principal or group (forms: ${SUBJECT_EXAMPLES.join(", ")})`);
    }
    if (policy.environment === "prod" && isMockSubject(binding.subject)) {
      problems.push(`${where}: mock identities cannot appear in the production policy`);
    }
    if (binding.roles.length === 0) problems.push(`${where}: binds no role`);
    const seenRoles = new Set<string>();
    for (const role of binding.roles) {
      if (seenRoles.has(role)) problems.push(`${where}: role "${role}" is listed twice`);
      seenRoles.add(role);
      if (!Object.hasOwn(policy.roles, role)) problems.push(`${where}: role "${role}" is not defined`);
      bindings.push({ subject: binding.subject, role });
    }
  }
  if (policy.defaultRole !== null) {
    if (!Object.hasOwn(policy.roles, policy.defaultRole))
      problems.push(`defaultRole: role "${policy.defaultRole}" is not defined`);
    if (policy.environment === "prod")
      problems.push("defaultRole: production has no default role; bind principals or groups instead");
    // The default role is a binding of the subject "*", which every signed-in principal matches.
    bindings.push({ subject: "*", role: policy.defaultRole });
  }
  if (problems.length > 0) throw new PolicyError(policy.environment, problems);

  const toolLevels: ToolLevelRow[] = [];
  for (const server of serverIds) {
    for (const [tool, info] of Object.entries(snapshot[server]?.tools ?? {})) {
      toolLevels.push({ server, tool, level: info.level, read_only: info.annotations.readOnlyHint === true ? 1 : 0 });
    }
  }

  const byKeys =
    <T>(...keys: (keyof T)[]) =>
    (a: T, b: T) => {
      for (const k of keys) {
        const x = String(a[k]);
        const y = String(b[k]);
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    };
  const rows = {
    roles: roles.sort(byKeys<RoleRow>("name")),
    roleTools: [...roleTools.values()].sort(byKeys<RoleToolRow>("role", "server", "tool")),
    roleServers: [...roleServers.values()].sort(byKeys<RoleServerRow>("role", "server")),
    bindings: bindings.sort(byKeys<BindingRow>("subject", "role")),
    toolLevels: toolLevels.sort(byKeys<ToolLevelRow>("server", "tool")),
  };
  // The hash covers the SQL that will run, not just the rows: a change in how the compiler renders SQL
  // also changes it, so a deployment re-seeds whenever what it would execute differs.
  const body = [...dataStatements(rows), sourceStatement(policy)];
  const hash = await sha256Hex(JSON.stringify({ environment: policy.environment, statements: body }));
  return {
    environment: policy.environment,
    hash,
    ...rows,
    statements: [...body, metaStatement(policy.environment, hash)],
  };
}

/** The tables the policy owns. The seed replaces them whole, so nothing stale survives a re-seed. */
export const POLICY_TABLES = ["bindings", "role_tools", "role_servers", "roles", "tool_levels"] as const;

function dataStatements(rows: Omit<CompiledPolicy, "environment" | "hash" | "statements">): string[] {
  const insert = (table: string, columns: string[], values: readonly (readonly (string | number | null)[])[]) =>
    values.length === 0
      ? []
      : [
          `INSERT INTO ${table} (${columns.join(", ")}) VALUES\n${values.map((v) => `  (${v.map(sqlLiteral).join(", ")})`).join(",\n")}`,
        ];
  return [
    ...POLICY_TABLES.map((t) => `DELETE FROM ${t}`),
    ...insert(
      "roles",
      ["name", "description", "rate_limit_per_minute"],
      rows.roles.map((r) => [r.name, r.description, r.rate_limit_per_minute]),
    ),
    ...insert(
      "role_tools",
      ["role", "server", "tool", "level"],
      rows.roleTools.map((r) => [r.role, r.server, r.tool, r.level]),
    ),
    ...insert(
      "role_servers",
      ["role", "server", "level"],
      rows.roleServers.map((r) => [r.role, r.server, r.level]),
    ),
    ...insert(
      "bindings",
      ["subject", "role"],
      rows.bindings.map((r) => [r.subject, r.role]),
    ),
    ...insert(
      "tool_levels",
      ["server", "tool", "level", "read_only"],
      rows.toolLevels.map((r) => [r.server, r.tool, r.level, r.read_only]),
    ),
  ];
}

/** The `policy_meta` key holding the policy as written (roles' grants, binding notes): see policySource. */
export const POLICY_SOURCE_KEY = "source";

/** The policy as it is written, for people reading why someone has access (the admin console). */
export interface PolicySource {
  /** Per role, its grants as written in the policy file, in a stable order. */
  readonly roles: Readonly<
    Record<string, readonly { server: string; level: string; allow?: readonly string[]; deny?: readonly string[] }[]>
  >;
  /** Per bound subject, the binding's note. */
  readonly notes: Readonly<Record<string, string>>;
}

/**
 * The policy's own words, seeded with it (policy_meta `source`), so the console can quote the grant that
 * gives someone a tool without the Worker importing `policies/environments/` (a policy change must not
 * redeploy the Worker). Sorted, so the compiler stays deterministic in any declaration order.
 */
function sourceStatement(policy: Policy): string {
  const roles: Record<string, unknown[]> = {};
  for (const name of Object.keys(policy.roles).sort()) {
    const grants = (policy.roles[name]?.grants ?? []).map((g) => ({ ...g }));
    roles[name] = grants.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  const notes: Record<string, string> = {};
  for (const b of [...policy.bindings].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0))) {
    if (b.note) notes[b.subject] = b.note;
  }
  const source: PolicySource = { roles: roles as PolicySource["roles"], notes };
  return `INSERT INTO policy_meta (key, value) VALUES (${sqlLiteral(POLICY_SOURCE_KEY)}, ${sqlLiteral(JSON.stringify(source))}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
}

function metaStatement(environment: string, hash: string): string {
  return `INSERT INTO policy_meta (key, value) VALUES ('environment', ${sqlLiteral(environment)}), ('hash', ${sqlLiteral(hash)}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
}

/** The whole seed as one SQL file (for `wrangler d1 execute --file`). */
export function seedSql(compiled: CompiledPolicy): string {
  return `-- Policy "${compiled.environment}" ${compiled.hash}. Generated; do not edit.\n${compiled.statements.join(";\n")};\n`;
}

function sqlLiteral(value: string | number | null): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  if (value.includes("\u0000")) throw new Error("NUL in a policy string");
  return `'${value.replaceAll("'", "''")}'`;
}

function hasControlChars(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point.
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
