// Package sqlstore is the durable core.Store: one Store type on SQLite (modernc.org/sqlite,
// pure Go, one file: the default) or on PostgreSQL (jackc/pgx/v5: several gateway replicas
// sharing one database). Both dialects share one set of queries; the few differences (the
// clock, row locks) are spelled as tokens the dialect rewrites.
//
// # Schema
//
// Versioned migrations are embedded per dialect (migrations/sqlite/NNNN_name.sql,
// migrations/postgres/NNNN_name.sql) and recorded in schema_migrations(version, name,
// applied_at). Open applies the missing ones in one transaction; on PostgreSQL under
// pg_advisory_xact_lock, on SQLite under BEGIN IMMEDIATE, so replicas or processes starting at
// once migrate exactly once and the others find the schema done. Add a change as a new file
// with the next number, in both dialects; never edit an applied one.
//
//	rotations         id PK, source, seq, status, created_at, finished_at, actor, credential_type,
//	                  targets (unused since migration 0002: always '[]'),
//	                  sealed_credential (BLOB/BYTEA, NULL when deleted or never stored),
//	                  lease_owner, lease_until, source_rotation (JSON of the source-rotation
//	                  phase, migration 0006); UNIQUE(source, seq); indexes for listing by
//	                  source and by status, a partial index on unfinished rotations and one on
//	                  finished_at (retention)
//	rotation_targets  (rotation_id, idx) PK → state (JSON of one core.TargetResult), status (a
//	                  copy of state's, for per-status counts and pages; migration 0005): a
//	                  target's progress writes its own row, whatever the fan-out (migration 0002)
//	target_last       (source, target) PK → seq, rotation_id, status, verified, finished_at
//	                  (RFC 3339 text), error (JSON or NULL): each target's last finished outcome,
//	                  kept on write, so GET /v1/sources reads one row a target (0005) without
//	                  decoding JSON (0010; state is no longer written and is '')
//	source_seqs       source PK → last_seq (the per-source counter)
//	idempotency_keys  (actor, idem_key) PK → rotation_id, request_hash, created_at
//	target_claims     (source, target) PK → seq (the newest rotation granted), want_seq (the
//	                  newest that asked while it was busy), rotation_id and holder (one attempt
//	                  of one replica) of the live claim, inflight_until (the claim is live until
//	                  then; inflight is no longer read) (migration 0003)
//	audit_events      id (insertion order) PK, occurred_at, actor, action, source, rotation_id,
//	                  target, status, detail
//	readiness         id PK (always 1) → checked_at: the row Ping rewrites (readiness is a write)
//	events            id PK → type, created_at, payload (JSON of one core.Event): the outbox
//	deliveries        (event_id, notification) PK → status (pending|delivered|failed), attempts,
//	                  next_attempt_at, last_error, last_attempt_at, delivered_at, owner and
//	                  lease_until (the replica sending it); written with its event in one
//	                  transaction (EnqueueEvent); ON DELETE CASCADE with the event (migration 0007)
//	notification_state notification PK → last_error, last_error_at, last_delivered_at
//	source_state      source PK → state (JSON: active user, last rotated, next due; 0006)
//	named_leases      name PK → owner, until: the one replica that runs a background job
//	                  (schedule, retire, verify, purge, deliveries) (0006)
//	pauses            id PK → platform, source (both '' for everything), reason, actor,
//	                  created_at, ended_at, ended_by; a partial index on the active ones (0008)
//	target_health     (source, target) PK → status, state, checked_at, message: the last
//	                  re-verification of a target (0009)
//
// Every time is an integer count of microseconds since the Unix epoch (UTC) in both dialects;
// GetRotation and ListAudit return times in UTC, truncated to the microsecond. The store never
// sees a credential in clear: it keeps the sealed bytes it is given and deletes them on request.
//
// # Concurrency
//
// Every method is safe for concurrent use, by goroutines and by processes sharing a database:
//
//   - CreateRotation is one transaction: idempotency check, the source's next seq by an upsert
//     on source_seqs (INSERT ... ON CONFLICT DO UPDATE ... RETURNING, whose row lock serializes
//     creations of one source on PostgreSQL), the rotation row and its lease, then the key
//     (INSERT ... ON CONFLICT DO NOTHING). Two requests racing with one key: the loser's insert
//     finds the winner's committed key, rolls back everything (its seq included) and returns
//     the hit.
//   - Leases (AcquireLease, RenewLease, ReleaseLease) are single conditional UPDATEs; of two
//     replicas racing for a free or expired lease exactly one matches the row.
//   - ClaimOrphans is one UPDATE ... WHERE id IN (SELECT ... ORDER BY id LIMIT n FOR UPDATE
//     SKIP LOCKED) RETURNING id on PostgreSQL: concurrent callers skip each other's rows and
//     never return the same rotation.
//   - ClaimDeliveries is ClaimOrphans' pattern on deliveries: UPDATE ... WHERE event_id IN
//     (SELECT ... due, unleased ... LIMIT n FOR UPDATE SKIP LOCKED) RETURNING: each due delivery
//     goes to one replica at a time; Finish/RescheduleDelivery change it only while the caller
//     still holds its lease.
//   - ClaimTarget is one upsert of the (source, target) claim row whose DO UPDATE ... WHERE
//     changes an existing row only when granting is allowed (no higher seq granted or wanted,
//     no live claim of another holder); the database serialises upserts of one row, so two
//     holders never both hold a target. A refused claim records its seq in want_seq and reads
//     the row back in one more statement. RenewTargetClaim and ReleaseTarget are single UPDATEs
//     keyed by the holder.
//   - On PostgreSQL lease and claim expiry use the database's clock (clock_timestamp()), never
//     the replica's, so replicas with skewed clocks agree on who holds what. On SQLite, one
//     machine, the process clock is used.
//   - SQLite runs in WAL mode (readers never wait for the writer) with synchronous=FULL (a
//     committed write survives a crash or power loss), foreign keys on and a busy timeout of
//     SQLiteBusyTimeoutMS. Every write is a transaction begun with BEGIN IMMEDIATE, so it takes
//     the write lock up front and two writers never deadlock upgrading read locks; within a
//     process writers queue for a one-slot semaphore, across processes on the busy timeout.
//   - Write transactions of concurrent callers are committed together (group commit: one
//     transaction, a savepoint each on SQLite; one pipelined batch on PostgreSQL), so one fsync
//     serves many; every caller still returns only once its own writes are committed.
//   - Statements are prepared once and reused: on SQLite a bounded cache of prepared statements
//     per database handle (switched on after the migrations), on PostgreSQL pgx's per-connection
//     statement cache (its default exec mode).
//   - On PostgreSQL the Store keeps a pgxpool of connections (DefaultMaxConns, or
//     pool_max_conns in the DSN). Transactions run at READ COMMITTED.
//
// # Faults
//
// Errors are wrapped with what failed ("sqlstore: claim target ...: %w"); core.ErrNotFound is
// matched with errors.Is. Neither DSNs with passwords nor credentials appear in errors. A failure
// that is the database's condition rather than the call's wraps core.ErrStoreUnavailable, in a
// *core.StoreUnavailableError that says what is wrong and what to do: on SQLite a full disk
// (SQLITE_FULL), a read-only or immutable file (SQLITE_READONLY, or an I/O error where the file,
// its -wal or -shm is not writable), other I/O errors, a lock held past the busy timeout, a
// damaged file; on PostgreSQL a refused, failed or dropped connection, a server shutting down or
// starting, out of disk, memory or connections, a read-only server, a refused login. A SQLite file
// deleted, moved or replaced under the open handle (its device and inode, and its link count
// through a handle kept open, are checked before every write batch and at most every 100 ms
// before reads) fails every call the same way: SQLite would go on writing into a file that is
// gone. New SQLite files are created 0600, and connections never create one (mode=rw), so a
// deleted file is not silently replaced by an empty database. Nothing here bounds how long a call
// may take: store/guard does, with store.timeout. After any of these faults no restart is needed
// once the database is back (pgxpool reconnects; SQLite's connections recover from a full disk
// or a read-only file), except after the SQLite file was deleted.
package sqlstore
