package core

import "context"

// CheckStatus is what a target check learned about a target's platform object.
type CheckStatus string

// Check statuses (credsync check, external-secrets' Ready / Unknown / Error).
const (
	CheckReady        CheckStatus = "ready"        // reachable, token accepted, the object exists (and has the configured type)
	CheckUnauthorized CheckStatus = "unauthorized" // the platform refused the token
	CheckNotFound     CheckStatus = "not_found"    // the configured object does not exist
	CheckMismatch     CheckStatus = "mismatch"     // it exists but is not what the config says (e.g. another credential type)
	CheckUnreachable  CheckStatus = "unreachable"  // network error, timeout, 5xx
	CheckUnknown      CheckStatus = "unknown"      // the vendor's API offers no way to check without changing anything
)

// CheckResult is one target's check.
type CheckResult struct {
	Status  CheckStatus `json:"status"`
	Message string      `json:"message"`
	// CredentialFails: the check saw the credential the platform holds fail (RiverGen's Test
	// Connection refused by the database, Felt's last sync failed). The status stays ready
	// (a rotation is what repairs it); the target's health is unhealthy.
	CredentialFails bool `json:"credential_fails,omitempty"`
}

// Checker is implemented by adapters that can check their target without changing it.
type Checker interface {
	Check(ctx context.Context) CheckResult
}
