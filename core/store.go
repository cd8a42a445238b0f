package core

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for an unknown rotation (or a credential already deleted).
var ErrNotFound = errors.New("not found")

// ListFilter selects rotations; zero values select everything.
type ListFilter struct {
	Source string
	Status RotationStatus
	// Before, when set, returns only rotations whose ID sorts before it (the next page after a
	// page that ended with that ID). Rotation IDs sort by creation time.
	Before string
	Limit  int // 0: the store's default (100)
}

// DefaultListLimit is the page size when ListFilter.Limit is 0.
const DefaultListLimit = 100

// NewRotation is what CreateRotation records atomically.
type NewRotation struct {
	Rotation *Rotation
	// SealedCredential is the credential encrypted for resuming and retrying; nil when the
	// gateway runs without an encryption key.
	SealedCredential []byte
	// Owner takes the rotation's lease at once, for LeaseTTL.
	Owner    string
	LeaseTTL time.Duration
	// IdempotencyKey (with Actor) and RequestHash, when the caller sent an Idempotency-Key.
	Actor          string
	IdempotencyKey string
	RequestHash    string
	// Audit, when set, is appended with the rotation, atomically: a rotation is never stored
	// without the event that says who submitted it.
	Audit *AuditEvent
}

// IdempotencyHit is a key already used: which rotation it created and for which request.
type IdempotencyHit struct {
	RotationID  string
	RequestHash string
}

// ClaimResult answers ClaimTarget.
type ClaimResult int

// Claim results.
const (
	// ClaimGranted: send now; no newer rotation has claimed the target and no older call to it is
	// in flight.
	ClaimGranted ClaimResult = iota
	// ClaimSuperseded: a newer rotation of the source has claimed this target; never send.
	ClaimSuperseded
	// ClaimBusy: an older rotation's call to this target is still in flight; wait and ask again.
	ClaimBusy
)

// AuditEvent is one line of the audit trail. It never holds a secret.
type AuditEvent struct {
	At         time.Time `json:"at"`
	Actor      string    `json:"actor,omitempty"` // API token name; empty for the gateway itself
	Action     string    `json:"action"`          // rotation.submitted, rotation.retried, target.finished, rotation.finished, rotation.resumed
	Source     string    `json:"source"`
	RotationID string    `json:"rotation_id"`
	Target     string    `json:"target,omitempty"`
	Status     string    `json:"status,omitempty"`
	Detail     string    `json:"detail,omitempty"` // e.g. an error code
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	Source     string
	RotationID string
	Limit      int // 0: 100
}

// Store keeps rotations durably. The engine writes every state change before and after each
// vendor call, so a store that persists each write loses nothing on a crash. Implementations:
// store/memstore (tests, demo), store/sqlstore (SQLite, PostgreSQL). Every method is safe for
// concurrent use, also from several gateway processes sharing one database.
type Store interface {
	// CreateRotation records a rotation, its sealed credential, its lease and its idempotency
	// key in one transaction, and assigns Rotation.Seq: the next number of its source (1, 2, ...).
	// When the idempotency key is already taken it records nothing and returns the hit.
	CreateRotation(ctx context.Context, n NewRotation) (*IdempotencyHit, error)
	// UpdateRotation replaces a rotation's status, finish time and targets.
	UpdateRotation(ctx context.Context, r *Rotation) error
	// SetRotationStatus writes a rotation's status and finish time alone, leaving its targets
	// as their own UpdateTarget calls wrote them: one row, however many targets.
	SetRotationStatus(ctx context.Context, id string, status RotationStatus, finishedAt *time.Time) error
	// UpdateTarget replaces one target's state (its index in Rotation.Targets): the write a
	// target's progress costs, whatever the number of targets.
	UpdateTarget(ctx context.Context, rotationID string, idx int, t TargetResult) error
	// FinishTarget is UpdateTarget with the target's audit event appended atomically: the
	// outcome and its audit record are written together or not at all.
	FinishTarget(ctx context.Context, rotationID string, idx int, t TargetResult, ev AuditEvent) error
	GetRotation(ctx context.Context, id string) (*Rotation, error)
	// ListRotations returns rotations newest first.
	ListRotations(ctx context.Context, f ListFilter) ([]*Rotation, error)
	// FindIdempotencyKey looks a key up; nil when unused.
	FindIdempotencyKey(ctx context.Context, actor, key string) (*IdempotencyHit, error)

	// SealedCredential returns the stored credential; ErrNotFound once deleted or never stored.
	SealedCredential(ctx context.Context, rotationID string) ([]byte, error)
	DeleteCredential(ctx context.Context, rotationID string) error
	// PurgeCredentials deletes the credentials of rotations finished before t; it returns how many.
	PurgeCredentials(ctx context.Context, finishedBefore time.Time) (int, error)

	// AcquireLease makes owner the one replica working the rotation, until ttl from now. It
	// succeeds when the rotation has no lease, an expired one, or one owner already holds.
	AcquireLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error)
	// RenewLease extends a lease owner holds; false when owner lost it.
	RenewLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, rotationID, owner string) error
	// ClaimOrphans leases to owner up to limit unfinished rotations whose lease is missing or
	// expired (their replica died), oldest first, and returns their IDs. With PostgreSQL this is
	// SELECT ... FOR UPDATE SKIP LOCKED, so two replicas never claim the same rotation.
	ClaimOrphans(ctx context.Context, owner string, ttl time.Duration, limit int) ([]string, error)

	// ClaimTarget asks to send rotation (of the source, with sequence seq) to target now. It is
	// granted when no rotation with a higher seq has claimed the target and no call of another
	// rotation is in flight to it (an in-flight mark expires after ttl, for dead replicas); the
	// grant marks this rotation's call in flight until ReleaseTarget or ttl.
	ClaimTarget(ctx context.Context, source, target string, seq int64, rotationID string, ttl time.Duration) (ClaimResult, error)
	// ReleaseTarget clears the in-flight mark this rotation holds on the target, if any.
	ReleaseTarget(ctx context.Context, source, target, rotationID string) error

	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Ping checks the store answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}
