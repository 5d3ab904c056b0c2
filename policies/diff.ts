import type { CompiledPolicy } from "./compiled.types.ts";
import { effectiveGrants, type GrantRow } from "./decide.ts";
import type { Level } from "./levels.ts";

/** One line of an access change: a tool, or a server-wide grant (`tool = "*"`). */
export interface AccessChange {
  readonly server: string;
  readonly tool: string;
  readonly before: Level | null;
  readonly after: Level | null;
}

export interface SubjectChange {
  readonly subject: string;
  readonly rolesBefore: readonly string[];
  readonly rolesAfter: readonly string[];
  readonly changes: readonly AccessChange[];
  readonly rateLimitBefore: number | null;
  readonly rateLimitAfter: number | null;
}

type Access = { tools: Map<string, Level>; servers: Map<string, Level>; roles: string[]; rateLimit: number | null };

/**
 * What a subject holds through its own bindings. Group membership is only known at login, so a group
 * is shown as a subject of its own; `*` is the default role.
 */
function accessOf(policy: CompiledPolicy | null, subject: string): Access {
  const roles = (policy?.bindings ?? []).filter((b) => b.subject === subject).map((b) => b.role);
  const roleSet = new Set(roles);
  const limits = new Map((policy?.roles ?? []).map((r) => [r.name, r.rate_limit_per_minute]));
  const rows: GrantRow[] = [
    ...(policy?.roleTools ?? [])
      .filter((r) => roleSet.has(r.role))
      .map((r) => ({
        kind: "tool" as const,
        server: r.server,
        tool: r.tool,
        level: r.level,
        rate_limit_per_minute: limits.get(r.role) ?? null,
      })),
    ...(policy?.roleServers ?? [])
      .filter((r) => roleSet.has(r.role))
      .map((r) => ({
        kind: "server" as const,
        server: r.server,
        tool: null,
        level: r.level,
        rate_limit_per_minute: limits.get(r.role) ?? null,
      })),
  ];
  // The same folding the gateway applies to the rows it reads from D1.
  const grants = effectiveGrants(rows);
  const toolLevel = new Map((policy?.toolLevels ?? []).map((t) => [`${t.server}/${t.tool}`, t.level]));
  const tools = new Map<string, Level>();
  for (const key of grants.tools) tools.set(key, toolLevel.get(key) ?? "write");
  return {
    tools,
    servers: new Map(grants.servers),
    roles: roles.sort(),
    rateLimit: rows.length ? grants.rateLimitPerMinute : null,
  };
}

/** Every subject whose access differs between two compiled policies (either may be absent). */
export function diffPolicies(before: CompiledPolicy | null, after: CompiledPolicy | null): SubjectChange[] {
  const subjects = [...new Set([...(before?.bindings ?? []), ...(after?.bindings ?? [])].map((b) => b.subject))].sort();
  const out: SubjectChange[] = [];
  for (const subject of subjects) {
    const a = accessOf(before, subject);
    const b = accessOf(after, subject);
    const changes: AccessChange[] = [];
    for (const key of [...new Set([...a.servers.keys(), ...b.servers.keys()])].sort()) {
      const x = a.servers.get(key) ?? null;
      const y = b.servers.get(key) ?? null;
      if (x !== y) changes.push({ server: key, tool: "*", before: x, after: y });
    }
    for (const key of [...new Set([...a.tools.keys(), ...b.tools.keys()])].sort()) {
      const x = a.tools.get(key) ?? null;
      const y = b.tools.get(key) ?? null;
      if (x !== y) {
        const slash = key.indexOf("/");
        changes.push({ server: key.slice(0, slash), tool: key.slice(slash + 1), before: x, after: y });
      }
    }
    const rolesChanged = a.roles.join() !== b.roles.join();
    if (changes.length || rolesChanged || a.rateLimit !== b.rateLimit) {
      out.push({
        subject,
        rolesBefore: a.roles,
        rolesAfter: b.roles,
        changes,
        rateLimitBefore: a.rateLimit,
        rateLimitAfter: b.rateLimit,
      });
    }
  }
  return out;
}

const show = (level: Level | null) => (level === null ? "—" : level);
const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** Markdown for a pull-request comment: per environment, each subject whose access changes. */
export function renderDiffMarkdown(
  sections: readonly { environment: string; before: CompiledPolicy | null; after: CompiledPolicy | null }[],
  baseRef: string,
): string {
  const lines = [`## Access changes against \`${cell(baseRef)}\``, ""];
  let any = false;
  for (const { environment, before, after } of sections) {
    const changes = diffPolicies(before, after);
    lines.push(`### ${environment}`, "");
    if (changes.length === 0) {
      lines.push("No change in access.", "");
      continue;
    }
    any = true;
    lines.push(
      `Policy hash \`${before?.hash.slice(0, 12) ?? "none"}\` → \`${after?.hash.slice(0, 12) ?? "none"}\``,
      "",
    );
    for (const c of changes) {
      const who = c.subject === "*" ? "`*` (default role: every signed-in principal)" : `\`${cell(c.subject)}\``;
      lines.push(`#### ${who}`, "");
      if (c.rolesBefore.join() !== c.rolesAfter.join()) {
        lines.push(`Roles: ${c.rolesBefore.join(", ") || "none"} → ${c.rolesAfter.join(", ") || "none"}`, "");
      }
      if (c.rateLimitBefore !== c.rateLimitAfter) {
        lines.push(`Rate limit per minute: ${c.rateLimitBefore ?? "none"} → ${c.rateLimitAfter ?? "none"}`, "");
      }
      if (c.changes.length) {
        lines.push("| server | tool | before | after |", "| --- | --- | --- | --- |");
        for (const ch of c.changes) {
          const tool = ch.tool === "*" ? "*(whole server)*" : `\`${cell(ch.tool)}\``;
          lines.push(`| \`${cell(ch.server)}\` | ${tool} | ${show(ch.before)} | ${show(ch.after)} |`);
        }
        lines.push("");
      }
    }
  }
  if (!any) lines.push("**No principal or group gains or loses access.**", "");
  return lines.join("\n");
}
