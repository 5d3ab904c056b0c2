import { describe, expect, it } from "vitest";
import { definePolicy } from "../../policies/index.ts";

// Type tests: `npm run typecheck` (part of `npm test`) fails if any @ts-expect-error below stops
// being an error, i.e. if a typo in a role would compile.
describe("policy types: a typo in a role is a compile error", () => {
  it("rejects unknown tools, servers, levels and roles at compile time", () => {
    const policies = [
      definePolicy({
        environment: "dev",
        // @ts-expect-error "read_grpah" is not a tool of memory
        roles: { r: { description: "", grants: [{ server: "memory", level: "read", allow: ["read_grpah"] }] } },
        bindings: [],
        defaultRole: null,
      }),
      definePolicy({
        environment: "dev",
        // @ts-expect-error a tool of another server
        roles: { r: { description: "", grants: [{ server: "memory", level: "read", allow: ["echo"] }] } },
        bindings: [],
        defaultRole: null,
      }),
      definePolicy({
        environment: "dev",
        // @ts-expect-error "memroy" is not a server
        roles: { r: { description: "", grants: [{ server: "memroy", level: "read" }] } },
        bindings: [],
        defaultRole: null,
      }),
      definePolicy({
        environment: "dev",
        // @ts-expect-error "root" is not a level
        roles: { r: { description: "", grants: [{ server: "memory", level: "root" }] } },
        bindings: [],
        defaultRole: null,
      }),
      definePolicy({
        environment: "dev",
        roles: { reader: { description: "", grants: [] } },
        // @ts-expect-error "raeder" is not a defined role
        bindings: [{ subject: "mock:a", roles: ["raeder"] }],
        defaultRole: null,
      }),
      definePolicy({
        environment: "dev",
        // @ts-expect-error a "*" grant cannot list tools
        roles: { r: { description: "", grants: [{ server: "*", level: "read", allow: ["echo"] }] } },
        bindings: [],
        defaultRole: null,
      }),
    ];
    expect(policies).toHaveLength(6);
  });
});
