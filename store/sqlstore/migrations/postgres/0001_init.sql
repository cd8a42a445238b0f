-- credsync schema version 1 (PostgreSQL). Times are microseconds since the Unix epoch (UTC), the
-- same representation as the SQLite schema, so both dialects share their queries; lease and claim
-- expiry are computed from the database's clock.

-- One row per rotation. targets is the JSON array of core.TargetResult; sealed_credential is the
-- AES-GCM sealed credential (NULL once deleted or when the gateway runs without a key);
-- lease_owner/lease_until say which replica works the rotation and until when.
CREATE TABLE rotations (
    id                TEXT   PRIMARY KEY,
    source            TEXT   NOT NULL,
    seq               BIGINT NOT NULL,
    status            TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    actor             TEXT   NOT NULL DEFAULT '',
    credential_type   TEXT   NOT NULL DEFAULT '',
    targets           JSONB  NOT NULL,
    sealed_credential BYTEA,
    lease_owner       TEXT,
    lease_until       BIGINT,
    UNIQUE (source, seq)
);
CREATE INDEX rotations_source_id ON rotations (source, id);
CREATE INDEX rotations_status_id ON rotations (status, id);
CREATE INDEX rotations_unfinished ON rotations (id) WHERE status NOT IN ('succeeded', 'partial', 'failed');
CREATE INDEX rotations_sealed_finished ON rotations (finished_at) WHERE sealed_credential IS NOT NULL;

-- The last sequence number given to each source.
CREATE TABLE source_seqs (
    source   TEXT   PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Idempotency-Key header values, per API token (actor).
CREATE TABLE idempotency_keys (
    actor        TEXT   NOT NULL,
    idem_key     TEXT   NOT NULL,
    rotation_id  TEXT   NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    request_hash TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (actor, idem_key)
);

-- Per (source, target): the highest rotation seq that claimed it, and whether that rotation's
-- vendor call is in flight (until inflight_until, so a dead replica's mark expires).
CREATE TABLE target_claims (
    source         TEXT    NOT NULL,
    target         TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    rotation_id    TEXT    NOT NULL,
    inflight       BOOLEAN NOT NULL,
    inflight_until BIGINT  NOT NULL,
    PRIMARY KEY (source, target)
);

-- The audit trail, in insertion order (id).
CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    actor       TEXT   NOT NULL DEFAULT '',
    action      TEXT   NOT NULL,
    source      TEXT   NOT NULL DEFAULT '',
    rotation_id TEXT   NOT NULL DEFAULT '',
    target      TEXT   NOT NULL DEFAULT '',
    status      TEXT   NOT NULL DEFAULT '',
    detail      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_source ON audit_events (source, id);
CREATE INDEX audit_events_rotation ON audit_events (rotation_id, id);
