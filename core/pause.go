package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Emergency pause (DESIGN.md): everything, one platform or one source. While a pause covers a
// target, rotations are still accepted but no new vendor call to that target starts: the target
// stays pending with paused true; calls already in flight finish. Pauses live in the store, so
// they hold across restarts and replicas; each replica reads them every pauseRefresh.

// Pause is one pause.
type Pause struct {
	ID        string     `json:"id"`
	Platform  string     `json:"platform,omitempty"` // "" and Source "": everything
	Source    string     `json:"source,omitempty"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	EndedAt   *time.Time `json:"ended_at"`
	EndedBy   string     `json:"ended_by,omitempty"`
}

// Covers reports whether the pause holds target t of source.
func (p Pause) Covers(source string, t *Target) bool {
	return (p.Platform == "" || p.Platform == t.Platform) && (p.Source == "" || p.Source == source)
}

// Scope says what the pause covers, for people.
func (p Pause) Scope() string {
	switch {
	case p.Platform != "" && p.Source != "":
		return fmt.Sprintf("platform %s for source %s", p.Platform, p.Source)
	case p.Platform != "":
		return "platform " + p.Platform
	case p.Source != "":
		return "source " + p.Source
	}
	return "everything"
}

// pauseRefresh is how often a replica reads the pauses from the store (others may have
// started or ended one).
const pauseRefresh = time.Second

// pauses is a replica's view of the active pauses.
type pauses struct {
	mu     sync.Mutex
	active []Pause
	read   time.Time
}

func (ps *pauses) set(active []Pause) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.active, ps.read = active, time.Now()
}

// covering returns the first active pause covering the target, if any.
func (ps *pauses) covering(source string, t *Target) (Pause, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.active {
		if p.Covers(source, t) {
			return p, true
		}
	}
	return Pause{}, false
}

// PausedTarget returns the active pause (as this replica last read them) covering the target
// of source, if any.
func (e *Engine) PausedTarget(source, target string) (Pause, bool) {
	src, ok := e.sources[source]
	if !ok {
		return Pause{}, false
	}
	t := src.Target(target)
	if t == nil {
		return Pause{}, false
	}
	return e.pauses.covering(source, t)
}

func (ps *pauses) coversSource(source string) (Pause, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.active {
		if p.Platform == "" && (p.Source == "" || p.Source == source) {
			return p, true
		}
	}
	return Pause{}, false
}

// refreshPauses reads the active pauses from the store.
func (e *Engine) refreshPauses(ctx context.Context) {
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	active, err := e.store.ListPauses(sctx, true)
	if err != nil {
		e.log.Warn("store: read pauses; the last ones read still hold", zap.Error(err))
		return
	}
	e.pauses.set(active)
	e.cfg.Observer.Paused(len(active))
}

// pauseLoop is the service that keeps the replica's view of pauses current.
func (e *Engine) pauseLoop() {
	defer e.bg.Done()
	tick := time.NewTicker(pauseRefresh)
	defer tick.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
			e.refreshPauses(e.ctx)
		}
	}
}

// PauseRequest asks for a pause.
type PauseRequest struct {
	Platform, Source, Reason, Actor string
}

// StartPause records a pause; it holds from now on, on every replica within pauseRefresh.
func (e *Engine) StartPause(ctx context.Context, req PauseRequest) (Pause, error) {
	var problems []Problem
	if strings.TrimSpace(req.Reason) == "" {
		problems = append(problems, Problem{Field: "reason", Message: "is required: say why, for whoever ends it"})
	}
	if req.Platform != "" {
		if _, ok := e.platforms[req.Platform]; !ok {
			problems = append(problems, Problem{Field: "platform", Message: fmt.Sprintf("no platform %q is configured", req.Platform)})
		}
	}
	if req.Source != "" {
		if _, ok := e.sources[req.Source]; !ok {
			problems = append(problems, Problem{Field: "source", Message: fmt.Sprintf("no source %q is configured", req.Source)})
		}
	}
	if len(problems) > 0 {
		return Pause{}, &InputError{Message: "invalid pause", Problems: problems}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	now := e.now()
	p := Pause{ID: fmt.Sprintf("pause_%x%s", now.UnixMilli(), hex.EncodeToString(b[:])), Platform: req.Platform, Source: req.Source,
		Reason: req.Reason, Actor: req.Actor, CreatedAt: now}
	if err := e.store.CreatePause(ctx, p); err != nil {
		return Pause{}, fmt.Errorf("record pause: %w", err)
	}
	e.refreshPauses(ctx)
	e.log.Warn("pause started: no new vendor call starts where it holds", zap.String("pause_id", p.ID), zap.String("scope", p.Scope()),
		zap.String("reason", p.Reason), zap.String("actor", p.Actor))
	e.audit(AuditEvent{Actor: req.Actor, Action: "pause.started", Source: p.Source, Detail: p.ID + ": " + p.Scope() + ": " + p.Reason})
	e.emit(ctx, Event{Type: EventPauseStarted, Source: p.Source, Detail: p.Scope() + ": " + p.Reason})
	return p, nil
}

// EndPause ends a pause; held targets go on within pauseRefresh.
func (e *Engine) EndPause(ctx context.Context, id, actor string) (Pause, error) {
	p, err := e.store.EndPause(ctx, id, actor, e.now())
	if err != nil {
		if isNotFound(err) {
			return Pause{}, &NotFoundError{What: "pause", Name: id}
		}
		return Pause{}, fmt.Errorf("end pause %s: %w", id, err)
	}
	e.refreshPauses(ctx)
	e.log.Info("pause ended", zap.String("pause_id", p.ID), zap.String("scope", p.Scope()), zap.String("actor", actor))
	e.audit(AuditEvent{Actor: actor, Action: "pause.ended", Source: p.Source, Detail: p.ID + ": " + p.Scope()})
	e.emit(ctx, Event{Type: EventPauseEnded, Source: p.Source, Detail: p.Scope() + ": " + p.Reason})
	return p, nil
}

// Pauses lists the pauses, the active ones only when active.
func (e *Engine) Pauses(ctx context.Context, active bool) ([]Pause, error) {
	ps, err := e.store.ListPauses(ctx, active)
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	return ps, nil
}

// holdWhilePaused waits, before a call to the target starts, while a pause covers it; the
// target shows pending with paused true meanwhile. It returns ctx's error when the wait ends
// (a newer rotation took the target over, the deadline, a shutdown).
func (e *Engine) holdWhilePaused(ctx context.Context, tr *targetRun) error {
	p, ok := e.pauses.covering(tr.r.rot.Source, tr.w.target)
	if !ok {
		return nil
	}
	e.log.Info("target held by a pause", zap.String("rotation_id", tr.r.rot.ID), zap.String("target", tr.w.target.Name),
		zap.String("pause_id", p.ID), zap.String("scope", p.Scope()))
	e.updateTarget(ctx, tr.r, tr.w.idx, func(t *TargetResult) { t.Status, t.Paused = TargetPending, true })
	defer e.updateTarget(context.WithoutCancel(ctx), tr.r, tr.w.idx, func(t *TargetResult) { t.Paused = false })
	for {
		if err := (RealClock{}).Sleep(ctx, pauseRefresh/4); err != nil {
			return err
		}
		if _, ok := e.pauses.covering(tr.r.rot.Source, tr.w.target); !ok {
			return nil
		}
	}
}
