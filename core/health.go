package core

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Re-verification and drift (DESIGN.md): a target with verify_every runs the same non-mutating
// check as credsync check on that schedule, on one replica (the named lease "verify"), through
// its platform's admission like every vendor call. Its health is the last result: healthy,
// unhealthy or unknown. A verified rotation makes it healthy too. A target that was healthy and
// now fails emits target.drift; once it passes again, target.recovered.

// HealthStatus is a target's health.
type HealthStatus string

// Health statuses.
const (
	HealthHealthy   HealthStatus = "healthy"   // the check passed: the platform holds a credential that works, as far as it can tell
	HealthUnhealthy HealthStatus = "unhealthy" // the check failed: the token is refused, the object is gone or changed, or the held credential fails
	HealthUnknown   HealthStatus = "unknown"   // the check cannot tell (Databrain has no read; the platform did not answer)
)

// TargetHealth is a target's last check (or verified rotation).
type TargetHealth struct {
	Status    HealthStatus `json:"status"`
	CheckedAt time.Time    `json:"checked_at,omitzero"` // absent: never checked
	Message   string       `json:"message"`
	// State is the last definite status (healthy or unhealthy): what a new result is compared
	// with for drift and recovery; an unknown result keeps it. Stored, not shown.
	State HealthStatus `json:"-"`
}

func (h HealthStatus) String() string { return string(h) }

// HealthOf is the health a check result says. A platform that did not answer says nothing
// about the credential: unknown (the previous state holds), not drift.
func HealthOf(r CheckResult) HealthStatus {
	switch r.Status {
	case CheckReady:
		if r.CredentialFails {
			return HealthUnhealthy
		}
		return HealthHealthy
	case CheckUnauthorized, CheckNotFound, CheckMismatch:
		return HealthUnhealthy
	default:
		return HealthUnknown
	}
}

// verifyLease is the named lease of the replica running the scheduled checks.
const verifyLease = "verify"

// DefaultVerifyTick is how often the verify service looks for checks that fell due.
const DefaultVerifyTick = time.Second

// verifyLoop is the service that runs the scheduled checks.
func (e *Engine) verifyLoop() {
	defer e.bg.Done()
	scheduled := false
	for _, s := range e.sources {
		for _, t := range s.Targets {
			scheduled = scheduled || t.VerifyEvery > 0
		}
	}
	if !scheduled {
		return
	}
	tick := time.NewTicker(e.cfg.VerifyTick)
	defer tick.Stop()
	defer func() { // hand the checks over to another replica at once
		sctx, cancel := e.storeContext(context.Background())
		defer cancel()
		_ = e.store.ReleaseNamedLease(sctx, verifyLease, e.cfg.Owner)
	}()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
			e.verifyTick(e.ctx)
		}
	}
}

// dueCheck is one target whose check fell due.
type dueCheck struct {
	source string
	t      *Target
	prev   TargetHealth
}

// verifyTick runs, on the replica holding the verify lease, every check that fell due: a target
// whose last check (or verified rotation) is verify_every old or more. A target a pause covers,
// or of a source with a rotation in progress (its state is changing), waits for a later tick.
func (e *Engine) verifyTick(ctx context.Context) {
	ok, err := e.store.AcquireNamedLease(ctx, verifyLease, e.cfg.Owner, sourceLeaseTTL)
	if err != nil || !ok {
		return
	}
	healths, err := e.store.TargetHealths(ctx)
	if err != nil {
		e.log.Warn("store: read target health; the checks wait for the next tick", zap.Error(err))
		return
	}
	now := e.now()
	var due []dueCheck
	busy := map[string]bool{}
	for _, name := range e.order {
		for _, t := range e.sources[name].Targets {
			if t.VerifyEvery <= 0 {
				continue
			}
			prev, seen := healths[name][t.Name]
			if seen && now.Sub(prev.CheckedAt) < t.VerifyEvery {
				continue
			}
			if _, paused := e.pauses.covering(name, t); paused {
				continue
			}
			b, known := busy[name]
			if !known {
				b = e.rotating(ctx, name)
				busy[name] = b
			}
			if !b {
				due = append(due, dueCheck{source: name, t: t, prev: prev})
			}
		}
	}
	if len(due) == 0 {
		e.observeHealth(ctx)
		return
	}
	fanOut(due, func(d dueCheck) string { return d.t.Platform }, func(p string) int { return e.platforms[p].MaxConcurrency }, func(d dueCheck) {
		timeout := e.platforms[d.t.Platform].Timeout
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res := checkOne(cctx, d.t)
		cancel()
		if ctx.Err() != nil || e.rotating(ctx, d.source) {
			return // stopping, or a rotation started meanwhile: its outcome says more than this check
		}
		e.recordHealth(ctx, d.source, d.t, d.prev, HealthOf(res), res.Message, "")
	})
	e.observeHealth(ctx)
}

