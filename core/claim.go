package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A target claim is how credsync keeps the invariant that the last write a vendor applies
// carries the newest credential: one holder at a time may write to a target, a newer rotation
// takes the target over only once no older call to it can still land, and an older rotation
// never writes after a newer one claimed or asked for the target.
//
// The claim covers every moment an older call may still land: while the call waits for its
// platform's admission (a slot, a 429 pause, the rate limit), while it is in flight, and after a
// timeout, a cut connection or a crash until that call's timeout has passed. Credsync assumes
// that a vendor applies a request within the platform's timeout of its start or not at all:
// set platforms.<name>.timeout to at least the vendor's own request timeout.
//
//   - A granted claim lives claimTTL(timeout); a keeper renews it every timeout/4 while the
//     holder works (sends, waits), so a replica that dies leaves a claim that outlives any call
//     it started by at least the grace. Once the write has been answered, only reads follow
//     (verification): the claim is then renewed for settledTTL only, so that a replica dying
//     while it verifies holds the target up for seconds, not for the write's window.
//   - Sends run under a fence: a context that ends when the claim, as last renewed, could no
//     longer cover a call started now (valid until - timeout - grace). A renewal that fails for
//     long enough stops new calls instead of letting one start uncovered.
//   - A call that failed without an answer (timeout, reset, cancel) releases the claim only
//     after the time that call may still land (InFlightUntil, else timeout) plus the grace.
//   - Every attempt has its own holder, so not even a rotation's own retry, nor the same
//     rotation resumed after a restart, overlaps a call that may still land.

// claimGrace is added to every time a call may still land: network slack and clock skew
// between replicas and the database.
const claimGrace = time.Second

// claimTTL is how long a claim lives past its grant or last renewal while a write may be in
// flight: a call started just before the holder died lands within timeout, and the last
// renewal was at most renewEvery ago.
func claimTTL(timeout time.Duration) time.Duration { return timeout + timeout/2 + claimGrace }

// renewEvery is the keeper's period while a write may be in flight. The fence (the claim's
// validity minus timeout and grace) is timeout/2 past the last renewal: two periods.
func renewEvery(timeout time.Duration) time.Duration { return max(10*time.Millisecond, timeout/4) }

// settledTTL is a claim's life once its write was answered and only verification reads
// follow; it is renewed every settledTTL/3.
const settledTTL = 3 * time.Second

// claimPoll is how often a claim busy with another holder is asked for again.
const claimPoll = 100 * time.Millisecond

// newHolder names one attempt's hold on a target.
func newHolder(owner string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return owner + "/" + hex.EncodeToString(b[:])
}

// claim waits until the store grants tc the target (it returns when the grant was asked, the
// start of its lifetime) or says a newer rotation has it (errSuperseded). The store call is not
// canceled with ctx: a claim whose commit lands while its caller gives up would block the
// target until it expires. For the same reason a claim that failed is released, since it may
// have landed all the same; nothing was sent under it, so at once.
func (e *Engine) claim(ctx context.Context, tc TargetClaim, timeout time.Duration) (time.Time, error) {
	for {
		asked := time.Now()
		sctx, cancel := e.storeContext(ctx)
		res, err := e.store.ClaimTarget(sctx, tc, claimTTL(timeout))
		cancel()
		if err != nil {
			e.releaseClaim(ctx, tc, 0)
			return time.Time{}, fmt.Errorf("store: claim target: %w", err)
		}
		switch res {
		case ClaimGranted:
			return asked, nil
		case ClaimSuperseded:
			return time.Time{}, errSuperseded
		}
		// Real time, not the engine's clock: this waits for another holder, not a backoff.
		if err := (RealClock{}).Sleep(ctx, claimPoll); err != nil {
			return time.Time{}, err
		}
	}
}

