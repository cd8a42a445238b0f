package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotFound is returned by a Store for an unknown rotation (or a credential already deleted).
var ErrNotFound = errors.New("not found")

// ErrStoreUnavailable is wrapped by every store error that says the store cannot take or
// answer calls now, whatever the call: it did not answer within store.timeout, refuses or
// dropped the connection, is full, read-only or failing I/O, or (SQLite) its file was deleted or
// replaced under the open handle. It is the store's condition, not the request's: the API
// answers 503 store_unavailable with Retry-After, and /readyz 503. ErrNotFound and errors of the
// call itself (a bug, a constraint) never wrap it. A write that failed this way may still have
// been committed (a timeout cuts off the answer, not necessarily the commit).
var ErrStoreUnavailable = errors.New("store unavailable")

// StoreUnavailableError is an ErrStoreUnavailable with what is wrong and what to do about it,
// for people. Message never holds a DSN's password nor a secret, so the API may show it; Err, the
// cause, is for the log.
type StoreUnavailableError struct {
	Message string
	Err     error
}

func (e *StoreUnavailableError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

// Unwrap makes errors.Is find ErrStoreUnavailable and the cause.
func (e *StoreUnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrStoreUnavailable}
	}
	return []error{ErrStoreUnavailable, e.Err}
}

// ListFilter selects rotations; zero values select everything.
type ListFilter struct {
	Source string
	// Sources, when not nil, keeps only rotations of these sources (an empty, non-nil list:
	// none); an access scope's sources (api).
	Sources []string
	Status  RotationStatus
	// Before, when set, returns only rotations whose ID sorts before it (the next page after a
	// page that ended with that ID). Rotation IDs sort by creation time.
	Before string
	Limit  int // 0: the store's default (100)
}

// DefaultListLimit is the page size when ListFilter.Limit is 0.
const DefaultListLimit = 100

// TargetPage selects a page of one rotation's targets, in target order.
type TargetPage struct {
	// After is the cursor a previous page returned (Rotation.NextTargets); "": from the first.
	After  string
	Limit  int          // 0: DefaultTargetPage; at most MaxTargetPage
	Status TargetStatus // "": every status
}

// Target page sizes.
const (
	DefaultTargetPage = 100
	MaxTargetPage     = 1000
)

// PageOf cuts a rotation held in memory to one page, as the stores' GetRotationPage does: its
// Targets the page, TargetCounts set, NextTargets the cursor of the next page.
func PageOf(r *Rotation, p TargetPage) (*Rotation, error) {
	after, limit, err := p.Bounds()
	if err != nil {
		return nil, err
	}
	// Only the page's targets are copied: a rotation of 100,000 targets is not copied whole
	// to answer 100 of them.
	c := r.cloneHead()
	all := r.Targets
	c.Targets, c.TargetCounts, c.NextTargets = make([]TargetResult, 0, min(limit, len(all))), map[TargetStatus]int{}, ""
	for _, t := range all {
		c.TargetCounts[t.Status]++
	}
	last := after
	for i := after + 1; i < len(all); i++ {
		if p.Status != "" && all[i].Status != p.Status {
			continue
		}
		if len(c.Targets) == limit {
			c.NextTargets = strconv.Itoa(last)
			break
		}
		c.Targets = append(c.Targets, all[i].clone())
		last = i
	}
	return c, nil
}

// Bounds parses the page: the index after which it starts (-1: from the first) and its size.
// A cursor that is not one a page returned, or a limit out of range, is an *InputError.
func (p TargetPage) Bounds() (after, limit int, err error) {
	after, limit = -1, p.Limit
	if limit == 0 {
		limit = DefaultTargetPage
	}
	if limit < 1 || limit > MaxTargetPage {
		return 0, 0, &InputError{Message: "invalid target page", Problems: []Problem{{Field: "targets_limit",
			Message: fmt.Sprintf("must be from 1 to %d", MaxTargetPage)}}}
	}
	if p.After != "" {
		n, perr := strconv.Atoi(p.After)
		if perr != nil || n < 0 || strconv.Itoa(n) != p.After {
			return 0, 0, &InputError{Message: "invalid target page", Problems: []Problem{{Field: "targets_after",
				Message: "is not a cursor a previous page returned (next_targets)"}}}
		}
		after = n
	}
	switch p.Status {
	case "", TargetPending, TargetRunning, TargetSucceeded, TargetFailed, TargetSuperseded:
	default:
		return 0, 0, &InputError{Message: "invalid target page", Problems: []Problem{{Field: "target_status",
			Message: "one of pending, running, succeeded, failed, superseded"}}}
	}
	return after, limit, nil
}

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

