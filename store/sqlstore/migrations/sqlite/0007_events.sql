-- credsync schema version 7: the outbox of events (DESIGN.md "Notifications"). An event is
-- written where the engine records what happened, with one delivery per notification that wants
-- it in the same transaction; the delivery service sends each at least once.
CREATE TABLE events (
    id         TEXT   PRIMARY KEY,
    type       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    payload    TEXT   NOT NULL
);
CREATE INDEX events_created ON events (created_at, id);
-- deliveries: one event to one notification. status pending (attempted again at
-- next_attempt_at), delivered or failed (given up); attempts made so far; last_error scrubbed and
-- bounded; owner and lease_until: the replica sending it now.
CREATE TABLE deliveries (
    event_id        TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    notification    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_attempt_at BIGINT,
    delivered_at    BIGINT,
    owner           TEXT,
    lease_until     BIGINT,
    PRIMARY KEY (event_id, notification)
);
CREATE INDEX deliveries_due ON deliveries (notification, next_attempt_at, event_id) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (notification, status);
-- notification_state: a notification's newest error and newest delivery (microseconds; 0: never),
-- kept when its events are purged.
CREATE TABLE notification_state (
    notification      TEXT   PRIMARY KEY,
    last_error        TEXT   NOT NULL DEFAULT '',
    last_error_at     BIGINT NOT NULL DEFAULT 0,
    last_delivered_at BIGINT NOT NULL DEFAULT 0
);
