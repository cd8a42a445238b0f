package core

import (
	"context"
	"time"
)

// Rotating at the source: the model. A source with a Rotation is one whose credential credsync
// makes itself: it stages a generated password on the user no target holds, sends it to every
// target through the normal engine, and only once every target succeeded and was verified
// retires the previous user's password (RetireAfter later), so that every consumer holds a
// working credential at every moment. The engine's part is in sourcerun.go.

// SourceDB is a source database's user accounts, reached through an admin login (package
// sourcedb implements it for PostgreSQL and MySQL/MariaDB).
type SourceDB interface {
	// Stage sets password on user and logs in as user with it (a real connection). Staging the
	// same password again is harmless.
	Stage(ctx context.Context, user string, password Secret) error
	// Login logs in as user with password.
	Login(ctx context.Context, user string, password Secret) error
	// Retire replaces user's password with a random one nobody keeps.
	Retire(ctx context.Context, user string) error
	// Check verifies the admin login and that each user exists and may log in.
	Check(ctx context.Context, users ...string) error
	Close() error
}

// SourceRotation is the config of a source credsync rotates itself (sources.<name>.rotation).
type SourceRotation struct {
	Engine string // postgres | mysql
	// Users alternate: a rotation stages the one no target holds. With one user the password
	// is replaced in place, and targets fail until they receive it.
	Users       []string
	RetireAfter time.Duration
	Schedule    time.Duration // 0: rotated only on request
	// Open reaches the source database; the engine opens it for each step and closes it after.
	Open func(ctx context.Context) (SourceDB, error)
	// Generate makes a new password by the source's policy.
	Generate func() (Secret, error)
}

// Phases of a rotation at the source.
const (
	PhaseStaging     = "staging"     // the new password is being set on the staged user
	PhasePropagating = "propagating" // the targets are receiving it
	PhaseRetiring    = "retiring"    // every target is verified; the previous user is retired at retire_at
	PhaseDone        = "done"        // retired (or nothing to retire)
)

// SourceRotationState is a generated rotation's part at the source.
type SourceRotationState struct {
	User         string     `json:"user"`          // the staged user: what every target receives
	PreviousUser string     `json:"previous_user"` // the user the targets held before ("" with one user)
	Phase        string     `json:"phase"`
	RetireAt     *time.Time `json:"retire_at"`
	RetiredAt    *time.Time `json:"retired_at"`
}

// SourceState is what the store keeps of a rotating source between its rotations.
type SourceState struct {
	Source string
	// InUse are the users some target holds: one, or two after a rotation that did not reach
	// every target (until a retry completes it).
	InUse []string
	// Current is the generated rotation in progress, if any: one at a time per source.
	Current       string
	LastRotatedAt *time.Time
	NextDueAt     *time.Time
	Failures      int // scheduled rotations that did not complete, in a row
	// A pending retire: RetireUser's password is replaced at RetireAt (the rotation that
	// completed, RetireRotation, shows it).
	RetireUser     string
	RetireAt       *time.Time
	RetireRotation string
}
