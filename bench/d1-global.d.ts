// The Node side has no Workers types, and the worker modules the audit bench imports (worker/db/audit-log.repository.ts,
// worker/db/database.ts) name D1's global type. The bench hands them wrangler's local D1 binding, which is that
// type at run time; for the Node type check it is the type kysely-d1 takes.
declare global {
  type D1Database = ConstructorParameters<typeof import("kysely-d1").D1Dialect>[0]["database"];
}

export {};