// releaseClaim ends tc's claim, hold from now (see Store.ReleaseTarget). It is not canceled
// with ctx: a release cut short would block the target until the claim expires.
func (e *Engine) releaseClaim(ctx context.Context, tc TargetClaim, hold time.Duration) {
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.ReleaseTarget(sctx, tc, hold); err != nil {
		e.log.Warn("store: release target claim; it expires on its own", zap.String("rotation_id", tc.RotationID),
			zap.String("target", tc.Target), zap.Error(err))
	}
}

// keeper renews a granted claim while its holder works and tells the holder when to stop.
type keeper struct {
	e       *Engine
	tc      TargetClaim
	timeout time.Duration
	fence   *fence
	yield   func() // a newer rotation waits for the target, or the claim was lost

	mu    sync.Mutex
	state ClaimResult

	settle chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

// keep starts renewing tc, granted at asked. parent bounds the fence that sends run under.
func (e *Engine) keep(parent context.Context, tc TargetClaim, timeout time.Duration, asked time.Time, yield func()) *keeper {
	k := &keeper{e: e, tc: tc, timeout: timeout, yield: yield, state: ClaimGranted,
		settle: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	k.fence = newFence(parent, k.fenceAt(asked))
	go k.run()
	return k
}

// fenceAt is the last moment a call may start under a claim granted or renewed at t.
func (k *keeper) fenceAt(t time.Time) time.Time {
	return t.Add(claimTTL(k.timeout) - k.timeout - claimGrace)
}

func (k *keeper) run() {
	defer close(k.done)
	ttl, period := claimTTL(k.timeout), renewEvery(k.timeout)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.settle:
			// From the next renewal on, the claim lives settledTTL. No write now: until then
			// the claim lasts what it was last given, at most timeout/4 longer than needed.
			if settledTTL < ttl {
				ttl, period = settledTTL, min(period, settledTTL/3)
				tick.Reset(period)
			}
			continue
		case <-tick.C:
		}
		asked := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), min(k.e.storeTimeout(), ttl))
		res, err := k.e.store.RenewTargetClaim(ctx, k.tc, ttl)
		cancel()
		if err != nil {
			// Not renewed: the fence stays where it was, so calls stop starting before the
			// claim could lapse. The next tick tries again.
			k.e.log.Warn("store: renew target claim", zap.String("rotation_id", k.tc.RotationID),
				zap.String("target", k.tc.Target), zap.Error(err))
			continue
		}
		switch res {
		case ClaimGranted, ClaimSuperseded:
			k.fence.extend(k.fenceAt(asked))
		case ClaimLost:
			k.fence.close(errClaimLapsed)
		}
		if res != ClaimGranted {
			k.mu.Lock()
			first := k.state == ClaimGranted
			k.state = res
			k.mu.Unlock()
			if first {
				k.yield()
			}
		}
	}
}

// settled says the write was answered: no call of this holder can land any more, only reads
// follow, so the claim is renewed for settledTTL from then on. The fence is
// closed: nothing more may be written under this claim.
func (k *keeper) settled() {
	k.fence.close(context.Canceled)
	select {
	case k.settle <- struct{}{}:
	default:
	}
}

// wanted reports whether a newer rotation waits for the target (or the claim was lost).
func (k *keeper) wanted() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state != ClaimGranted
}

// end stops renewing and releases the claim, hold from now.
func (k *keeper) end(ctx context.Context, hold time.Duration) {
	close(k.stop)
	<-k.done
	k.fence.release()
	k.mu.Lock()
	lost := k.state == ClaimLost
	k.mu.Unlock()
	if !lost {
		k.e.releaseClaim(ctx, k.tc, hold)
	}
}

// landingHold is how long a claim must still be held after a failed call: nothing when the
// vendor answered (the call is over) or the request never left, otherwise until the call can no
// longer land, plus the grace.
func landingHold(err error, now time.Time, timeout time.Duration) time.Duration {
	ce, ok := asError(err)
	switch {
	case ok && (ce.VendorStatus != 0 || ce.NotSent || ce.Answered):
		return 0
	case ok && !ce.InFlightUntil.IsZero():
		return max(0, ce.InFlightUntil.Sub(now)) + claimGrace
	default:
		return timeout + claimGrace
	}
}
