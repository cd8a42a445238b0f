package core

// Executing a rotation: its targets on a bounded worker pool, and the store writes that record
// every state change.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"
)

// run is a rotation this replica is working on.
type run struct {
	mu      sync.Mutex
	rot     *Rotation
	cred    Credential
	scrub   *Scrubber // of cred's secrets
	done    chan struct{}
	cancel  context.CancelFunc
	lost    bool                          // the lease went to another replica: write nothing more
	targets map[string]context.CancelFunc // per running target: yield it to a newer rotation
	super   map[string]bool               // targets a newer local rotation took over
}

// targetsFinished says whether every target has an outcome.
func (r *run) targetsFinished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Outcome(r.rot.Targets).Finished()
}

// finalRotation is what the end of a rotation needs of it, taken under the run's lock: not a
// copy of its targets, which for 100,000 targets would be tens of MB at the moment it ends.
type finalRotation struct {
	ID, Source string
	Status     RotationStatus
	Took       time.Duration
	Errors     string // the first maxLoggedErrors target errors, and how many more
	Event      Event
}

// maxLoggedErrors bounds the target errors the "rotation finished" line carries.
const maxLoggedErrors = 20

func finalOf(rot *Rotation) *finalRotation {
	f := &finalRotation{ID: rot.ID, Source: rot.Source, Status: rot.Status, Event: rotationEvent(rot)}
	if rot.FinishedAt != nil {
		f.Took = rot.FinishedAt.Sub(rot.CreatedAt)
	}
	var errs *multierror.Error
	logged, more := 0, 0
	for _, t := range rot.Targets {
		if t.Error == nil {
			continue
		}
		if logged == maxLoggedErrors {
			more++
			continue
		}
		logged++
		errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.Name, t.Error))
	}
	if err := errs.ErrorOrNil(); err != nil {
		f.Errors = err.Error()
		if more > 0 {
			f.Errors += fmt.Sprintf("(and %d more target errors: GET the rotation with ?target_status=failed)", more)
		}
	}
	return f
}

// work is one target of a rotation to send to. Its request is built again when the target
// starts (Adapter.Build is pure, and was run for every target before the rotation was accepted):
// a rotation of 100,000 targets does not hold 100,000 built requests for its whole life.
type work struct {
	idx    int
	target *Target
}

func (e *Engine) execute(ctx context.Context, r *run, ws []work) {
	defer e.wg.Done()
	defer r.cancel()
	e.cfg.Observer.RotationStarted()
	e.setStatus(ctx, r, func(rot *Rotation) { rot.Status = RotationRunning })

	// A generated rotation first sets its password at the source; if that fails, no target is
	// called.
	if e.stage(ctx, r) {
		fanOut(ws, func(w work) string { return w.target.Platform }, func(p string) int { return e.platforms[p].MaxConcurrency },
			func(w work) { e.runTarget(ctx, r, w) })
	}

	r.mu.Lock()
	lost := r.lost
	r.mu.Unlock()
	interrupted := e.cfg.DurableStore && errors.Is(e.ctx.Err(), context.Canceled) && e.isClosing()
	var final *finalRotation
	if !lost && !interrupted {
		if r.targetsFinished() {
			e.afterTargets(context.WithoutCancel(ctx), r) // the barrier: retire only when every target is verified
		}
		e.setStatus(ctx, r, func(rot *Rotation) {
			if rot.Status = Outcome(rot.Targets); rot.Status.Finished() {
				now := e.now()
				rot.FinishedAt = &now
			}
			final = finalOf(rot)
		})
	}
	bg := context.WithoutCancel(ctx)
	if final != nil && final.Status.Finished() {
		e.finished(bg, final)
		e.cfg.Observer.RotationFinished(final.Status)
	} else {
		e.cfg.Observer.RotationFinished("") // left unfinished: no longer in flight here
	}
	if !lost {
		if err := e.store.ReleaseLease(bg, r.rot.ID, e.cfg.Owner); err != nil {
			e.log.Warn("store: release lease", zap.String("rotation_id", r.rot.ID), zap.Error(err))
		}
	}
	e.mu.Lock()
	delete(e.runs, r.rot.ID)
	e.mu.Unlock()
	close(r.done)
}

