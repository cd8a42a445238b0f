package core

// Every error code and error type of the engine and its adapters.

import (
	"errors"
	"fmt"
	"time"
)

// Target error codes set by the engine itself (the adapters' codes follow).
const (
	CodeSuperseded    = "superseded"     // a newer rotation of the source took the target over
	CodeInterrupted   = "interrupted"    // the gateway restarted and could not resume (no credential)
	CodeTargetRemoved = "target_removed" // the target left the config while the rotation was unfinished
)

// NotFoundError is an unknown source or rotation.
type NotFoundError struct{ What, Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.What, e.Name) }

// ConflictError is a request that contradicts the rotation's state.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// ErrShuttingDown is returned once Shutdown has begun.
var ErrShuttingDown = errors.New("the gateway is shutting down; submit again once it is back")

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
	Code    string `json:"code"`
	Message string `json:"message"`
	// Retryable is filled by the engine, for the report, from the adapter's one retry verdict
	// (the bool Send and Verify return); adapters leave it false.
	Retryable    bool `json:"retryable"`
	VendorStatus int  `json:"vendor_status,omitempty"`
	// RetryAfter is the wait the vendor asked for (429/503 Retry-After); zero when it named none.
	RetryAfter time.Duration `json:"-"`
	// NotSent: the request certainly did not leave credsync (refused before the connection was
	// used), so it cannot land later.
	NotSent bool `json:"-"`
	// Answered: the vendor's answer began (its status line arrived) before the call failed, so
	// the request was processed and cannot land later.
	Answered bool `json:"-"`
	// InFlightUntil, when set on a failed call whose request may have reached the vendor (a
	// timeout or a cut connection), is when that request stops being able to land: its start
	// plus the platform's timeout.
	InFlightUntil time.Time `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
