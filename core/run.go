package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// errSuperseded marks a target a newer rotation took over before this one sent to it.
var errSuperseded = errors.New("superseded")

// targetRun is one target's pass through the pipeline: claim, record, send (retried), verify
// (polled), finish. Its fields are its own goroutine's.
type targetRun struct {
	r        *run
	w        work
	p        Platform
	tc       TargetClaim
	scrub    *Scrubber
	attempts int // continues across resumes and retries
	// yctx ends when a newer rotation takes the target over: waits, sleeps and polls stop at
	// once, but a write in flight is never cut short (it could still be applied).
	yctx context.Context

	// outcome
	receipt  any  // what Send returned for Verify
	sent     bool // a send succeeded: the vendor holds this credential
	ver      Verification
	err      error
	retry    bool
	yieldMsg string
}

func (e *Engine) runTarget(ctx context.Context, r *run, w work) {
	yctx, yield := context.WithCancel(ctx)
	defer yield()
	r.mu.Lock()
	r.targets[w.target.Name] = yield
	startSuperseded := r.super[w.target.Name]
	tr := &targetRun{r: r, w: w, p: e.platforms[w.target.Platform], scrub: r.scrub, yctx: yctx,
		attempts: r.rot.Targets[w.idx].Attempts,
		tc:       TargetClaim{Source: r.rot.Source, Target: w.target.Name, Seq: r.rot.Seq, RotationID: r.rot.ID}}
	r.mu.Unlock()

	defer func() {
		if rec := recover(); rec != nil {
			e.log.Error("panic in target", zap.String("rotation_id", r.rot.ID), zap.String("target", w.target.Name),
				zap.String("panic", tr.scrub.String(fmt.Sprint(rec))), zap.String("stack", tr.scrub.String(string(debug.Stack()))))
			tr.err, tr.retry = &Error{Code: CodeInternal, Message: "internal error in credsync (see the gateway log)"}, false
		}
		r.mu.Lock()
		delete(r.targets, w.target.Name)
		if r.super[w.target.Name] && tr.err != nil && !tr.sent {
			tr.err = errSuperseded
		}
		r.mu.Unlock()
		e.finishTarget(ctx, tr)
	}()
	if startSuperseded {
		tr.err = errSuperseded
		return
	}
	k := e.send(ctx, tr, yield)
	if k == nil {
		return
	}
	hold := e.verify(ctx, tr, k)
	k.end(ctx, hold)
}

// send is the write, retried by the policy: each attempt claims the target under a holder of
// its own, records the attempt, and sends under the claim's fence. It returns the keeper of the
// claim the successful send holds (verification keeps it), or nil with tr.err set.
func (e *Engine) send(ctx context.Context, tr *targetRun, yield func()) *keeper {
	policy := e.policyFor(tr)
	// Built here, not kept from the submit: Build is pure, and it accepted this credential
	// for this target before the rotation was.
	req, err := tr.w.target.Adapter.Build(tr.r.cred)
	if err != nil {
		tr.err, tr.retry = &Error{Code: CodeInternal, Message: "the request could not be built again, although it was when the rotation was accepted: " +
			tr.scrub.String(err.Error())}, false
		return nil
	}
	for n := 1; ; n++ {
		// A pause holds the target before any call starts (a call in flight is never stopped).
		if err := e.holdWhilePaused(tr.yctx, tr); err != nil {
			if tr.err == nil {
				tr.err, tr.retry = err, true
			}
			return nil
		}
		tr.tc.Holder = newHolder(e.cfg.Owner)
		asked, err := e.claim(tr.yctx, tr.tc, tr.p.Timeout)
		if err != nil {
			if tr.err == nil || errors.Is(err, errSuperseded) {
				tr.err, tr.retry = err, !errors.Is(err, errSuperseded)
			}
			return nil
		}
		k := e.keep(ctx, tr.tc, tr.p.Timeout, asked, yield)
		// Written once the target is claimed and before the call: the store knows the call
		// may be in flight, and counts it. The outcome is written by finishTarget.
		tr.attempts++
		e.updateTarget(ctx, tr.r, tr.w.idx, func(t *TargetResult) {
			if t.StartedAt == nil {
				now := e.now()
				t.StartedAt = &now
			}
			t.Status, t.Attempts = TargetRunning, tr.attempts
		})
		started := e.clock.Now()
		res, retry, err := tr.w.target.Adapter.Send(k.fence, req)
		e.cfg.Observer.VendorCall(tr.p.Vendor, tr.p.Name, "update", CallClass(err), e.clock.Now().Sub(started))
		if err == nil {
			tr.sent, tr.err, tr.retry = true, nil, false
			if !res.Check {
				tr.ver = Verification{Verified: res.Verified}
				k.end(ctx, 0)
				return nil
			}
			tr.receipt = res.Receipt
			k.settled()
			return k
		}
		if lapsed(err) || lapsed(k.fence.Err()) {
			err, retry = &Error{Code: CodeCanceled, Retryable: true, Message: "the target claim could not be kept (is the store answering?); the call was stopped"}, true
		}
		k.end(ctx, landingHold(err, time.Now(), tr.p.Timeout))
		tr.err, tr.retry = err, retry
		if k.wanted() || ctx.Err() != nil {
			return nil
		}
		wait, again := policy.Next(n, err, retry, timeLeft(ctx, e.clock.Now()))
		if !again {
			return nil
		}
		e.cfg.Observer.Retry(tr.p.Vendor, tr.p.Name)
		if e.clock.Sleep(tr.yctx, wait) != nil {
			return nil
		}
	}
}

