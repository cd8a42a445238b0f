-- credsync schema version 7: the outbox of events (DESIGN.md "Notifications"). An event is
-- written where the engine records what happened; the delivery service sends it to every
-- notification that wants it, at least once.
CREATE TABLE events (
    id         TEXT   PRIMARY KEY,
    type       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    payload    TEXT   NOT NULL
);
CREATE INDEX events_created ON events (created_at, id);