// TargetClaim names who asks to write to a target: a rotation (of the source, with its
// sequence number) and a Holder, unique to one worker's hold on the target. A restarted or
// second replica working the same rotation has another Holder, so it waits for a call the first
// one may still have in flight instead of sending the same credential alongside it.
type TargetClaim struct {
	Source     string
	Target     string
	Seq        int64
	RotationID string
	Holder     string
}

// ClaimResult answers ClaimTarget and RenewTargetClaim.
type ClaimResult int

// Claim results.
const (
	// ClaimGranted: the target is this holder's; no newer rotation has claimed or asked for it
	// and no other holder's call to it may still land.
	ClaimGranted ClaimResult = iota
	// ClaimSuperseded: a newer rotation of the source has claimed this target or is waiting
	// for it; never send. (From RenewTargetClaim: the claim was extended, but a newer rotation
	// waits: finish what is in flight and give the target up.)
	ClaimSuperseded
	// ClaimBusy: another holder's call to this target may still land; wait and ask again.
	ClaimBusy
	// ClaimLost: (RenewTargetClaim only) this holder no longer holds the target: its claim
	// expired and another holder took it.
	ClaimLost
)

func (r ClaimResult) String() string {
	switch r {
	case ClaimGranted:
		return "granted"
	case ClaimSuperseded:
		return "superseded"
	case ClaimBusy:
		return "busy"
	case ClaimLost:
		return "lost"
	}
	return fmt.Sprintf("ClaimResult(%d)", int(r))
}

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
	Source string
	// Sources, when not nil, keeps only events of these sources, as ListFilter.Sources.
	Sources    []string
	RotationID string
	Limit      int // 0: 100
}

