package core

import (
	"context"
	"time"
)

// Adapter drives one configured target on one vendor platform. It holds only what every vendor
// does: build the request, send it, verify it. An adapter is built from validated config and is
// safe for concurrent use. Every vendor call it makes goes through its platform's Admission
// (adapters/vendorhttp does this), so concurrency bounds, rate limits and 429 pauses hold for
// every call, sends, polls and checks alike.
//
// The request and response types are structs so that the contract can grow without breaking
// adapters.
type Adapter interface {
	// Accepts lists the credential types this target can take.
	Accepts() []CredentialType
	// Build maps a credential to the exact request the vendor will receive. It is pure (no I/O),
	// so it also serves the dry run and the golden tests. An error means the credential cannot go
	// to this target (wrong type, or a field the vendor requires is missing): return an
	// *InputError so that the caller gets a 422 before any vendor is called.
	Build(cred Credential) (Request, error)
	// Send delivers req: the write. retry reports whether sending the same request again might
	// succeed (network error, timeout, 429, 5xx); err is nil on success. Errors should be *Error.
	// Send may read before it writes (Felt reads the source to know what a fresh sync status
	// is) but writes the credential at most once per call.
	Send(ctx context.Context, req Request) (res SendResult, retry bool, err error)
	// Verify makes one check that the credential just sent is in use; the engine calls it again,
	// Again later, while it answers Again > 0, and stops when the adapter answers a verdict (its
	// own verification window is measured by VerifyRequest.Elapsed). An adapter whose target has
	// verification turned off says so in SendResult and is never asked.
	Verify(ctx context.Context, req VerifyRequest) (v Verification, retry bool, err error)
}

// SendResult is what a successful Send learned.
type SendResult struct {
	// Check asks the engine to call Verify. False when the target has verification turned off,
	// or when the vendor verified while accepting the write (then Verified says how it went).
	Check bool
	// Verified: the vendor itself connected with the new credential as part of the write
	// (Databrain tests the connection before it answers 200).
	Verified bool
	// Receipt is whatever Verify needs to tell a fresh answer from a stale one (Felt: the
	// source's last_synced_at before the update). The engine keeps it in memory and passes it
	// back unchanged; after a restart the credential is sent again, so it is never stored.
	Receipt any
}

// VerifyRequest is one verification check.
type VerifyRequest struct {
	Receipt any
	// Poll counts the checks that answered Again before this one (0: the first check).
	Poll int
	// Elapsed is the time since Send succeeded, by the engine's clock.
	Elapsed time.Duration
}

// Verification is what one Verify check learned.
type Verification struct {
	Verified bool   `json:"verified"`
	Warning  string `json:"warning,omitempty"`
	// Again > 0: no verdict yet (the vendor is still connecting); check again after this wait.
	Again time.Duration `json:"-"`
}
