package core

import (
	"errors"
	mrand "math/rand/v2"
	"time"
)

// RetryPolicy is the retry stage's schedule: how many attempts a call gets and how long to wait
// between them. Attempt n waits about Base·2^(n-1), capped at Max, with jitter; a vendor's
// Retry-After is honoured when it asks for longer. It is a plain value: no engine, no store.
type RetryPolicy struct {
	MaxAttempts int // per call, including the first
	Base        time.Duration
	Max         time.Duration
	// Jitter picks the actual wait in [d/2, d]; nil uses a uniform random pick.
	Jitter func(d time.Duration) time.Duration
}

// RetryPolicyOverrider is implemented by an adapter whose vendor needs another schedule than
// its platform's (River's NextRetry hook): it gets the platform's policy and returns its own.
type RetryPolicyOverrider interface {
	RetryPolicy(platform RetryPolicy) RetryPolicy
}

// Next says whether attempt n+1 should follow attempt n, which failed with err and the
// adapter's retry verdict, and after how long. left is the time before the rotation's deadline
// (negative: none): a wait that would not leave room for the attempt is not taken.
func (p RetryPolicy) Next(n int, err error, retry bool, left time.Duration) (time.Duration, bool) {
	if !retry || n >= max(1, p.MaxAttempts) {
		return 0, false
	}
	d := p.Delay(n, err)
	if left >= 0 && d >= left {
		return 0, false
	}
	return d, true
}

// Delay is the wait before attempt n+1.
func (p RetryPolicy) Delay(n int, err error) time.Duration {
	base, ceil := p.Base, p.Max
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if ceil <= 0 {
		ceil = DefaultBackoffMax
	}
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	if p.Jitter != nil {
		d = p.Jitter(d)
	} else {
		d = halfJitter(d)
	}
	if ce, ok := asError(err); ok && ce.RetryAfter > d {
		d = ce.RetryAfter
	}
	return d
}

// halfJitter picks uniformly in [d/2, d].
func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

func asError(err error) (*Error, bool) {
	var ce *Error
	ok := errors.As(err, &ce)
	return ce, ok
}
