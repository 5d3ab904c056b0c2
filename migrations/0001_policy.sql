-- Policy tables. They hold the compiled policy (policies/compile.ts) and nothing else; every
-- deployment replaces their rows in one batch. See STORAGE.md.

CREATE TABLE roles (
  name TEXT PRIMARY KEY NOT NULL,
  description TEXT NOT NULL,
  rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0)
) STRICT;

-- Every tool a role may call, materialized at compile time from the role's grants and the catalog snapshot.
CREATE TABLE role_tools (
  role TEXT NOT NULL,
  server TEXT NOT NULL,
  tool TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('read', 'write', 'execute', 'admin')),
  PRIMARY KEY (role, server, tool)
) STRICT, WITHOUT ROWID;

-- Server-wide grants (a grant with no allow-list). They cover tools missing from the snapshot,
-- resources and prompts, and execute_stdio. server = '*' marks a wildcard grant (admin endpoints).
CREATE TABLE role_servers (
  role TEXT NOT NULL,
  server TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('read', 'write', 'execute', 'admin')),
  PRIMARY KEY (role, server)
) STRICT, WITHOUT ROWID;

-- subject: a principal (github:123, email:a@b.c, access:…, oidc:host:sub, mock:name), a group
-- (group:github:org/team, …) or '*' for the environment's default role.
CREATE TABLE bindings (
  subject TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (subject, role)
) STRICT, WITHOUT ROWID;

-- The level each snapshot tool needs. Reference data for reviews and audit queries.
CREATE TABLE tool_levels (
  server TEXT NOT NULL,
  tool TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('read', 'write', 'execute', 'admin')),
  read_only INTEGER NOT NULL CHECK (read_only IN (0, 1)),
  PRIMARY KEY (server, tool)
) STRICT, WITHOUT ROWID;

-- key = 'environment' | 'hash': which compiled policy the database holds.
CREATE TABLE policy_meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