// verify proves the credential just sent works: Verify is called (through the platform's
// admission, by the adapter's HTTP client) until it gives a verdict, transient errors retried by
// the policy, and no slot is held between polls. It stops early when a newer rotation waits for
// the target: the write landed, so the target succeeded, unverified. It returns how long the
// claim must still be held (0: a verification call is only a read).
func (e *Engine) verify(ctx context.Context, tr *targetRun, k *keeper) time.Duration {
	policy := e.policyFor(tr)
	sentAt := e.clock.Now()
	poll, failures := 0, 0
	for {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			tr.ver = Verification{Warning: fmt.Sprintf("the rotation's deadline of %s passed before verification finished; the update itself landed", e.cfg.Deadline)}
			return 0
		case ctx.Err() != nil:
			tr.ver = Verification{Warning: "the gateway stopped before verification finished; the update itself landed"}
			return 0
		case k.wanted() || tr.yctx.Err() != nil:
			tr.yieldMsg = "a newer rotation took this target over before verification finished; it verifies its own credential"
			return 0
		}
		started := e.clock.Now()
		v, retry, err := tr.w.target.Adapter.Verify(tr.yctx, VerifyRequest{Receipt: tr.receipt, Poll: poll, Elapsed: started.Sub(sentAt)})
		e.cfg.Observer.VendorCall(tr.p.Vendor, tr.p.Name, "verify", CallClass(err), e.clock.Now().Sub(started))
		var wait time.Duration
		switch {
		case err == nil && v.Again > 0:
			poll, failures = poll+1, 0
			wait = v.Again
		case err == nil:
			tr.ver = v
			return 0
		default:
			failures++
			if k.wanted() || tr.yctx.Err() != nil {
				continue // say why it stopped
			}
			d, again := policy.Next(failures, err, retry, timeLeft(tr.yctx, e.clock.Now()))
			if !again {
				tr.err, tr.retry = err, retry
				return 0
			}
			e.cfg.Observer.Retry(tr.p.Vendor, tr.p.Name)
			wait = d
		}
		if left := timeLeft(tr.yctx, e.clock.Now()); left >= 0 && wait >= left {
			tr.ver = Verification{Warning: fmt.Sprintf("the rotation's deadline of %s left no time to finish verifying; the update itself landed", e.cfg.Deadline)}
			return 0
		}
		if e.clock.Sleep(tr.yctx, wait) != nil {
			continue
		}
	}
}

// policyFor is a target's retry policy: its platform's, unless its adapter overrides it.
func (e *Engine) policyFor(tr *targetRun) RetryPolicy {
	p := RetryPolicy{MaxAttempts: tr.p.MaxAttempts, Base: e.cfg.Backoff.Base, Max: e.cfg.Backoff.Max, Jitter: e.cfg.Jitter}
	if o, ok := tr.w.target.Adapter.(RetryPolicyOverrider); ok {
		p = o.RetryPolicy(p)
	}
	return p
}

// timeLeft is the time before ctx's deadline, or -1 when it has none.
func timeLeft(ctx context.Context, now time.Time) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(0, dl.Sub(now))
	}
	return -1
}

