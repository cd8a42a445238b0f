package core

// Recovery: leases, orphaned rotations of dead replicas, purging, and resuming what a crash
// interrupted.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

func (e *Engine) loop() {
	defer e.bg.Done()
	renew := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer renew.Stop()
	orphans := time.NewTicker(e.cfg.LeaseTTL / 2)
	defer orphans.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-renew.C:
			e.renewLeases()
		case <-orphans.C:
			e.claimOrphans()
		}
	}
}

// purgeLoop is the service that deletes what is past its retention, hourly, on its own
// goroutine: a long purge never delays lease renewals.
func (e *Engine) purgeLoop() {
	defer e.bg.Done()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		e.purge()
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *Engine) renewLeases() {
	e.mu.Lock()
	runs := make(map[string]*run, len(e.runs))
	for id, r := range e.runs {
		runs[id] = r
	}
	e.mu.Unlock()
	for id, r := range runs {
		ok, err := e.store.RenewLease(e.ctx, id, e.cfg.Owner, e.cfg.LeaseTTL)
		if err != nil {
			e.log.Warn("store: renew lease", zap.String("rotation_id", id), zap.Error(err))
			continue
		}
		if !ok {
			e.log.Warn("lease lost: another replica took this rotation over; stopping here", zap.String("rotation_id", id))
			r.mu.Lock()
			r.lost = true
			r.mu.Unlock()
			r.cancel()
		}
	}
}

func (e *Engine) claimOrphans() {
	if e.isClosing() {
		return
	}
	ids, err := e.store.ClaimOrphans(e.ctx, e.cfg.Owner, e.cfg.LeaseTTL, 16)
	if err != nil {
		e.log.Warn("store: claim orphaned rotations", zap.Error(err))
		return
	}
	for _, id := range ids {
		e.resume(e.ctx, id)
	}
}

func (e *Engine) purge() {
	n, err := e.store.PurgeCredentials(e.ctx, e.clock.Now().Add(-e.cfg.Retention))
	if err != nil {
		e.log.Warn("store: purge expired credentials", zap.String("error", err.Error()))
	} else if n > 0 {
		e.log.Info("purged credentials past their retention", zap.Int("rotations", n))
	}
	// History and audit: small batches with a pause between, so writers never stall behind
	// a long delete.
	for _, job := range []struct {
		what  string
		purge func(context.Context, time.Time, int) (int, error)
		keep  time.Duration
	}{
		{"rotations", e.store.PurgeHistory, e.cfg.HistoryRetention},
		{"audit events", e.store.PurgeAudit, e.cfg.AuditRetention},
	} {
		total := 0
		for e.ctx.Err() == nil {
			sctx, cancel := e.storeContext(e.ctx)
			n, err := job.purge(sctx, e.clock.Now().Add(-job.keep), purgeBatch)
			cancel()
			if err != nil {
				e.log.Warn("store: purge "+job.what+" past their retention", zap.String("error", err.Error()))
				break
			}
			total += n
			if n < purgeBatch {
				break
			}
			if (RealClock{}).Sleep(e.ctx, purgePause) != nil {
				break
			}
		}
		if total > 0 {
			e.log.Info("purged "+job.what+" past their retention", zap.Int("count", total), zap.Duration("retention", job.keep))
		}
	}
}

// purgeBatch is how many rows one purge transaction deletes, and purgePause the pause between.
const (
	purgeBatch = 500
	purgePause = 50 * time.Millisecond
)

