import { describe, expect, it } from "vitest";
import {
  compilePolicy,
  definePolicy,
  diffPolicies,
  POLICIES,
  type Policy,
  renderDiffMarkdown,
} from "../../policies/index.ts";

const base = POLICIES.dev;

function role(name: string) {
  const found = base.roles[name];
  if (!found) throw new Error(`the dev policy has no role ${name}`);
  return found;
}

async function diff(before: Policy, after: Policy) {
  return diffPolicies(await compilePolicy(before), await compilePolicy(after));
}

describe("policy diff: who gains or loses which tool", () => {
  it("reports nothing when access is unchanged, even if declarations move around", async () => {
    const reordered = { ...base, bindings: [...base.bindings].reverse() };
    expect(await diff(base, reordered)).toEqual([]);
  });

  it("a grant added to a role shows for every subject bound to it", async () => {
    const after = definePolicy({
      ...base,
      roles: {
        ...base.roles,
        reader: {
          ...role("reader"),
          grants: [...role("reader").grants, { server: "memory", level: "write", allow: ["add_observations"] }],
        },
      },
    } as Policy);
    const changes = await diff(base, after);
    expect(changes.map((c) => c.subject)).toEqual(["email:carol@example.com"]);
    expect(changes[0]?.changes).toEqual([{ server: "memory", tool: "add_observations", before: null, after: "write" }]);
  });

  it("a role removed: its subjects lose every tool, and the binding change is shown", async () => {
    const { writer: _removed, ...roles } = base.roles;
    const after = { ...base, roles, bindings: base.bindings.filter((b) => b.subject !== "mock:bob") } as Policy;
    const [bob, ...rest] = await diff(base, after);
    expect(rest).toEqual([]);
    expect(bob?.subject).toBe("mock:bob");
    expect(bob?.rolesBefore).toEqual(["writer"]);
    expect(bob?.rolesAfter).toEqual([]);
    expect(bob?.changes.every((c) => c.after === null)).toBe(true);
    expect(bob?.changes).toContainEqual({ server: "memory", tool: "*", before: "write", after: null });
    expect(bob?.changes).toContainEqual({ server: "memory", tool: "delete_entities", before: "write", after: null });
  });

  it("a tool denied: exactly that tool is lost", async () => {
    const after = {
      ...base,
      roles: {
        ...base.roles,
        writer: {
          ...role("writer"),
          grants: [{ server: "memory", level: "write", deny: ["delete_entities"] }, ...role("writer").grants.slice(1)],
        },
      },
    } as Policy;
    const changes = await diff(base, after);
    expect(changes).toHaveLength(1);
    expect(changes[0]?.changes).toEqual([{ server: "memory", tool: "delete_entities", before: "write", after: null }]);
  });

  it("a group binding changed: the group gains the new role's tools and loses the old", async () => {
    const after = {
      ...base,
      bindings: base.bindings.map((b) => (b.subject === "group:mock:staff" ? { ...b, roles: ["reader"] } : b)),
    } as Policy;
    const [staff] = await diff(base, after);
    expect(staff?.subject).toBe("group:mock:staff");
    expect(staff?.rolesBefore).toEqual(["researcher"]);
    expect(staff?.rolesAfter).toEqual(["reader"]);
    expect(staff?.changes).toContainEqual({ server: "memory", tool: "read_graph", before: null, after: "read" });
    expect(staff?.changes).toContainEqual({
      server: "everything",
      tool: "simulate-research-query",
      before: "write",
      after: null,
    });
    expect(staff?.changes.map((c) => c.tool)).not.toContain("echo"); // kept: read under both roles
  });

  it("a default role appears as the subject `*`", async () => {
    const after = { ...base, defaultRole: "reader" } as Policy;
    const [everyone] = await diff(base, after);
    expect(everyone?.subject).toBe("*");
    expect(everyone?.rolesAfter).toEqual(["reader"]);
  });

  it("renders Markdown for a pull request, and says so when nothing changes", async () => {
    const after = { ...base, bindings: base.bindings.filter((b) => b.subject !== "mock:bob") } as Policy;
    const md = renderDiffMarkdown(
      [
        { environment: "dev", before: await compilePolicy(base), after: await compilePolicy(after) },
        { environment: "prod", before: await compilePolicy(POLICIES.prod), after: await compilePolicy(POLICIES.prod) },
      ],
      "main",
    );
    expect(md).toContain("## Access changes against `main`");
    expect(md).toContain("#### `mock:bob`");
    expect(md).toContain("| `memory` | `delete_entities` | write | — |");
    expect(md).toMatch(/### prod\n\nNo change in access\./);
    const none = renderDiffMarkdown(
      [{ environment: "dev", before: await compilePolicy(base), after: await compilePolicy(base) }],
      "main",
    );
    expect(none).toContain("**No principal or group gains or loses access.**");
  });
});
