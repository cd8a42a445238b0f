-- credsync schema version 6: rotating at the source. rotations.source_rotation is a generated
-- rotation's part at the source (JSON of core.SourceRotationState, NULL otherwise); source_state
-- is what is kept of a rotating source between rotations (JSON of core.SourceState); named_leases
-- make one replica do a job (a retire, a scheduled rotation).
ALTER TABLE rotations ADD COLUMN source_rotation TEXT;
CREATE TABLE source_state (
    source TEXT PRIMARY KEY,
    state  TEXT NOT NULL
);
CREATE TABLE named_leases (
    name  TEXT   PRIMARY KEY,
    owner TEXT   NOT NULL,
    until BIGINT NOT NULL
);
