-- Blocks: the kill switch that holds. A blocked subject (a principal, `email:<address>` or
-- `group:<...>`) cannot sign in, cannot refresh, and is refused (401) on every protected path until an
-- admin lifts the block. Unlike `revocations` (which ends sign-ins made before a moment, after which the
-- person may sign in again), a block stays until it is deleted. Every block and lift is an audit row.
CREATE TABLE blocks (
  subject TEXT PRIMARY KEY NOT NULL,      -- github:583231 | email:ada@example.com | group:github:acme/ops
  reason TEXT NOT NULL,                   -- the admin's words, e.g. 'laptop stolen'
  blocked_by TEXT NOT NULL,               -- the admin's principal
  blocked_at_ms INTEGER NOT NULL          -- Unix epoch milliseconds
) STRICT, WITHOUT ROWID;

-- Audit rows about a subject rather than a tool (admin:block, admin:unblock, admin:revoke, refused sign-ins,
-- refresh token reuse) name it here, and keep the admin's free text in `note`; `reason` stays a fixed code.
ALTER TABLE audit_log ADD COLUMN subject TEXT;
ALTER TABLE audit_log ADD COLUMN note TEXT;

-- A session's binding subjects (JSON array: principal, verified email, groups), so a block of an email or a
-- group can find and close the sessions it covers. SSE sessions are recorded too (direct_calls = 0).
ALTER TABLE mcp_sessions ADD COLUMN subjects TEXT NOT NULL DEFAULT '[]';

-- "Has anything ever named this subject?" (a block of an unknown subject answers with a warning) and the
-- admin history of one subject: both look rows up by subject.
CREATE INDEX audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL;
