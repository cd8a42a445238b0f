package notify

import (
	mrand "math/rand/v2"
	"time"
)

// schedule is when a failed delivery is attempted again: exponential backoff from base, capped
// at max, with jitter, until maxAge after the event.
type schedule struct {
	base, max, maxAge time.Duration
	jitter            func(time.Duration) time.Duration
}

// backoff is the wait after the n-th failed attempt (n >= 1), before jitter:
// base·2^(n-1), at most max.
func (s schedule) backoff(n int) time.Duration {
	d := s.base
	for i := 1; i < n && d < s.max; i++ {
		d *= 2
	}
	return min(d, s.max)
}

// delay is backoff(n) with jitter: a pick in [d/2, d] unless the schedule has its own.
func (s schedule) delay(n int) time.Duration {
	d := s.backoff(n)
	if s.jitter != nil {
		return s.jitter(d)
	}
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// retryAt says when a delivery whose n-th attempt failed at `at` is attempted again: delay(n)
// later, or later still when the receiver asked for it (Retry-After), but never after the cut
// (maxAge after the event at evTime), where its last attempt is made. ok is false once the cut
// has come: give up.
func (s schedule) retryAt(evTime time.Time, n int, at time.Time, retryAfter time.Duration) (next time.Time, ok bool) {
	cut := evTime.Add(s.maxAge)
	if !at.Before(cut) {
		return time.Time{}, false
	}
	next = at.Add(max(s.delay(n), retryAfter))
	if next.After(cut) {
		next = cut
	}
	return next, true
}
