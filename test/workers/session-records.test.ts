import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { database } from "../../worker/db/database.ts";
import {
  compiledGrantsQuery,
  D1_MAX_BOUND_PARAMETERS,
  loadPrincipalGrants,
  MAX_SUBJECTS,
} from "../../worker/db/grants.repository.ts";
import { forgetBackend, forgetSession, recordBackend, recordSession } from "../../worker/db/sessions.repository.ts";

async function seedDev(): Promise<void> {
  const compiled = await compilePolicy(POLICIES.dev);
  await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
}

const groups = (n: number) => Array.from({ length: n }, (_, i) => `group:mock:g${String(i).padStart(3, "0")}`);

describe("the grants query within D1's limits", () => {
  it("D1 binds at most 100 parameters: the query's parameter count does not grow with the subjects", () => {
    const db = database(env.DB);
    const values = (subjects: readonly string[]) => ({
      subjects: JSON.stringify(subjects),
      principal: "mock:x",
      since: 0,
      session: "",
    });
    const few = compiledGrantsQuery(db, values(["mock:x", "*"]));
    const most = compiledGrantsQuery(db, values(["mock:x", ...groups(MAX_SUBJECTS - 2), "*"]));
    expect(most.parameters.length).toBe(few.parameters.length);
    expect(most.parameters.length).toBeLessThanOrEqual(D1_MAX_BOUND_PARAMETERS);
  });

  it("a principal with the most subjects a login keeps gets its group's grants from real D1", async () => {
    await seedDev();
    // group:mock:staff sorts after the generated groups: the grant must come from the last subject too.
    const subjects = ["mock:erin", "email:erin@example.com", ...groups(MAX_SUBJECTS - 4), "group:mock:staff"];
    const loaded = await loadPrincipalGrants(database(env.DB), subjects);
    expect(loaded.rows.some((r) => r.kind === "tool" && r.server === "everything" && r.tool === "echo")).toBe(true);
    expect(loaded.policyHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("more subjects than the query takes is an error, never a partial answer", async () => {
    await expect(loadPrincipalGrants(database(env.DB), ["mock:x", ...groups(MAX_SUBJECTS)])).rejects.toThrow(
      RangeError,
    );
  });
});

describe("session records (what the Worker reads for direct tool calls)", () => {
  const alice = { principal: "mock:alice", sessionId: "d-session-1" };

  it("come back with the grants, in the same query, with every bridge session", async () => {
    await seedDev();
    const db = database(env.DB);
    await recordSession(db, alice, 1_000, true, ["mock:alice"]);
    await recordBackend(db, alice, "everything", "bridge-a", "2025-11-25");
    await recordBackend(db, alice, "memory", "bridge-b", "2025-06-18");
    const loaded = await loadPrincipalGrants(db, ["mock:alice"], { sessionId: alice.sessionId });
    expect(loaded.rows.length).toBeGreaterThan(0);
    expect(loaded.session?.createdMs).toBe(1_000);
    expect(loaded.session?.directCalls).toBe(true);
    expect(Object.fromEntries(loaded.session?.backends ?? [])).toEqual({
      everything: { bridgeSessionId: "bridge-a", protocolVersion: "2025-11-25" },
      memory: { bridgeSessionId: "bridge-b", protocolVersion: "2025-06-18" },
    });
    // A new bridge session for a server replaces the old one.
    await recordBackend(db, alice, "memory", "bridge-c", "2025-11-25");
    const again = await loadPrincipalGrants(db, ["mock:alice"], { sessionId: alice.sessionId });
    expect(again.session?.backends.get("memory")?.bridgeSessionId).toBe("bridge-c");
  });

  it("a session record is bound to its principal: another principal with the same session id reads nothing", async () => {
    const db = database(env.DB);
    await recordSession(db, alice, 1_000, true, ["mock:alice"]);
    await recordBackend(db, alice, "everything", "bridge-a", "2025-11-25");
    const bob = await loadPrincipalGrants(db, ["mock:bob"], { sessionId: alice.sessionId });
    expect(bob.session).toBeNull();
  });

  it("a session without bridge sessions, and one never recorded", async () => {
    const db = database(env.DB);
    await recordSession(db, alice, 5, false, ["mock:alice"]);
    const bare = await loadPrincipalGrants(db, ["mock:alice"], { sessionId: alice.sessionId });
    expect(bare.session).toEqual({ createdMs: 5, directCalls: false, backends: new Map() });
    expect((await loadPrincipalGrants(db, ["mock:alice"], { sessionId: "never" })).session).toBeNull();
    expect((await loadPrincipalGrants(db, ["mock:alice"])).session).toBeNull();
  });

  it("forgetting a bridge session removes only that one; forgetting the session removes all", async () => {
    const db = database(env.DB);
    await recordSession(db, alice, 1, true, ["mock:alice"]);
    await recordBackend(db, alice, "everything", "bridge-a", "2025-11-25");
    await recordBackend(db, alice, "memory", "bridge-b", "2025-11-25");
    // A stale id (already replaced) removes nothing.
    await forgetBackend(db, alice, "memory", "bridge-old");
    await forgetBackend(db, alice, "everything", "bridge-a");
    const left = await loadPrincipalGrants(db, ["mock:alice"], { sessionId: alice.sessionId });
    expect([...(left.session?.backends.keys() ?? [])]).toEqual(["memory"]);
    await forgetSession(db, alice);
    expect((await loadPrincipalGrants(db, ["mock:alice"], { sessionId: alice.sessionId })).session).toBeNull();
    const { results } = await env.DB.prepare("SELECT count(*) AS n FROM mcp_session_backends").all<{ n: number }>();
    expect(results[0]?.n).toBe(0);
  });
});