func (e *Engine) finishTarget(ctx context.Context, tr *targetRun) {
	r, w, err := tr.r, tr.w, tr.err
	interrupted := e.cfg.DurableStore && err != nil && !tr.sent && errors.Is(ctx.Err(), context.Canceled) && e.isClosing()
	var auditOf func(TargetResult) AuditEvent
	if !interrupted {
		auditOf = func(t TargetResult) AuditEvent {
			ev := AuditEvent{Action: "target.finished", Source: r.rot.Source, RotationID: r.rot.ID, Target: t.Name, Status: string(t.Status)}
			if t.Error != nil {
				ev.Detail = t.Error.Code
			}
			return ev
		}
	}
	res := e.writeTarget(ctx, r, w.idx, func(t *TargetResult) {
		now := e.now()
		t.Attempts = tr.attempts
		defer func() {
			// Which source user the target holds now, on a generated rotation.
			if sr := r.rot.SourceRotation; sr != nil {
				t.User = sr.PreviousUser
				if t.Status == TargetSucceeded || sr.PreviousUser == "" {
					t.User = sr.User
				}
			}
		}()
		switch {
		case interrupted:
			// Stopped by shutdown: leave it unfinished for the next start to resume.
			t.Status = TargetPending
		case errors.Is(err, errSuperseded):
			t.Status, t.Verified, t.FinishedAt = TargetSuperseded, false, &now
			t.Error = &Error{Code: CodeSuperseded, Message: "a newer rotation of this source took this target over; this older credential was not sent again"}
		case tr.sent && err != nil && isVerdict(err):
			// The vendor holds the credential and says it does not work.
			t.Status, t.Verified, t.FinishedAt = TargetFailed, false, &now
			t.Error = e.targetError(ctx, err, tr.retry, tr.scrub)
		case tr.sent:
			// The vendor holds this credential: succeeded; verified only on fresh proof.
			t.Status, t.Verified, t.FinishedAt, t.Error = TargetSucceeded, tr.ver.Verified && err == nil, &now, nil
			switch {
			case err != nil:
				t.Warning = "the update landed but could not be verified: " + e.targetError(ctx, err, tr.retry, tr.scrub).Message
			case tr.yieldMsg != "" && !t.Verified:
				t.Warning = tr.yieldMsg
			default:
				t.Warning = tr.scrub.String(tr.ver.Warning)
			}
		case err != nil:
			t.Status, t.Verified, t.FinishedAt = TargetFailed, false, &now
			t.Error = e.targetError(ctx, err, tr.retry, tr.scrub)
		default:
			t.Status, t.Verified, t.Warning, t.FinishedAt = TargetSucceeded, tr.ver.Verified, tr.scrub.String(tr.ver.Warning), &now
		}
	}, auditOf)
	if interrupted {
		e.log.Info("target interrupted by shutdown; it resumes at the next start", zap.String("rotation_id", r.rot.ID), zap.String("target", res.Name))
		return
	}
	e.cfg.Observer.TargetFinished(res.Vendor, res.Platform, res.Status)
	if res.Status == TargetSucceeded && res.Verified {
		e.verifiedByRotation(ctx, r.rot.Source, w.target, r.rot.ID)
	}
	fields := []zap.Field{zap.String("rotation_id", r.rot.ID), zap.String("target", res.Name),
		zap.String("platform", res.Platform), zap.String("vendor", res.Vendor), zap.String("status", string(res.Status)),
		zap.Int("attempts", res.Attempts), zap.Bool("verified", res.Verified)}
	if res.Warning != "" {
		fields = append(fields, zap.String("warning", res.Warning))
	}
	if res.Error != nil {
		fields = append(fields, zap.String("error_code", res.Error.Code), zap.String("error", res.Error.Message),
			zap.Bool("retryable", res.Error.Retryable), zap.Int("vendor_status", res.Error.VendorStatus))
		e.log.Warn("target failed", fields...)
	} else {
		e.log.Info("target "+string(res.Status), fields...)
	}
}

// isVerdict reports whether a verification error is the vendor's verdict that the credential
// does not work, rather than a failure to ask.
func isVerdict(err error) bool {
	ce, ok := asError(err)
	return ok && ce.Code == CodeVerificationFailed
}

// targetError turns whatever an adapter returned into the stored, secret-free error.
func (e *Engine) targetError(ctx context.Context, err error, retry bool, scrub *Scrubber) *Error {
	var out Error
	if ce, ok := asError(err); ok {
		out = *ce
	} else {
		out = Error{Code: CodeInternal, Message: err.Error()}
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && (out.Code == CodeTimeout || out.Code == CodeCanceled || out.Code == CodeInternal):
		out.Code = CodeDeadlineExceeded
		out.Message = fmt.Sprintf("the rotation's deadline of %s passed before this target finished (last: %s)", e.cfg.Deadline, out.Message)
		retry = true
	case errors.Is(ctx.Err(), context.Canceled):
		out.Code = CodeCanceled
		out.Message = "the gateway stopped working on this target before it finished; retry the rotation"
		retry = true
	}
	out.Retryable = retry
	out.RetryAfter, out.NotSent, out.Answered, out.InFlightUntil = 0, false, false, time.Time{}
	out.Message = scrub.String(out.Message)
	return &out
}
