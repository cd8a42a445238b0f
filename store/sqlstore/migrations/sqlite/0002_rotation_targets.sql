-- credsync schema version 2 (SQLite): one row per target of a rotation, so that a target's state
-- change writes that row only (a rotation may have 10,000 targets). rotations.targets is no
-- longer used and is left as '[]'.
CREATE TABLE rotation_targets (
    rotation_id TEXT    NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (rotation_id, idx)
);
INSERT INTO rotation_targets (rotation_id, idx, state)
    SELECT r.id, CAST(j.key AS INTEGER), j.value FROM rotations r, json_each(r.targets) j;
UPDATE rotations SET targets = '[]';
