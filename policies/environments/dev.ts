import { definePolicy } from "../policy.types.ts";

/**
 * The local development policy, used by `npm start` and the tests. The mock login offers these people:
 * alice (admin), bob (writer), carol (reader, bound by her email), dave (no role: sees no tools),
 * erin (gets research tools through the `staff` group) and frank (on call: raw stdio on memory).
 */
export default definePolicy({
  environment: "dev",
  roles: {
    admin: {
      description: "Everything on every server, raw stdio access, and the admin endpoints.",
      grants: [{ server: "*", level: "admin" }],
    },
    writer: {
      description: "Read and change the knowledge graph and their own notes; use the reference server's tools.",
      grants: [
        { server: "memory", level: "write" },
        // SECURITY: fetches arbitrary URLs from inside the container (server-side request forgery).
        { server: "everything", level: "write", deny: ["gzip-file-as-resource"] },
        { server: "notes", level: "write" },
        // Acts with each person's own upstream account (their connection), never anyone else's.
        { server: "whoami-upstream", level: "read" },
      ],
      rateLimitPerMinute: 600,
    },
    reader: {
      description: "Read-only tools on every server.",
      grants: [
        { server: "memory", level: "read" },
        { server: "everything", level: "read" },
        { server: "notes", level: "read" },
        { server: "whoami-upstream", level: "read" },
      ],
      rateLimitPerMinute: 300,
    },
    researcher: {
      description: "A curated set of reference-server tools.",
      grants: [{ server: "everything", level: "write", allow: ["echo", "get-sum", "simulate-research-query"] }],
    },
    oncall: {
      description: "Raw JSON-RPC to the memory server's process (execute_stdio), for diagnostics.",
      grants: [{ server: "memory", level: "execute" }],
    },
  },
  bindings: [
    { subject: "mock:alice", roles: ["admin"], note: "Alice, platform admin" },
    { subject: "mock:bob", roles: ["writer"], note: "Bob, engineer" },
    { subject: "email:carol@example.com", roles: ["reader"], note: "Carol, bound by verified email" },
    { subject: "group:mock:staff", roles: ["researcher"], note: "Everyone in the staff group (erin)" },
    { subject: "group:mock:oncall", roles: ["oncall"], note: "The on-call rotation (frank)" },
  ],
  defaultRole: null,
});