// Store keeps rotations durably. The engine writes every state change before and after each
// vendor call, so a store that persists each write loses nothing on a crash. Implementations:
// store/memstore (tests, demo), store/sqlstore (SQLite, PostgreSQL); store/guard bounds every
// call of one by store.timeout. Every method is safe for concurrent use, also from several
// gateway processes sharing one database. An error that is the store's condition rather than the
// call's wraps ErrStoreUnavailable.
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
	// GetRotation returns a rotation with every target (for the engine: resume, retry).
	GetRotation(ctx context.Context, id string) (*Rotation, error)
	// GetRotationPage returns a rotation with one page of its targets, its TargetCounts, and
	// NextTargets when more targets match: what an answer about a rotation may hold, bounded
	// whatever its size. A cursor that does not parse is an *InputError.
	GetRotationPage(ctx context.Context, id string, p TargetPage) (*Rotation, error)
	// ListRotations returns rotations newest first, with TargetCounts and no Targets.
	ListRotations(ctx context.Context, f ListFilter) ([]*Rotation, error)
	// LastOutcomes returns every target's newest finished outcome (by rotation seq), kept up
	// to date by FinishTarget and UpdateRotation, keyed by source then target name.
	LastOutcomes(ctx context.Context) (map[string]map[string]LastOutcome, error)
	// PurgeHistory deletes up to limit rotations finished before t (oldest first), with their
	// targets and idempotency keys, and returns how many; the audit trail is kept (PurgeAudit).
	PurgeHistory(ctx context.Context, finishedBefore time.Time, limit int) (int, error)
	// PurgeAudit deletes up to limit audit events that occurred before t, oldest first.
	PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error)
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

	// ClaimTarget asks for the target on behalf of c.Holder, for ttl. It is granted when no
	// rotation with a higher seq has claimed the target or asked for it, and no other holder's
	// claim is live (a claim expires ttl after it was granted or last renewed, for dead
	// replicas). When it is busy with an older rotation's claim, the request is remembered
	// (the target's wanted seq), so that the older holder learns at its next renewal that it
	// should give the target up, and its next claim is superseded.
	ClaimTarget(ctx context.Context, c TargetClaim, ttl time.Duration) (ClaimResult, error)
	// RenewTargetClaim extends a live claim of c.Holder to ttl from now: ClaimGranted, or
	// ClaimSuperseded when a newer rotation waits for the target (extended all the same: the
	// holder may have a call in flight), or ClaimLost.
	RenewTargetClaim(ctx context.Context, c TargetClaim, ttl time.Duration) (ClaimResult, error)
	// ReleaseTarget ends c.Holder's claim: at once when hold is 0, or hold from now when a call
	// whose outcome is unknown may still land until then. Releasing a claim not held is a no-op.
	ReleaseTarget(ctx context.Context, c TargetClaim, hold time.Duration) error

	// GetSourceState returns what is kept of a rotating source (the zero state, Source set,
	// when nothing is); PutSourceState replaces it.
	GetSourceState(ctx context.Context, source string) (SourceState, error)
	PutSourceState(ctx context.Context, st SourceState) error
	// SetSourceRotation replaces a rotation's source_rotation part.
	SetSourceRotation(ctx context.Context, rotationID string, st SourceRotationState) error
	// AcquireNamedLease makes owner the one replica doing the job name until ttl from now
	// (granted when free, expired, or owner's already); a replica that dies loses it.
	AcquireNamedLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseNamedLease(ctx context.Context, name, owner string) error

	// PutTargetHealth replaces a target's health; GetTargetHealth reads one (false when none
	// is kept), TargetHealths every one, by source then target.
	PutTargetHealth(ctx context.Context, source, target string, h TargetHealth) error
	GetTargetHealth(ctx context.Context, source, target string) (TargetHealth, bool, error)
	TargetHealths(ctx context.Context) (map[string]map[string]TargetHealth, error)

	// CreatePause records a pause; ListPauses returns them, newest first, only the active ones
	// when active; EndPause ends one (ErrNotFound when unknown or already ended).
	CreatePause(ctx context.Context, p Pause) error
	ListPauses(ctx context.Context, active bool) ([]Pause, error)
	EndPause(ctx context.Context, id, actor string, at time.Time) (Pause, error)

	// EnqueueEvent writes an event to the outbox and, in the same transaction, one pending
	// delivery of it for each notification named, due at once (at ev.Time): an event is never
	// stored without the deliveries it owes. An event id already stored changes nothing.
	EnqueueEvent(ctx context.Context, ev Event, notifications []string) error
	// ListEvents returns outbox events in id order after the id given ("" from the first), at
	// most limit.
	ListEvents(ctx context.Context, after string, limit int) ([]Event, error)
	// ClaimDeliveries leases to owner, for ttl, up to limit pending deliveries of notification
	// that are due at now (next attempt at or before it) and not leased to another owner
	// (unleased, an expired lease, or owner's own: a restarted replica takes its deliveries back
	// at once), the longest due first, with their events. Lease expiry is the store's clock (the
	// database's on PostgreSQL, like every lease); now, the caller's, says what is due. With
	// PostgreSQL this is SELECT ... FOR UPDATE SKIP LOCKED: two replicas never hold one delivery.
	ClaimDeliveries(ctx context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) ([]Delivery, error)
	// FinishDelivery ends a delivery owner holds with status delivered or failed, counting the
	// attempt (unless a.NotSent) and keeping a.Error, and records it in the notification's last
	// error or last delivery. It returns false, writing nothing, when owner no longer holds the
	// delivery (another replica took it over) or it is no longer pending.
	FinishDelivery(ctx context.Context, owner string, a DeliveryAttempt, status DeliveryStatus) (bool, error)
	// RescheduleDelivery records a failed attempt of a delivery owner holds: it stays pending,
	// due again at next, the lease released; false as for FinishDelivery.
	RescheduleDelivery(ctx context.Context, owner string, a DeliveryAttempt, next time.Time) (bool, error)
	// DeliveryCounts counts every notification's deliveries by status (DeliveryCounts), with
	// its last error and last delivery, sorted by notification name.
	DeliveryCounts(ctx context.Context) ([]DeliveryCounts, error)
	// PurgeEvents deletes up to limit events that occurred before t, oldest first, with their
	// deliveries, whatever their status, and returns how many.
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)

	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Ping checks the store takes a write (readiness): a round trip that commits a write, so
	// that a store which still answers reads but would refuse or lose writes (read-only, full,
	// its SQLite file deleted or replaced) is not ready. Such failures wrap ErrStoreUnavailable.
	Ping(ctx context.Context) error
	Close() error
}

// InSources says whether source passes a Sources filter (nil: every source).
func InSources(filter []string, source string) bool {
	if filter == nil {
		return true
	}
	for _, s := range filter {
		if s == source {
			return true
		}
	}
	return false
}
