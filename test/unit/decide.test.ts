import { describe, expect, it } from "vitest";
import {
  authorize,
  type EffectiveGrants,
  effectiveGrants,
  type GrantRow,
  withinRateLimit,
} from "../../policies/decide.ts";

/**
 * policies/decide.ts: the one authorization decision (STYLE.md habit 5). Every allow and every deny
 * reason it can give, each from the smallest grants that produce it, on the real catalog and snapshot.
 */
const row = (r: Partial<GrantRow> & Pick<GrantRow, "kind" | "server">): GrantRow => ({
  tool: null,
  level: "read",
  rate_limit_per_minute: null,
  ...r,
});
const grants = (...rows: GrantRow[]): EffectiveGrants => effectiveGrants(rows);
const NONE = grants();

describe("effectiveGrants: folding grant rows", () => {
  it("collects server/tool pairs and the highest server-wide level per server", () => {
    const g = grants(
      row({ kind: "tool", server: "memory", tool: "read_graph" }),
      row({ kind: "server", server: "everything", level: "read" }),
      row({ kind: "server", server: "everything", level: "execute" }),
      row({ kind: "server", server: "everything", level: "write" }),
    );
    expect([...g.tools]).toEqual(["memory/read_graph"]);
    expect(g.servers.get("everything")).toBe("execute");
  });

  it("SECURITY: fails closed on a row whose level it does not know (a corrupted or newer database)", () => {
    const g = grants(row({ kind: "server", server: "everything", level: "superuser" }));
    expect(g.servers.size).toBe(0);
    expect(authorize(g, { kind: "server-content", server: "everything" })).toEqual({
      allow: false,
      reason: "server_not_granted",
    });
  });

  it("rate limit: the highest among the roles; none when any role has none", () => {
    expect(grants(row({ kind: "server", server: "memory", rate_limit_per_minute: 5 })).rateLimitPerMinute).toBe(5);
    expect(
      grants(
        row({ kind: "server", server: "memory", rate_limit_per_minute: 5 }),
        row({ kind: "server", server: "notes", rate_limit_per_minute: 30 }),
      ).rateLimitPerMinute,
    ).toBe(30);
    expect(
      grants(
        row({ kind: "server", server: "memory", rate_limit_per_minute: 5 }),
        row({ kind: "server", server: "notes", rate_limit_per_minute: null }),
      ).rateLimitPerMinute,
    ).toBeNull();
    expect(NONE.rateLimitPerMinute).toBeNull();
  });
});

describe("authorize: tools in the catalog snapshot", () => {
  it("granted: a tool granted by name is allowed, at the snapshot's level", () => {
    const g = grants(row({ kind: "tool", server: "everything", tool: "echo" }));
    expect(authorize(g, { kind: "tool", server: "everything", tool: "echo" })).toEqual({
      allow: true,
      reason: "granted",
      level: "read",
    });
  });

  it("tool_not_granted: a snapshot tool not granted by name, even with a server-wide grant", () => {
    // A role's allow-list compiles to tool rows; the server row alone never adds snapshot tools.
    const g = grants(row({ kind: "server", server: "everything", level: "admin" }));
    expect(authorize(g, { kind: "tool", server: "everything", tool: "echo" })).toEqual({
      allow: false,
      reason: "tool_not_granted",
    });
    expect(authorize(NONE, { kind: "tool", server: "everything", tool: "get-env" })).toEqual({
      allow: false,
      reason: "tool_not_granted",
    });
  });

  it("SECURITY: the annotations a server reports now never change a snapshot tool's decision", () => {
    const g = grants(row({ kind: "server", server: "everything", level: "read" }));
    const decision = authorize(g, {
      kind: "tool",
      server: "everything",
      tool: "get-env",
      annotations: { readOnlyHint: true },
    });
    expect(decision).toEqual({ allow: false, reason: "tool_not_granted" });
  });

  it("a grant of a tool on one server does not cover the same name on another", () => {
    const g = grants(row({ kind: "tool", server: "memory", tool: "echo" }));
    expect(authorize(g, { kind: "tool", server: "everything", tool: "echo" }).allow).toBe(false);
  });
});

