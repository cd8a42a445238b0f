package core

import (
	"errors"
	"time"
)

// Observer receives what the engine does, for metrics. Every label it passes is bounded: vendor
// and platform names come from the config, op is "update" or "verify", class is one of the
// CallClass values, statuses are the model's enums. Implementations must be safe for concurrent
// use and must not block.
type Observer interface {
	RotationStarted()
	RotationFinished(status RotationStatus)
	TargetFinished(vendor, platform string, status TargetStatus)
	VendorCall(vendor, platform, op, class string, took time.Duration)
	Retry(vendor, platform string)
	// Paused says how many pauses are active now.
	Paused(active int)
	// Health says how many of a platform's checked targets (verify_every) are in each health.
	Health(platform string, counts map[HealthStatus]int)
}

// Call classes of VendorCall.
const (
	Class2xx     = "2xx"
	Class4xx     = "4xx"
	Class5xx     = "5xx"
	ClassNetwork = "network" // refused, reset, timeout: no HTTP answer
	ClassOther   = "other"   // 1xx/3xx, or an error without a status
)

// CallClass classifies the outcome of one vendor call.
func CallClass(err error) string {
	if err == nil {
		return Class2xx
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return ClassOther
	}
	switch s := ce.VendorStatus; {
	case s >= 500:
		return Class5xx
	case s >= 400:
		return Class4xx
	case s == 0 && (ce.Code == CodeNetwork || ce.Code == CodeTimeout || ce.Code == CodeCanceled):
		return ClassNetwork
	default:
		return ClassOther
	}
}

type nopObserver struct{}

func (nopObserver) Paused(int)                          {}
func (nopObserver) Health(string, map[HealthStatus]int) {}

func (nopObserver) RotationStarted()                                         {}
func (nopObserver) RotationFinished(RotationStatus)                          {}
func (nopObserver) TargetFinished(string, string, TargetStatus)              {}
func (nopObserver) VendorCall(string, string, string, string, time.Duration) {}
func (nopObserver) Retry(string, string)                                     {}
