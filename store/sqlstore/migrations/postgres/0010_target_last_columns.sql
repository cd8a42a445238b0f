-- credsync schema version 10 (PostgreSQL): target_last keeps a last outcome in columns (status,
-- verified, finished_at as the RFC 3339 text the state JSON held, error as JSON or NULL) instead
-- of the target's whole state, so GET /v1/sources and the status page read 100,000 of them
-- without decoding JSON (issue 14). state is no longer written: the backfill empties it.
ALTER TABLE target_last ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE target_last ADD COLUMN verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE target_last ADD COLUMN finished_at TEXT;
ALTER TABLE target_last ADD COLUMN error TEXT;
UPDATE target_last SET
    status = COALESCE(state::jsonb ->> 'status', ''),
    verified = COALESCE((state::jsonb ->> 'verified')::boolean, FALSE),
    finished_at = state::jsonb ->> 'finished_at',
    error = CASE WHEN jsonb_typeof(state::jsonb -> 'error') = 'object' THEN (state::jsonb -> 'error')::text END,
    state = '';
