import { describe, expect, it } from "vitest";
import {
  compilePolicy,
  definePolicy,
  POLICIES,
  type Policy,
  PolicyError,
  policyFor,
  seedSql,
} from "../../policies/index.ts";

const demo = POLICIES.dev;

/** The same policy with every list and record declared in reverse order. */
function reversed(policy: Policy): Policy {
  const roles = Object.fromEntries(
    Object.entries(policy.roles)
      .reverse()
      .map(([name, role]) => [name, { ...role, grants: [...role.grants].reverse() }]),
  );
  return {
    ...policy,
    roles,
    bindings: [...policy.bindings].reverse().map((b) => ({ ...b, roles: [...b.roles].reverse() })),
  };
}

async function problemsOf(policy: Policy): Promise<readonly string[]> {
  try {
    await compilePolicy(policy);
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  throw new Error("the policy compiled, but it should have been refused");
}

describe("policy compiler: determinism", () => {
  it("gives byte-identical SQL and the same hash for the same policy", async () => {
    const a = await compilePolicy(demo);
    const b = await compilePolicy(demo);
    expect(seedSql(a)).toBe(seedSql(b));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).toBe(b.hash);
  });

  it("does not depend on the order of declaration", async () => {
    const a = await compilePolicy(demo);
    const b = await compilePolicy(reversed(demo));
    expect(seedSql(b)).toBe(seedSql(a));
    expect(b.hash).toBe(a.hash);
  });

  it("changes the hash when access changes", async () => {
    const a = await compilePolicy(demo);
    const b = await compilePolicy({ ...demo, bindings: demo.bindings.filter((x) => x.subject !== "mock:bob") });
    expect(b.hash).not.toBe(a.hash);
  });

  it("replaces every policy table before inserting (a re-seed leaves nothing stale)", async () => {
    const { statements } = await compilePolicy(demo);
    expect(statements.slice(0, 5)).toEqual([
      "DELETE FROM bindings",
      "DELETE FROM role_tools",
      "DELETE FROM role_servers",
      "DELETE FROM roles",
      "DELETE FROM tool_levels",
    ]);
  });

  it("escapes quotes in SQL literals", async () => {
    const policy = definePolicy({
      environment: "dev",
      roles: { quoted: { description: "it's '); DROP TABLE roles; --", grants: [] } },
      bindings: [{ subject: "mock:x", roles: ["quoted"] }],
      defaultRole: null,
    });
    const sql = seedSql(await compilePolicy(policy));
    expect(sql).toContain("'it''s ''); DROP TABLE roles; --'");
  });
});

describe("policy compiler: materialized grants", () => {
  it("gives a read grant only the read-only tools", async () => {
    const { roleTools } = await compilePolicy(demo);
    const reader = roleTools.filter((r) => r.role === "reader" && r.server === "memory").map((r) => r.tool);
    expect(reader).toEqual(["open_nodes", "read_graph", "search_nodes"]);
  });

  it("keeps admin-level tools (get-env) away from a write grant", async () => {
    const { roleTools } = await compilePolicy(demo);
    const writer = roleTools.filter((r) => r.role === "writer" && r.server === "everything").map((r) => r.tool);
    expect(writer).not.toContain("get-env");
    expect(writer).not.toContain("gzip-file-as-resource"); // denied in the grant
    expect(writer).toContain("trigger-sampling-request");
  });

  it("records a server-wide row only for grants without an allow-list", async () => {
    const { roleServers } = await compilePolicy(demo);
    expect(roleServers.filter((r) => r.role === "researcher")).toEqual([]);
    expect(roleServers.filter((r) => r.role === "admin").map((r) => `${r.server}:${r.level}`)).toEqual([
      "*:admin",
      "everything:admin",
      "memory:admin",
      "notes:admin",
      "whoami-upstream:admin",
    ]);
  });
});

