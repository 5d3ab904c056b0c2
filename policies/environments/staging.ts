import { definePolicy } from "../policy.types.ts";

/**
 * Staging, and every preview stack (`pr-<number>`). Edit the groups to match your organisation.
 */
export default definePolicy({
  environment: "staging",
  roles: {
    admin: {
      description: "Everything on every server and the admin endpoints.",
      grants: [{ server: "*", level: "admin" }],
    },
    engineer: {
      description: "Read and write tools everywhere, except tools that reach the network.",
      grants: [
        { server: "memory", level: "write" },
        { server: "everything", level: "write", deny: ["gzip-file-as-resource"] },
      ],
      rateLimitPerMinute: 600,
    },
    reader: {
      description: "Read-only tools on every server.",
      grants: [{ server: "*", level: "read" }],
      rateLimitPerMinute: 300,
    },
  },
  bindings: [
    { subject: "group:github:acme/platform", roles: ["admin"], note: "Platform team" },
    { subject: "group:github:acme/engineering", roles: ["engineer"] },
    { subject: "group:github:acme", roles: ["reader"], note: "Every member of the acme organisation" },
  ],
  defaultRole: null,
});
