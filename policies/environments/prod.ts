import { definePolicy } from "../policy.types.ts";

/**
 * Production. No default role: a principal that no binding names gets no tools at all.
 * Edit the Access groups to match your organisation.
 */
export default definePolicy({
  environment: "prod",
  roles: {
    admin: {
      description: "Everything on every server and the admin endpoints.",
      grants: [{ server: "*", level: "admin" }],
    },
    engineer: {
      description: "Read and write tools on the knowledge graph; read-only reference tools.",
      grants: [
        { server: "memory", level: "write" },
        { server: "everything", level: "read" },
      ],
      rateLimitPerMinute: 300,
    },
    reader: {
      description: "Read-only tools on the knowledge graph.",
      grants: [{ server: "memory", level: "read" }],
      rateLimitPerMinute: 120,
    },
  },
  bindings: [
    { subject: "group:access:mcp-admins", roles: ["admin"] },
    { subject: "group:access:engineering", roles: ["engineer"] },
    { subject: "group:access:support", roles: ["reader"] },
  ],
  defaultRole: null,
});
