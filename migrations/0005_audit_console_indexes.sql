-- The console's audit view filters by person, server, tool, decision and outcome, each with a time range,
-- newest first, and pages by keyset on (at_ms, id). Each filter gets an index whose order is that page
-- order, so a page is a range scan of LIMIT rows however large the log grows (bench/audit-paging.ts
-- measures it at a million rows). `id` is the rowid, the implicit last column of every index.
-- Existing: audit_log_principal_at (principal, at_ms) for the person filter, audit_log_at (at_ms) for the
-- unfiltered view and time ranges.
CREATE INDEX audit_log_server_at ON audit_log (server, at_ms);
CREATE INDEX audit_log_tool_at ON audit_log (tool, at_ms);
CREATE INDEX audit_log_decision_at ON audit_log (decision, at_ms);
CREATE INDEX audit_log_outcome_at ON audit_log (outcome, at_ms);
