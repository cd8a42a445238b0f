package core

import (
	"context"
	"time"
)

// Adapter drives one configured target on one vendor platform. It holds only what every vendor
// does: build the request, send it, verify it. An adapter is built from validated config and is
// safe for concurrent use.
type Adapter interface {
	// Accepts lists the credential types this target can take.
	Accepts() []CredentialType
	// Build maps a credential to the exact request the vendor will receive. It is pure (no I/O),
	// so it also serves the dry run and the golden tests. An error means the credential cannot go
	// to this target (wrong type, or a field the vendor requires is missing): return an
	// *InputError so that the caller gets a 422 before any vendor is called.
	Build(cred Credential) (Request, error)
	// Send delivers req. retry reports whether sending the same request again might succeed
	// (network error, timeout, 429, 5xx); err is nil on success. Errors should be *Error.
	Send(ctx context.Context, req Request) (retry bool, err error)
	// Verify confirms that the credential just sent is in use. A vendor that verifies as part
	// of Send answers Verified at once. An adapter whose target has verification turned off
	// answers Verified false with no error.
	Verify(ctx context.Context) (v Verification, retry bool, err error)
}

// Verification is what Verify learned.
type Verification struct {
	Verified bool   `json:"verified"`
	Warning  string `json:"warning,omitempty"`
}

// Error codes a target can end with. They are bounded, so they are safe as metric labels.
const (
	CodeUnauthorized       = "unauthorized"        // the vendor refused the platform token
	CodeForbidden          = "forbidden"           // the token lacks permission
	CodeNotFound           = "not_found"           // the configured source/datasource does not exist
	CodeRejected           = "rejected"            // the vendor refused the request body (4xx validation)
	CodeRateLimited        = "rate_limited"        // 429
	CodeVendorError        = "vendor_error"        // 5xx
	CodeNetwork            = "network_error"       // connection refused, reset, DNS
	CodeTimeout            = "timeout"             // the attempt ran out of time
	CodeVerificationFailed = "verification_failed" // the vendor could not connect with the new credential
	CodeBadResponse        = "bad_response"        // the vendor answered something we cannot read
	CodeDeadlineExceeded   = "deadline_exceeded"   // the rotation's total deadline passed
	CodeCanceled           = "canceled"            // the gateway stopped before the target finished
	CodeInternal           = "internal"            // a bug in credsync
)

// Error is a target's failure as reported to the operator. Message never holds a secret: the
// engine scrubs every submitted secret value from it before it is stored or logged.
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Retryable    bool   `json:"retryable"`
	VendorStatus int    `json:"vendor_status,omitempty"`
	// RetryAfter is the wait the vendor asked for (429/503 Retry-After); zero when it named none.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
