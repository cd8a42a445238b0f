-- credsync schema version 10: target_last keeps a last outcome in columns (status, verified,
-- finished_at as the RFC 3339 text the state JSON held, error as JSON or NULL) instead of the
-- target's whole state, so GET /v1/sources and the status page read 100,000 of them without
-- decoding JSON (issue 14). state is no longer written: the backfill empties it.
ALTER TABLE target_last ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE target_last ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE target_last ADD COLUMN finished_at TEXT;
ALTER TABLE target_last ADD COLUMN error TEXT;
UPDATE target_last SET
    status = COALESCE(json_extract(state, '$.status'), ''),
    verified = CASE WHEN json_extract(state, '$.verified') THEN 1 ELSE 0 END,
    finished_at = json_extract(state, '$.finished_at'),
    error = CASE WHEN json_type(state, '$.error') = 'object' THEN json_extract(state, '$.error') END,
    state = '';