// finished records the end of a rotation: the log line, the audit event and, when every target
// succeeded, the deletion of its credential.
func (e *Engine) finished(ctx context.Context, final *finalRotation) {
	fields := []zap.Field{zap.String("rotation_id", final.ID), zap.String("source", final.Source),
		zap.String("status", string(final.Status)), zap.Int64("took_ms", final.Took.Milliseconds())}
	if final.Errors != "" {
		fields = append(fields, zap.String("errors", final.Errors))
	}
	e.log.Info("rotation finished", fields...)
	e.audit(AuditEvent{Action: "rotation.finished", Source: final.Source, RotationID: final.ID, Status: string(final.Status)})
	e.emit(ctx, final.Event)
	if final.Status == RotationSucceeded {
		if err := e.store.DeleteCredential(ctx, final.ID); err != nil {
			e.log.Warn("store: delete credential of a finished rotation", zap.String("rotation_id", final.ID), zap.Error(err))
		}
	}
}

// setStatus applies fn to the rotation and writes its status and finish time; its targets'
// rows are written by their own goroutines (updateTarget), so this is one row whatever the
// fan-out. Only execute calls it, in order. Nothing is written once the lease is lost.
func (e *Engine) setStatus(ctx context.Context, r *run, fn func(*Rotation)) {
	r.mu.Lock()
	fn(r.rot)
	id, status, lost := r.rot.ID, r.rot.Status, r.lost
	var finished *time.Time
	if r.rot.FinishedAt != nil {
		t := *r.rot.FinishedAt
		finished = &t
	}
	r.mu.Unlock()
	if lost {
		return
	}
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.SetRotationStatus(sctx, id, status, finished); err != nil {
		e.log.Error("store: record rotation status", zap.String("rotation_id", id), zap.Error(err))
	}
}

// updateTarget applies fn to one target and writes that target alone. Only the target's own
// goroutine writes its row, so its writes stay in order without holding the rotation's lock
// across the store call.
func (e *Engine) updateTarget(ctx context.Context, r *run, idx int, fn func(*TargetResult)) TargetResult {
	return e.writeTarget(ctx, r, idx, fn, nil)
}

// writeTarget is updateTarget that, when auditOf is set, also appends the audit event auditOf
// makes of the target's new state, in the same store call (Store.FinishTarget).
func (e *Engine) writeTarget(ctx context.Context, r *run, idx int, fn func(*TargetResult), auditOf func(TargetResult) AuditEvent) TargetResult {
	r.mu.Lock()
	fn(&r.rot.Targets[idx])
	t := r.rot.Targets[idx]
	if t.Error != nil {
		c := *t.Error
		t.Error = &c
	}
	lost, id := r.lost, r.rot.ID
	r.mu.Unlock()
	var ev *AuditEvent
	if auditOf != nil {
		a := auditOf(t)
		a.At = e.now()
		ev = &a
	}
	if lost {
		if ev != nil {
			e.audit(*ev) // what this replica saw is still audited; the target row is not its to write
		}
		return t
	}
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	var err error
	if ev != nil {
		err = e.store.FinishTarget(sctx, id, idx, t, *ev)
	} else {
		err = e.store.UpdateTarget(sctx, id, idx, t)
	}
	if err != nil {
		e.log.Error("store: record target state", zap.String("rotation_id", id), zap.String("target", t.Name), zap.Error(err))
	}
	return t
}

// storeCallTimeout bounds a store write that must finish even when its caller was canceled,
// when EngineConfig.StoreTimeout is not set.
const storeCallTimeout = 10 * time.Second

// storeTimeout is EngineConfig.StoreTimeout, or storeCallTimeout.
func (e *Engine) storeTimeout() time.Duration {
	if e.cfg.StoreTimeout > 0 {
		return e.cfg.StoreTimeout
	}
	return storeCallTimeout
}

// storeContext is ctx's values without its cancellation, bounded by the store timeout: for store
// writes that record what already happened and must not be cut off half way.
func (e *Engine) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.storeTimeout())
}

func (e *Engine) audit(ev AuditEvent) {
	if ev.At.IsZero() {
		ev.At = e.now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.storeTimeout())
	defer cancel()
	if err := e.store.AppendAudit(ctx, ev); err != nil {
		e.log.Error("store: append audit event", zap.String("action", ev.Action), zap.String("rotation_id", ev.RotationID), zap.Error(err))
	}
}
