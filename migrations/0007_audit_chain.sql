-- Issue 18: audit rows are written first to a ledger Durable Object (worker/audit/ledger.ts), durably and
-- before the answer, and shipped here afterwards in batches. Each row now carries its place in a hash
-- chain (one chain, a "stream", per ledger) and a three-level outcome.

-- The three-level outcome. `decision` and `reason` (allow/deny and why) exist; `outcome` stays (the
-- console filters on it and its index, 0005) and these two say what it summed up:
--   delivery: did the request reach the server, and if not why. NULL: the row is not a request to a server
--             (admin actions, sign-ins, connections).
--   result:   what the server's answer was: ok, the tool's own isError, or a JSON-RPC error. NULL: no answer.
ALTER TABLE audit_log ADD COLUMN delivery TEXT
  CHECK (delivery IS NULL OR delivery IN ('not_sent', 'delivered', 'unreachable', 'timeout', 'connection_closed'));
ALTER TABLE audit_log ADD COLUMN result TEXT
  CHECK (result IS NULL OR result IN ('ok', 'tool_error', 'protocol_error'));

-- Rows written before this migration keep their meaning: derived from `outcome` (and, for a transport
-- error, the JSON-RPC code the gateway kept: -32001 request timeout, -32000 connection closed).
UPDATE audit_log SET
  delivery = CASE
    WHEN action NOT IN ('tools/call', 'execute_stdio', 'resources/read', 'prompts/get', 'resources/subscribe',
                        'resources/unsubscribe', 'completion/complete') THEN NULL
    WHEN decision = 'deny' THEN 'not_sent'
    WHEN outcome IN ('ok', 'tool_error', 'jsonrpc_error') THEN 'delivered'
    WHEN outcome = 'transport_error' AND error_code = -32001 THEN 'timeout'
    WHEN outcome = 'transport_error' AND error_code = -32000 THEN 'connection_closed'
    WHEN outcome = 'transport_error' THEN 'unreachable'
    ELSE NULL
  END,
  result = CASE outcome
    WHEN 'ok' THEN 'ok'
    WHEN 'tool_error' THEN 'tool_error'
    WHEN 'jsonrpc_error' THEN 'protocol_error'
    ELSE NULL
  END;

-- The chain. `stream` is minted by its ledger (random, once), `seq` counts 1, 2, 3… in it, and
-- `hash` = SHA-256 over the canonical JSON of {v, stream, prev: prev_hash, row: the row's columns}
-- (worker/audit/chain.ts); the first row's prev_hash is 64 zeros. (stream, seq) is also the row's id,
-- minted at write time: a shipment that is repeated (a crash after D1 committed) inserts nothing twice.
-- Rows from before this migration have no chain (all four NULL; NULLs never collide in the index).
ALTER TABLE audit_log ADD COLUMN stream TEXT;
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (stream, seq);

-- Every shipment anchors its stream's head (the last row it carried) in the same D1 batch as its rows,
-- so a row past the newest anchor, or an anchor past the last row, is tampering (npm run audit:verify).
CREATE TABLE audit_anchors (
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  shipped_at_ms INTEGER NOT NULL,
  PRIMARY KEY (stream, seq)
) STRICT, WITHOUT ROWID;
