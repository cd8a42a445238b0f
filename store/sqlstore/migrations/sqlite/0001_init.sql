-- credsync schema version 1 (SQLite). Times are microseconds since the Unix epoch (UTC).

-- One row per rotation. targets is the JSON array of core.TargetResult; sealed_credential is the
-- AES-GCM sealed credential (NULL once deleted or when the gateway runs without a key);
-- lease_owner/lease_until say which replica works the rotation and until when.
CREATE TABLE rotations (
    id                TEXT    PRIMARY KEY,
    source            TEXT    NOT NULL,
    seq               INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    actor             TEXT    NOT NULL DEFAULT '',
    credential_type   TEXT    NOT NULL DEFAULT '',
    targets           TEXT    NOT NULL,
    sealed_credential BLOB,
    lease_owner       TEXT,
    lease_until       INTEGER,
    UNIQUE (source, seq)
);
CREATE INDEX rotations_source_id ON rotations (source, id);
CREATE INDEX rotations_status_id ON rotations (status, id);
CREATE INDEX rotations_unfinished ON rotations (id) WHERE status NOT IN ('succeeded', 'partial', 'failed');
CREATE INDEX rotations_sealed_finished ON rotations (finished_at) WHERE sealed_credential IS NOT NULL;

-- The last sequence number given to each source.
CREATE TABLE source_seqs (
    source   TEXT    PRIMARY KEY,
    last_seq INTEGER NOT NULL
);

-- Idempotency-Key header values, per API token (actor).
CREATE TABLE idempotency_keys (
    actor        TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    rotation_id  TEXT    NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    request_hash TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (actor, idem_key)
);

-- Per (source, target): the highest rotation seq that claimed it, and whether that rotation's
-- vendor call is in flight (until inflight_until, so a dead replica's mark expires).
CREATE TABLE target_claims (
    source         TEXT    NOT NULL,
    target         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    rotation_id    TEXT    NOT NULL,
    inflight       INTEGER NOT NULL,
    inflight_until INTEGER NOT NULL,
    PRIMARY KEY (source, target)
);

-- The audit trail, in insertion order (id).
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at INTEGER NOT NULL,
    actor       TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    source      TEXT    NOT NULL DEFAULT '',
    rotation_id TEXT    NOT NULL DEFAULT '',
    target      TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT '',
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_source ON audit_events (source, id);
CREATE INDEX audit_events_rotation ON audit_events (rotation_id, id);
