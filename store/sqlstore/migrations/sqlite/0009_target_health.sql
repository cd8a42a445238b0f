-- credsync schema version 9: each target's health (DESIGN.md "Re-verification and drift"), the
-- last scheduled check or verified rotation. state is the last definite status (healthy or
-- unhealthy), which drift and recovery compare a new result with; an unknown result keeps it.
CREATE TABLE target_health (
    source     TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    state      TEXT   NOT NULL DEFAULT '',
    checked_at BIGINT NOT NULL,
    message    TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (source, target)
);