// rotating reports whether source has a rotation in progress (on any replica); a store error
// counts as yes, so that a check is not recorded against a state it cannot see.
func (e *Engine) rotating(ctx context.Context, source string) bool {
	for _, st := range []RotationStatus{RotationRunning, RotationPending} {
		rs, err := e.store.ListRotations(ctx, ListFilter{Source: source, Status: st, Limit: 1})
		if err != nil || len(rs) > 0 {
			return true
		}
	}
	return false
}

// recordHealth stores a target's new health and emits target.drift when it went from healthy
// to unhealthy, target.recovered from unhealthy to healthy. rotationID names the rotation that
// verified it, if that is where the result comes from.
func (e *Engine) recordHealth(ctx context.Context, source string, t *Target, prev TargetHealth, status HealthStatus, msg, rotationID string) {
	h := TargetHealth{Status: status, CheckedAt: e.now(), Message: msg, State: prev.State}
	if status != HealthUnknown {
		h.State = status
	}
	if err := e.store.PutTargetHealth(ctx, source, t.Name, h); err != nil {
		e.log.Warn("store: record target health", zap.String("source", source), zap.String("target", t.Name), zap.Error(err))
		return
	}
	fields := []zap.Field{zap.String("source", source), zap.String("target", t.Name), zap.String("platform", t.Platform),
		zap.String("health", string(status)), zap.String("message", msg)}
	switch {
	case prev.State == HealthHealthy && h.State == HealthUnhealthy:
		e.log.Warn("target drifted: its check fails where it passed", fields...)
		e.emit(ctx, Event{Type: EventTargetDrift, Source: source, RotationID: rotationID,
			Targets: []EventTarget{{Name: t.Name, Platform: t.Platform, Status: string(status), Error: &EventError{Code: "drift", Message: msg}}},
			Detail:  fmt.Sprintf("%s on %s: %s", t.Name, t.Platform, msg)})
	case prev.State == HealthUnhealthy && h.State == HealthHealthy:
		e.log.Info("target recovered: its check passes again", fields...)
		e.emit(ctx, Event{Type: EventTargetRecovered, Source: source, RotationID: rotationID,
			Targets: []EventTarget{{Name: t.Name, Platform: t.Platform, Status: string(status)}},
			Detail:  fmt.Sprintf("%s on %s: %s", t.Name, t.Platform, msg)})
	default:
		e.log.Debug("target checked", fields...)
	}
}

// verifiedByRotation records that a rotation verified target t: it is healthy now.
func (e *Engine) verifiedByRotation(ctx context.Context, source string, t *Target, rotationID string) {
	if t.VerifyEvery <= 0 {
		return // nobody asked for its health
	}
	prev, _, err := e.store.GetTargetHealth(ctx, source, t.Name)
	if err != nil {
		e.log.Warn("store: read target health", zap.String("source", source), zap.String("target", t.Name), zap.Error(err))
		return
	}
	e.recordHealth(ctx, source, t, prev, HealthHealthy, "verified by rotation "+rotationID, rotationID)
}

// observeHealth tells the observer how many targets are in each health, per platform.
func (e *Engine) observeHealth(ctx context.Context) {
	healths, err := e.store.TargetHealths(ctx)
	if err != nil {
		return
	}
	counts := map[string]map[HealthStatus]int{}
	for _, name := range e.order {
		for _, t := range e.sources[name].Targets {
			if t.VerifyEvery <= 0 {
				continue
			}
			if counts[t.Platform] == nil {
				counts[t.Platform] = map[HealthStatus]int{HealthHealthy: 0, HealthUnhealthy: 0, HealthUnknown: 0}
			}
			st := HealthUnknown
			if h, ok := healths[name][t.Name]; ok {
				st = h.Status
			}
			counts[t.Platform][st]++
		}
	}
	for p, c := range counts {
		e.cfg.Observer.Health(p, c)
	}
}
