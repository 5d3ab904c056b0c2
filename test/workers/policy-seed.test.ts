import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  authorize,
  type CompiledPolicy,
  compilePolicy,
  effectiveGrants,
  POLICIES,
  type Policy,
} from "../../policies/index.ts";
import { database } from "../../worker/db/database.ts";
import { loadPrincipalGrants } from "../../worker/db/grants.repository.ts";

async function seed(compiled: CompiledPolicy): Promise<void> {
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
}

async function dumpPolicyTables(): Promise<string> {
  const tables = ["roles", "role_tools", "role_servers", "bindings", "tool_levels", "policy_meta"];
  const out: Record<string, unknown> = {};
  for (const t of tables) out[t] = (await env.DB.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()).results;
  return JSON.stringify(out);
}

/** The subjects the mock login gives each demo person (see policies/environments/dev.ts). */
const DEMO: Record<string, string[]> = {
  alice: ["mock:alice"],
  bob: ["mock:bob"],
  carol: ["mock:carol", "email:carol@example.com"],
  dave: ["mock:dave"],
  erin: ["mock:erin", "group:mock:staff"],
  frank: ["mock:frank", "group:mock:oncall"],
};

async function grantsOf(person: string) {
  const loaded = await loadPrincipalGrants(database(env.DB), DEMO[person] ?? []);
  return { ...loaded, grants: effectiveGrants(loaded.rows) };
}

describe("D1 migrations and policy seed (real D1 in workerd)", () => {
  it("migrations create every table the product uses", async () => {
    const { results } = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' AND name <> 'd1_migrations' ORDER BY name",
    ).all<{ name: string }>();
    expect(results.map((r) => r.name)).toEqual([
      "audit_anchors",
      "audit_log",
      "bindings",
      "blocks",
      "connections",
      "mcp_session_backends",
      "mcp_sessions",
      "policy_meta",
      "revocations",
      "role_servers",
      "role_tools",
      "roles",
      "tool_levels",
    ]);
  });

  it("the seed applied twice gives the same rows", async () => {
    const compiled = await compilePolicy(POLICIES.dev);
    await seed(compiled);
    const once = await dumpPolicyTables();
    await seed(compiled);
    expect(await dumpPolicyTables()).toBe(once);
    const hash = await env.DB.prepare("SELECT value FROM policy_meta WHERE key = 'hash'").first<{ value: string }>();
    expect(hash?.value).toBe(compiled.hash);
  });

  it("a policy change followed by a re-seed leaves no stale grant behind", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    expect(
      authorize((await grantsOf("bob")).grants, { kind: "tool", server: "memory", tool: "delete_entities" }).allow,
    ).toBe(true);

    const narrowed: Policy = {
      ...POLICIES.dev,
      bindings: POLICIES.dev.bindings.filter((b) => b.subject !== "mock:bob"),
    };
    await seed(await compilePolicy(narrowed));
    const bob = await grantsOf("bob");
    expect(bob.rows).toEqual([]);
    expect(authorize(bob.grants, { kind: "tool", server: "memory", tool: "delete_entities" })).toEqual({
      allow: false,
      reason: "tool_not_granted",
    });
  });
});

describe("effective grants for each demo principal (one query)", () => {
  const tool = (server: string, name: string) => ({ kind: "tool" as const, server, tool: name });
  const allowed = (g: Awaited<ReturnType<typeof grantsOf>>, server: string, name: string) =>
    authorize(g.grants, tool(server, name)).allow;

  it("alice (admin): every tool, raw stdio, admin endpoints", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const alice = await grantsOf("alice");
    expect(allowed(alice, "everything", "get-env")).toBe(true);
    expect(allowed(alice, "memory", "delete_entities")).toBe(true);
    expect(authorize(alice.grants, { kind: "execute", server: "everything" }).allow).toBe(true);
    expect(authorize(alice.grants, { kind: "admin" }).allow).toBe(true);
    expect(alice.grants.rateLimitPerMinute).toBeNull();
  });

  it("bob (writer): writes, but not get-env, not the SSRF tool, no raw stdio, no admin", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const bob = await grantsOf("bob");
    expect(allowed(bob, "memory", "create_entities")).toBe(true);
    expect(allowed(bob, "everything", "trigger-sampling-request")).toBe(true);
    expect(allowed(bob, "everything", "get-env")).toBe(false);
    expect(allowed(bob, "everything", "gzip-file-as-resource")).toBe(false);
    expect(authorize(bob.grants, { kind: "execute", server: "memory" }).allow).toBe(false);
    expect(authorize(bob.grants, { kind: "admin" }).allow).toBe(false);
    expect(bob.grants.rateLimitPerMinute).toBe(600);
  });

  it("carol (reader, bound by email): read-only tools only", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const carol = await grantsOf("carol");
    expect(allowed(carol, "memory", "read_graph")).toBe(true);
    expect(allowed(carol, "everything", "echo")).toBe(true);
    expect(allowed(carol, "memory", "create_entities")).toBe(false);
    expect(allowed(carol, "everything", "get-env")).toBe(false);
    // Without the email subject (an unverified address), carol has nothing.
    const bare = effectiveGrants((await loadPrincipalGrants(database(env.DB), ["mock:carol"])).rows);
    expect(authorize(bare, tool("memory", "read_graph")).allow).toBe(false);
  });

  it("dave (no role): nothing at all", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const dave = await grantsOf("dave");
    expect(dave.rows).toEqual([]);
    expect(allowed(dave, "everything", "echo")).toBe(false);
    expect(dave.policyHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("erin (group grant): exactly the researcher tools, and no server-wide access", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const erin = await grantsOf("erin");
    expect([...erin.grants.tools].sort()).toEqual([
      "everything/echo",
      "everything/get-sum",
      "everything/simulate-research-query",
    ]);
    expect(authorize(erin.grants, { kind: "server-content", server: "everything" }).allow).toBe(false);
    // A tool the server might add later is not covered by an allow-list.
    expect(
      authorize(erin.grants, {
        kind: "tool",
        server: "everything",
        tool: "new-tool",
        annotations: { readOnlyHint: true },
      }).allow,
    ).toBe(false);
  });

  it("frank (on-call group): raw stdio on memory only", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    const frank = await grantsOf("frank");
    expect(authorize(frank.grants, { kind: "execute", server: "memory" }).allow).toBe(true);
    expect(authorize(frank.grants, { kind: "execute", server: "everything" }).allow).toBe(false);
  });

  it("a revocation cut-off comes back in the same query", async () => {
    await seed(await compilePolicy(POLICIES.dev));
    await env.DB.prepare(
      "INSERT INTO revocations (subject, revoked_before_ms, reason, revoked_by) VALUES ('mock:bob', 1234, 'test', 'mock:alice')",
    ).run();
    expect((await grantsOf("bob")).standing.revokedBeforeMs).toBe(1234);
    expect((await grantsOf("alice")).standing.revokedBeforeMs).toBeNull();
  });

  it("no policy seeded: no rows, no hash (the gateway then denies everything)", async () => {
    const alice = await grantsOf("alice");
    expect(alice.rows).toEqual([]);
    expect(alice.policyHash).toBeNull();
  });
});
