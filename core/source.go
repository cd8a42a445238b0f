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
//
// What alternates are slots: for the password engines (postgres, mysql) a slot is a database
// user, and the staged user is what every target receives as its username; for a key-pair
// engine (snowflake) a slot is one of KeyUser's public-key slots, and every target receives
// the new private key of that one user. The engine treats slots as names; SourceDB.Stage,
// Login and Retire are given them.
type SourceRotation struct {
	Engine string // postgres | mysql | snowflake
	// Users are the slots that alternate: a rotation stages the one no target holds. With one
	// the credential is replaced in place, and targets fail until they receive it.
	Users []string
	// KeyUser is the user whose key slots Users are ("" for the password engines, whose slots
	// are users themselves).
	KeyUser     string
	RetireAfter time.Duration
	Schedule    time.Duration // 0: rotated only on request
	// Open reaches the source database; the engine opens it for each step and closes it after.
	Open func(ctx context.Context) (SourceDB, error)
	// Generate makes a new secret by the source's policy: a password, or a PEM private key.
	Generate func() (Secret, error)
	// Initial, when set, says which slot the consumers hold before credsync has rotated
	// anything (Snowflake: the key slot that holds a key); without it the first slot is.
	Initial func(ctx context.Context) (string, error)
}

// CredentialType is what a rotation of the source sends to its targets.
func (sr *SourceRotation) CredentialType() CredentialType {
	if sr.KeyUser != "" {
		return TypeKeyPair
	}
	return TypePassword
}

// credential is what every target receives when slot holds secret. A key pair carries no
// username: the user does not change (only its key does), and the platforms keep the user in
// their connection (Felt's key_pair has no user field at all).
func (sr *SourceRotation) credential(slot string, secret Secret) Credential {
	if sr.KeyUser != "" {
		return Credential{Type: TypeKeyPair, PrivateKey: secret}
	}
	return Credential{Type: TypePassword, Username: slot, Password: secret}
}

// Describe names a slot for people: "user analytics_b", or "key slot RSA_PUBLIC_KEY_2 of
// user ANALYTICS".
func (sr *SourceRotation) Describe(slot string) string {
	if sr.KeyUser != "" {
		return "key slot " + slot + " of user " + sr.KeyUser
	}
	return "user " + slot
}

// secretOf is the generated secret inside a credential credential made.
func (sr *SourceRotation) secretOf(c Credential) Secret {
	if sr.KeyUser != "" {
		return c.PrivateKey
	}
	return c.Password
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
	User         string `json:"user"`          // the staged user (or key slot of key_user): what every target receives
	PreviousUser string `json:"previous_user"` // the user (or key slot) the targets held before ("" with one)
	// KeyUser is, for a key-pair source (Snowflake), the user whose key slots user and
	// previous_user name.
	KeyUser   string     `json:"key_user,omitempty"`
	Phase     string     `json:"phase"`
	RetireAt  *time.Time `json:"retire_at"`
	RetiredAt *time.Time `json:"retired_at"`
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