// resumeAll takes every unfinished rotation whose lease this replica can acquire.
func (e *Engine) resumeAll(ctx context.Context) error {
	for _, st := range []RotationStatus{RotationRunning, RotationPending} {
		before := ""
		for {
			rots, err := e.store.ListRotations(ctx, ListFilter{Status: st, Before: before, Limit: 200})
			if err != nil {
				return fmt.Errorf("list unfinished rotations: %w", err)
			}
			for _, r := range rots {
				ok, err := e.store.AcquireLease(ctx, r.ID, e.cfg.Owner, e.cfg.LeaseTTL)
				if err != nil {
					return fmt.Errorf("lease rotation %s: %w", r.ID, err)
				}
				if ok {
					e.resume(ctx, r.ID)
				}
			}
			if len(rots) < 200 {
				break
			}
			before = rots[len(rots)-1].ID
		}
	}
	return nil
}

// resume continues a rotation this replica holds the lease of.
func (e *Engine) resume(ctx context.Context, id string) {
	e.mu.Lock()
	_, active := e.runs[id]
	e.mu.Unlock()
	if active {
		return
	}
	rot, err := e.store.GetRotation(ctx, id)
	if err != nil {
		e.log.Error("resume: read rotation", zap.String("rotation_id", id), zap.Error(err))
		return
	}
	if rot.Status.Finished() {
		_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner)
		return
	}
	cred, cerr := e.openCredential(ctx, id)
	src := e.sources[rot.Source]
	now := e.now()
	var slots []slot
	for i, tr := range rot.Targets {
		if !tr.Status.Finished() {
			slots = append(slots, slot{idx: i, name: tr.Name})
		}
	}
	var ws []work
	if cerr != nil {
		for _, sl := range slots {
			tr := &rot.Targets[sl.idx]
			tr.Status, tr.FinishedAt = TargetFailed, &now
			tr.Error = &Error{Code: CodeInterrupted, Retryable: true, Message: "the gateway restarted before this target finished and holds no credential to resume with (" + cerr.Error() + "): submit the rotation again"}
		}
	} else {
		var unbuilt []unbuiltTarget
		ws, unbuilt = buildWork(src, slots, cred)
		for _, u := range unbuilt {
			tr := &rot.Targets[u.idx]
			tr.Status, tr.FinishedAt = TargetFailed, &now
			if u.removed {
				tr.Error = &Error{Code: CodeTargetRemoved, Message: "the target is no longer in the config; this part of the rotation cannot be resumed"}
			} else {
				tr.Error = &Error{Code: CodeInternal, Message: "rebuilding the request on resume failed: " + NewScrubber(cred.Secrets()...).String(u.err.Error())}
			}
		}
		for _, w := range ws {
			rot.Targets[w.idx].Status = TargetPending
		}
	}
	// The targets settled here (removed, no credential) are written now; execute writes only
	// the rotation's status and the rows of the targets it runs.
	if err := e.store.UpdateRotation(ctx, rot); err != nil {
		e.log.Error("resume: record rotation", zap.String("rotation_id", id), zap.Error(err))
		_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner) // taken up again by the next orphan sweep
		return
	}
	e.log.Info("resuming rotation", zap.String("rotation_id", id), zap.String("source", rot.Source), zap.Int("targets", len(ws)))
	e.audit(AuditEvent{Action: "rotation.resumed", Source: rot.Source, RotationID: id, Detail: fmt.Sprintf("%d target(s) to send", len(ws))})
	e.launch(rot, cred, ws)
}

func (e *Engine) openCredential(ctx context.Context, id string) (Credential, error) {
	if e.cfg.Sealer == nil {
		return Credential{}, errors.New("no encryption key is configured")
	}
	sealed, err := e.store.SealedCredential(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Credential{}, errors.New("its credential was not stored or has been deleted")
	}
	if err != nil {
		return Credential{}, fmt.Errorf("read credential: %w", err)
	}
	clear, err := e.cfg.Sealer.Open(sealed, []byte(id))
	if err != nil {
		return Credential{}, fmt.Errorf("decrypt credential (is the key that sealed it still configured?): %w", err)
	}
	cred, err := DecodeCredential(clear)
	if err != nil {
		return Credential{}, fmt.Errorf("decode stored credential: %w", err)
	}
	return cred, nil
}
