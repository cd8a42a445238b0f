-- credsync schema version 8: emergency pauses (DESIGN.md "Emergency pause"). A pause covers
-- everything, one platform or one source; while one covers a target no new vendor call to it
-- starts. Ended pauses are kept (ended_at) for the audit of an incident.
CREATE TABLE pauses (
    id         TEXT   PRIMARY KEY,
    platform   TEXT   NOT NULL DEFAULT '',
    source     TEXT   NOT NULL DEFAULT '',
    reason     TEXT   NOT NULL,
    actor      TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    ended_at   BIGINT,
    ended_by   TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX pauses_active ON pauses (created_at) WHERE ended_at IS NULL;
