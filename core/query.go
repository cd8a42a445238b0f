package core

// Read views: rotations, the audit trail, sources with each target's last outcome.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Get returns a rotation by id.
func (e *Engine) Get(ctx context.Context, id string) (*Rotation, error) {
	rot, err := e.store.GetRotation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{What: "rotation", Name: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read rotation %s: %w", id, err)
	}
	return rot, nil
}

// GetPage returns a rotation with one page of its targets and its per-status counts: what an
// answer about a rotation holds, bounded whatever the rotation's size.
func (e *Engine) GetPage(ctx context.Context, id string, p TargetPage) (*Rotation, error) {
	rot, err := e.store.GetRotationPage(ctx, id, p)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{What: "rotation", Name: id}
	}
	var ie *InputError
	if err != nil && !errors.As(err, &ie) {
		return nil, fmt.Errorf("read rotation %s: %w", id, err)
	}
	return rot, err
}

// Wait returns the rotation, every target included, once it has finished, or its current state
// when ctx ends first (WaitPage answers with one page of targets).
func (e *Engine) Wait(ctx context.Context, id string) (*Rotation, error) {
	if err := e.waitDone(ctx, id); err != nil {
		return nil, err
	}
	return e.Get(context.WithoutCancel(ctx), id)
}

// WaitPage is Wait answering with the targets page p and the per-status counts.
func (e *Engine) WaitPage(ctx context.Context, id string, p TargetPage) (*Rotation, error) {
	if _, _, err := p.Bounds(); err != nil {
		return nil, err
	}
	if err := e.waitDone(ctx, id); err != nil {
		return nil, err
	}
	return e.GetPage(context.WithoutCancel(ctx), id, p)
}

// waitDone returns once the rotation has finished or ctx ended (nil both times), or when it
// cannot be read. A rotation worked by another replica is polled, its row and counts only.
func (e *Engine) waitDone(ctx context.Context, id string) error {
	bg := context.WithoutCancel(ctx)
	for {
		e.mu.Lock()
		r, ok := e.runs[id]
		e.mu.Unlock()
		if ok {
			select {
			case <-r.done:
			case <-ctx.Done():
				return nil
			}
		}
		rot, err := e.GetPage(bg, id, TargetPage{Limit: 1})
		if err != nil || rot.Status.Finished() {
			return err
		}
		if e.clock.Sleep(ctx, 200*time.Millisecond) != nil {
			return nil
		}
	}
}

// List returns rotations newest first.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]*Rotation, error) {
	if f.Source != "" {
		if _, ok := e.sources[f.Source]; !ok {
			return nil, &NotFoundError{What: "source", Name: f.Source}
		}
	}
	rots, err := e.store.ListRotations(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list rotations: %w", err)
	}
	return rots, nil
}

// Audit returns audit events, newest first.
func (e *Engine) Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	evs, err := e.store.ListAudit(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return evs, nil
}

// Ping checks the store takes a write (Store.Ping) within the store timeout.
func (e *Engine) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.storeTimeout())
	defer cancel()
	return e.store.Ping(ctx)
}

// SourceView is a configured source as GET /v1/sources shows it.
type SourceView struct {
	Name    string       `json:"name"`
	Targets []TargetView `json:"targets"`
	// SourceStatus, for a source credsync rotates itself: active_user, last_rotated_at,
	// next_due_at and the rest, inline.
	*SourceStatus
}

// TargetView is a configured target and its last outcome.
type TargetView struct {
	Name     string           `json:"name"`
	Platform string           `json:"platform"`
	Vendor   string           `json:"vendor"`
	Accepts  []CredentialType `json:"accepts"`
	Last     *LastOutcome     `json:"last_rotation"`
	// Paused is the pause that holds the target now, if any.
	Paused *Pause `json:"paused,omitempty"`
	// Health is the target's last check (verify_every) or verified rotation; absent for a
	// target without verify_every.
	Health *TargetHealth `json:"health,omitempty"`
	// VerifyEvery is its check's schedule, e.g. "6h0m0s"; absent when it has none.
	VerifyEvery string `json:"verify_every,omitempty"`
}

// LastOutcome is a target's part of the newest rotation that reached it.
type LastOutcome struct {
	RotationID string       `json:"rotation_id"`
	Status     TargetStatus `json:"status"`
	Verified   bool         `json:"verified"`
	FinishedAt *time.Time   `json:"finished_at"`
	Error      *Error       `json:"error"`
}

// LastOutcomeOf is the last outcome a target's finished state in rotation id says.
func LastOutcomeOf(id string, t TargetResult) LastOutcome {
	return LastOutcome{RotationID: id, Status: t.Status, Verified: t.Verified, FinishedAt: t.FinishedAt, Error: t.Error}
}

// SourceNames are the configured sources' names, in configuration order.
func (e *Engine) SourceNames() []string { return append([]string(nil), e.order...) }

// Sources lists the configured sources with each target's last finished outcome: one read of
// the store's last outcomes (kept on write), so it costs what it shows whatever the history.
func (e *Engine) Sources(ctx context.Context) ([]SourceView, error) {
	last, err := e.store.LastOutcomes(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the targets' last outcomes: %w", err)
	}
	healths, err := e.store.TargetHealths(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the targets' health: %w", err)
	}
	out := make([]SourceView, 0, len(e.order))
	for _, name := range e.order {
		src := e.sources[name]
		v := SourceView{Name: name, Targets: make([]TargetView, 0, len(src.Targets))}
		if v.SourceStatus, err = e.sourceStatus(ctx, src); err != nil {
			return nil, err
		}
		for _, t := range src.Targets {
			tv := TargetView{Name: t.Name, Platform: t.Platform, Vendor: t.Vendor, Accepts: t.Adapter.Accepts()}
			if lo, ok := last[name][t.Name]; ok {
				tv.Last = &lo
			}
			if p, ok := e.pauses.covering(name, t); ok {
				tv.Paused = &p
			}
			if t.VerifyEvery > 0 {
				tv.VerifyEvery = t.VerifyEvery.String()
				h, ok := healths[name][t.Name]
				if !ok {
					h = TargetHealth{Status: HealthUnknown, Message: "not checked yet"}
				}
				tv.Health = &h
			}
			v.Targets = append(v.Targets, tv)
		}
		out = append(out, v)
	}
	return out, nil
}