describe("policy compiler: validation names what is at fault", () => {
  const base = { environment: "dev" as const, defaultRole: null };

  it("a role bound but not defined", async () => {
    const problems = await problemsOf({ ...base, roles: {}, bindings: [{ subject: "mock:ann", roles: ["ghost"] }] });
    expect(problems).toEqual(['binding "mock:ann": role "ghost" is not defined']);
  });

  it("a principal id of the wrong form", async () => {
    for (const subject of [
      "github:octocat",
      "Email:a@b.co",
      "email:A@B.CO",
      "mock:",
      "group:github:Acme",
      "alice",
      "*",
    ]) {
      const problems = await problemsOf({
        ...base,
        roles: { r: { description: "", grants: [] } },
        bindings: [{ subject, roles: ["r"] }],
      });
      expect(problems[0]).toContain(`binding "${subject}": not a valid principal or group`);
    }
  });

  it("a duplicate binding", async () => {
    const roles = { r: { description: "", grants: [] } };
    const twice = await problemsOf({
      ...base,
      roles,
      bindings: [
        { subject: "mock:a", roles: ["r"] },
        { subject: "mock:a", roles: ["r"] },
      ],
    });
    expect(twice).toContain('binding "mock:a": the subject is bound twice; list all its roles in one binding');
    const sameRole = await problemsOf({ ...base, roles, bindings: [{ subject: "mock:a", roles: ["r", "r"] }] });
    expect(sameRole).toEqual(['binding "mock:a": role "r" is listed twice']);
  });

  it("an allow and a deny of the same tool", async () => {
    const inOneGrant = await problemsOf({
      ...base,
      roles: {
        r: {
          description: "",
          grants: [{ server: "memory", level: "write", allow: ["read_graph"], deny: ["read_graph"] }],
        },
      },
      bindings: [],
    });
    expect(inOneGrant).toEqual(['role "r", grant 1: tool "memory/read_graph" is both allowed and denied']);
    const acrossGrants = await problemsOf({
      ...base,
      roles: {
        r: {
          description: "",
          grants: [
            { server: "memory", level: "read", allow: ["read_graph"] },
            { server: "memory", level: "read", deny: ["read_graph"] },
          ],
        },
      },
      bindings: [],
    });
    expect(acrossGrants).toEqual(['role "r": tool "memory/read_graph" is allowed by one grant and denied by another']);
  });

  it("an unknown server or tool (a policy written without the type checker)", async () => {
    const problems = await problemsOf({
      ...base,
      roles: {
        r: {
          description: "",
          grants: [
            { server: "nope", level: "read" },
            { server: "memory", level: "read", allow: ["read_grpah"] },
          ],
        },
      },
      bindings: [],
    } as unknown as Policy);
    expect(problems).toEqual([
      'role "r", grant 1: unknown server "nope" (servers: everything, memory, notes, whoami-upstream)',
      'role "r", grant 2: server "memory" has no tool "read_grpah"',
    ]);
  });

  it("an allowed tool above the grant's level", async () => {
    const problems = await problemsOf({
      ...base,
      roles: { r: { description: "", grants: [{ server: "memory", level: "read", allow: ["create_entities"] }] } },
      bindings: [],
    });
    expect(problems).toEqual([
      'role "r", grant 1: tool "memory/create_entities" needs write, above this grant\'s read',
    ]);
  });

  it("production: no default role and no mock identities", async () => {
    const problems = await problemsOf({
      environment: "prod",
      roles: { r: { description: "", grants: [] } },
      bindings: [{ subject: "mock:alice", roles: ["r"] }],
      defaultRole: "r",
    });
    expect(problems).toEqual([
      'binding "mock:alice": mock identities cannot appear in the production policy',
      "defaultRole: production has no default role; bind principals or groups instead",
    ]);
  });

  it("reports every problem at once", async () => {
    const problems = await problemsOf({
      ...base,
      roles: { Bad_Name: { description: "", grants: [], rateLimitPerMinute: 0 } },
      bindings: [{ subject: "nobody", roles: [] }],
    });
    expect(problems).toHaveLength(4);
  });
});

describe("policy per stack", () => {
  it("maps stacks to environments; previews use staging", () => {
    expect(policyFor("dev").environment).toBe("dev");
    expect(policyFor("prod").environment).toBe("prod");
    expect(policyFor("pr-123").environment).toBe("staging");
    expect(() => policyFor("production")).toThrow(/No policy environment for stack "production"/);
  });

  it("every shipped policy compiles", async () => {
    for (const policy of Object.values(POLICIES)) await expect(compilePolicy(policy)).resolves.toBeTruthy();
  });
});
