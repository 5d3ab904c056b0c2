-- The audit log: one row per tool call, denial and admin action, written before the response completes.
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,                -- Unix epoch milliseconds
  principal TEXT NOT NULL,               -- e.g. github:583231; 'anonymous' never occurs (no token, no row)
  client_id TEXT,                        -- the OAuth client the token was issued to
  session_id TEXT,                       -- MCP session id, when there is one
  action TEXT NOT NULL,                  -- tools/call | execute_stdio | resources/read | prompts/get | admin:<name>
  server TEXT,                           -- catalog server id, when the target names one
  tool TEXT,                             -- tool, resource or prompt name as the client sent it (truncated)
  decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
  reason TEXT NOT NULL,                  -- granted | tool_not_granted | needs_execute | rate_limited | …
  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('ok', 'tool_error', 'jsonrpc_error', 'transport_error')),
  error_code INTEGER,                    -- JSON-RPC error code, when outcome = 'jsonrpc_error'
  duration_ms INTEGER,
  args_digest TEXT,                      -- HMAC-SHA-256 of the canonical arguments; never the arguments
  policy_hash TEXT                       -- the policy the decision was made under
) STRICT;

CREATE INDEX audit_log_principal_at ON audit_log (principal, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- The kill switch. Tokens and sessions of `subject` issued before `revoked_before_ms` stop working.
-- Only ever reduces access; every row is also an audit_log row (action 'admin:revoke').
CREATE TABLE revocations (
  subject TEXT PRIMARY KEY NOT NULL,
  revoked_before_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  revoked_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;
