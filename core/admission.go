package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimitPause is how long a 429 without a Retry-After pauses its platform.
const DefaultRateLimitPause = time.Second

// Admission is the gate every call to one platform passes, whoever makes it (a rotation's send,
// a verification poll, credsync check): first the pause a 429 set, then a slot of the platform's
// concurrency bound, held while the call is in flight, then its rate limit. One Admission per
// platform is shared by every target of that platform.
type Admission struct {
	name    string
	sem     chan struct{}
	limiter *rate.Limiter // nil: no rate limit
	clock   Clock

	mu          sync.Mutex
	pausedUntil time.Time
}

// Release ends an admitted call; call it exactly once, when the call has returned. pause > 0
// means the platform answered 429: every call to it is held for pause, and the hold starts
// before this call's slot is given back, so no other call slips in first.
type Release func(pause time.Duration)

// NewAdmission returns the gate of a platform (its defaults applied). clock nil is the wall
// clock.
func NewAdmission(p Platform, clock Clock) *Admission {
	p = p.WithDefaults()
	if clock == nil {
		clock = RealClock{}
	}
	a := &Admission{name: p.Name, sem: make(chan struct{}, p.MaxConcurrency), clock: clock}
	if p.RateLimit > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(p.RateLimit), p.Burst)
	}
	return a
}

// Admit waits until a call may start, or ctx ends.
func (a *Admission) Admit(ctx context.Context) (Release, error) {
	for {
		if d := a.pausedFor(); d > 0 {
			if err := a.clock.Sleep(ctx, d); err != nil {
				return nil, fmt.Errorf("platform %s is paused after a 429: %w", a.name, err)
			}
		}
		select {
		case a.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free slot of platform %s: %w", a.name, ctx.Err())
		}
		// A 429 may have paused the platform while this call waited for its slot.
		if a.pausedFor() <= 0 {
			break
		}
		<-a.sem
	}
	// The rate limit is waited for holding the slot, so that a call starts as soon as its
	// token is granted: waiting for the slot after the token would let calls bunch up.
	if a.limiter != nil {
		if err := a.limiter.Wait(ctx); err != nil {
			<-a.sem
			return nil, fmt.Errorf("rate limit of platform %s: %w", a.name, err)
		}
	}
	var once sync.Once
	return func(pause time.Duration) {
		once.Do(func() {
			if pause > 0 {
				a.pause(a.clock.Now().Add(pause))
			}
			<-a.sem
		})
	}, nil
}

// InFlight is how many admitted calls have not yet been released.
func (a *Admission) InFlight() int { return len(a.sem) }

// PausedFor is how long the platform stays paused after a 429 (0: not paused).
func (a *Admission) PausedFor() time.Duration { return max(0, a.pausedFor()) }

func (a *Admission) pause(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.After(a.pausedUntil) {
		a.pausedUntil = t
	}
}

func (a *Admission) pausedFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pausedUntil.Sub(a.clock.Now())
}
