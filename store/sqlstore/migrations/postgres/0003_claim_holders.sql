-- credsync schema version 3: a target claim belongs to one holder (one attempt of one replica),
-- not to a rotation, so that a rotation resumed after a crash, or worked by a second replica,
-- waits for a call the first holder may still have in flight. want_seq remembers the newest
-- rotation that asked for a busy target, so the holder learns it should give the target up.
-- A claim is live while inflight_until is in the future; the inflight flag is no longer read.
ALTER TABLE target_claims ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE target_claims ADD COLUMN want_seq BIGINT NOT NULL DEFAULT 0;
UPDATE target_claims SET holder = rotation_id, inflight_until = 0 WHERE NOT inflight;
UPDATE target_claims SET holder = rotation_id WHERE inflight;
