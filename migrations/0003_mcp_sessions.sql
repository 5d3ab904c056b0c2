-- Streamable HTTP sessions, as the Worker needs them to send a tool call straight to the server's
-- container (one Durable Object hop) instead of through the session's Durable Object (two).
-- Written by the session object (McpSession): at initialize, when it opens a bridge session, and when the
-- session ends (rows deleted). Read by the grants query (worker/db/grants.repository.ts), no extra query.
CREATE TABLE mcp_sessions (
  principal TEXT NOT NULL,
  session_id TEXT NOT NULL,               -- the MCP session id the gateway issued
  created_ms INTEGER NOT NULL,            -- the Worker ignores rows older than the session's 24 h life
  direct_calls INTEGER NOT NULL CHECK (direct_calls IN (0, 1)), -- 1: the client declared no sampling, elicitation or roots
  PRIMARY KEY (principal, session_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX mcp_sessions_created ON mcp_sessions (created_ms);

-- The bridge session each gateway session holds per server (the bridge issues its ids).
CREATE TABLE mcp_session_backends (
  principal TEXT NOT NULL,
  session_id TEXT NOT NULL,
  server TEXT NOT NULL,                   -- catalog server id
  bridge_session_id TEXT NOT NULL,        -- the bridge's Mcp-Session-Id for (this session, server)
  protocol_version TEXT NOT NULL,         -- what the gateway and the bridge negotiated
  PRIMARY KEY (principal, session_id, server)
) STRICT, WITHOUT ROWID;