describe("authorize: tools the server reports that the snapshot does not have", () => {
  const unlisted = "a-tool-added-since-the-snapshot";

  it("granted when a server-wide grant covers the level its annotations give (readOnlyHint → read)", () => {
    const g = grants(row({ kind: "server", server: "everything", level: "read" }));
    expect(
      authorize(g, { kind: "tool", server: "everything", tool: unlisted, annotations: { readOnlyHint: true } }),
    ).toEqual({ allow: true, reason: "granted", level: "read" });
  });

  it("unlisted_tool_not_covered: without annotations it needs write, which read does not cover", () => {
    const g = grants(row({ kind: "server", server: "everything", level: "read" }));
    expect(authorize(g, { kind: "tool", server: "everything", tool: unlisted })).toEqual({
      allow: false,
      reason: "unlisted_tool_not_covered",
    });
    const w = grants(row({ kind: "server", server: "everything", level: "write" }));
    expect(authorize(w, { kind: "tool", server: "everything", tool: unlisted })).toMatchObject({
      allow: true,
      level: "write",
    });
  });

  it("unlisted_tool_not_covered: SECURITY: an allow-list never silently grows (tool rows do not cover new tools)", () => {
    const g = grants(row({ kind: "tool", server: "everything", tool: "echo", level: "admin" }));
    expect(
      authorize(g, { kind: "tool", server: "everything", tool: unlisted, annotations: { readOnlyHint: true } }),
    ).toEqual({ allow: false, reason: "unlisted_tool_not_covered" });
  });
});

describe("authorize: servers, content, execute and admin", () => {
  it("unknown_server: a server not in the catalog, whatever the grants", () => {
    const g = grants(row({ kind: "server", server: "*", level: "admin" }), row({ kind: "server", server: "nope" }));
    for (const action of [
      { kind: "tool", server: "nope", tool: "x" },
      { kind: "server-content", server: "nope" },
      { kind: "execute", server: "nope" },
      { kind: "tool", server: "*", tool: "x" },
    ] as const) {
      expect(authorize(g, action), JSON.stringify(action)).toEqual({ allow: false, reason: "unknown_server" });
    }
  });

  it("server-content: any server-wide grant (read or more) allows, at read", () => {
    expect(
      authorize(grants(row({ kind: "server", server: "memory", level: "read" })), {
        kind: "server-content",
        server: "memory",
      }),
    ).toEqual({ allow: true, reason: "granted", level: "read" });
  });

  it("server_not_granted: tool grants alone do not open a server's resources and prompts", () => {
    const g = grants(row({ kind: "tool", server: "everything", tool: "echo" }));
    expect(authorize(g, { kind: "server-content", server: "everything" })).toEqual({
      allow: false,
      reason: "server_not_granted",
    });
  });

  it("execute: granted at execute or admin on that server", () => {
    for (const level of ["execute", "admin"]) {
      const g = grants(row({ kind: "server", server: "notes", level }));
      expect(authorize(g, { kind: "execute", server: "notes" })).toEqual({
        allow: true,
        reason: "granted",
        level: "execute",
      });
    }
  });

  it("needs_execute: write is not enough; nor is execute on another server", () => {
    expect(
      authorize(grants(row({ kind: "server", server: "notes", level: "write" })), { kind: "execute", server: "notes" }),
    ).toEqual({ allow: false, reason: "needs_execute" });
    expect(
      authorize(grants(row({ kind: "server", server: "memory", level: "execute" })), {
        kind: "execute",
        server: "notes",
      }),
    ).toEqual({ allow: false, reason: "needs_execute" });
  });

  it("admin: granted by admin on `*` only", () => {
    expect(authorize(grants(row({ kind: "server", server: "*", level: "admin" })), { kind: "admin" })).toEqual({
      allow: true,
      reason: "granted",
      level: "admin",
    });
  });

  it("needs_admin: admin on one server, or execute on `*`, is not admin", () => {
    expect(authorize(grants(row({ kind: "server", server: "notes", level: "admin" })), { kind: "admin" })).toEqual({
      allow: false,
      reason: "needs_admin",
    });
    expect(authorize(grants(row({ kind: "server", server: "*", level: "execute" })), { kind: "admin" })).toEqual({
      allow: false,
      reason: "needs_admin",
    });
    expect(authorize(NONE, { kind: "admin" })).toEqual({ allow: false, reason: "needs_admin" });
  });

  it("`*` is read by the admin decision only (the compiler expands a `*` grant into one row per server)", () => {
    const g = grants(row({ kind: "server", server: "*", level: "admin" }));
    expect(authorize(g, { kind: "server-content", server: "memory" }).allow).toBe(false);
    expect(authorize(g, { kind: "execute", server: "memory" }).allow).toBe(false);
  });
});

describe("withinRateLimit: the brake", () => {
  it("no limit: always within", () => {
    expect(withinRateLimit(NONE, 1_000_000)).toBe(true);
  });

  it("a limit of n: the n-th call in the window is the last allowed", () => {
    const g = grants(row({ kind: "server", server: "memory", rate_limit_per_minute: 3 }));
    expect(withinRateLimit(g, 2)).toBe(true);
    expect(withinRateLimit(g, 3)).toBe(false);
  });
});
