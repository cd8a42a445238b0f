-- credsync schema version 5 (SQLite): views that cost what they show.
-- rotation_targets.status: a page of one rotation's targets by status, and per-status counts,
-- without decoding every row. target_last: each target's newest finished outcome, kept on write,
-- so GET /v1/sources reads one row per configured target whatever the history.
ALTER TABLE rotation_targets ADD COLUMN status TEXT NOT NULL DEFAULT '';
UPDATE rotation_targets SET status = COALESCE(json_extract(state, '$.status'), '');
CREATE INDEX rotation_targets_status ON rotation_targets (rotation_id, status, idx);

CREATE TABLE target_last (
    source      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    rotation_id TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (source, target)
);
INSERT INTO target_last (source, target, seq, rotation_id, state)
    SELECT r.source, json_extract(t.state, '$.name'), r.seq, r.id, t.state
    FROM rotation_targets t JOIN rotations r ON r.id = t.rotation_id
    WHERE t.status IN ('succeeded', 'failed', 'superseded')
    ORDER BY r.seq
    ON CONFLICT (source, target) DO UPDATE SET seq = excluded.seq, rotation_id = excluded.rotation_id, state = excluded.state
    WHERE excluded.seq >= target_last.seq;

-- A superseded rotation is finished: the partial index of unfinished rotations must say so.
DROP INDEX rotations_unfinished;
CREATE INDEX rotations_unfinished ON rotations (id) WHERE status NOT IN ('succeeded', 'partial', 'failed', 'superseded');
-- History retention purges finished rotations oldest first.
CREATE INDEX rotations_finished_at ON rotations (finished_at) WHERE finished_at IS NOT NULL;
