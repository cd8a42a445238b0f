-- credsync schema version 4: one row that /readyz rewrites, so that readiness is proved by a
-- committed write (a store that still answers reads but takes no writes is not ready).
CREATE TABLE readiness (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT  NOT NULL
);
