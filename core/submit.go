package core

// Submitting work: a rotation, its dry run, and a retry, each built the same way (buildWork).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// SubmitRequest asks for one rotation.
type SubmitRequest struct {
	Source     string
	Credential Credential
	// Targets optionally restricts the rotation to these target names.
	Targets []string
	// Actor names the API token that asked, for the audit trail.
	Actor string
	// IdempotencyKey, when set, makes a repeated submission return the first rotation instead of
	// starting another; RequestHash tells a repeat (same hash) from a conflicting reuse of the key.
	IdempotencyKey string
	RequestHash    string
	// Generate: credsync makes the credential itself (the source has rotation:); Credential and
	// Targets must be empty.
	Generate bool
}

// prepare resolves the targets and builds every request before anything is sent: a credential
// that any selected target cannot take fails the whole request with an *InputError.
func (e *Engine) prepare(req SubmitRequest) (*Source, []work, error) {
	src, ok := e.sources[req.Source]
	if !ok {
		return nil, nil, &NotFoundError{What: "source", Name: req.Source}
	}
	selected := src.Targets
	var problems []Problem
	if len(req.Targets) > 0 {
		seen := map[string]bool{}
		selected = nil
		known := "" // built once: a request may name thousands of unknown targets
		for i, n := range req.Targets {
			t := findTarget(src, n)
			switch {
			case t == nil:
				if known == "" {
					known = targetNames(src)
				}
				problems = append(problems, Problem{Field: fmt.Sprintf("targets[%d]", i), Message: fmt.Sprintf("source %q has no target %q (targets: %s)", src.Name, n, known)})
			case seen[n]:
				problems = append(problems, Problem{Field: fmt.Sprintf("targets[%d]", i), Message: fmt.Sprintf("target %q is listed twice", n)})
			default:
				seen[n] = true
				selected = append(selected, t)
			}
		}
	}
	if len(problems) > 0 {
		return nil, nil, &InputError{Message: "invalid targets", Problems: problems}
	}
	slots := make([]slot, len(selected))
	for i, t := range selected {
		slots[i] = slot{idx: i, name: t.Name}
	}
	ws, unbuilt := buildWork(src, slots, req.Credential)
	for _, u := range unbuilt {
		var ie *InputError
		if !errors.As(u.err, &ie) {
			return nil, nil, fmt.Errorf("target %q: build request: %w", u.name, u.err)
		}
		for _, p := range ie.Problems {
			p.Target = u.name
			problems = append(problems, p)
		}
		if len(ie.Problems) == 0 {
			problems = append(problems, Problem{Field: "credential", Target: u.name, Message: ie.Message})
		}
	}
	if len(problems) > 0 {
		return nil, nil, &InputError{Message: fmt.Sprintf("the credential cannot go to every target of source %q; nothing was sent", src.Name), Problems: problems}
	}
	return src, ws, nil
}

// Planned is one request a rotation would send; its Body marshals with secrets redacted.
type Planned struct {
	Target   string  `json:"target"`
	Platform string  `json:"platform"`
	Vendor   string  `json:"vendor"`
	Request  Request `json:"request"`
}

// Plan is the dry run: it validates like Submit and returns what would be sent, sending nothing.
func (e *Engine) Plan(req SubmitRequest) ([]Planned, error) {
	if err := e.checkGenerate(&req); err != nil {
		return nil, err
	}
	if req.Generate {
		if _, _, err := e.generated(context.Background(), &req, e.sources[req.Source], true); err != nil {
			return nil, err
		}
	}
	_, ws, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	out := make([]Planned, len(ws))
	for i, w := range ws {
		r, err := w.target.Adapter.Build(req.Credential) // pure: what prepare checked
		if err != nil {
			return nil, fmt.Errorf("build the request of %s: %w", w.target.Name, err)
		}
		out[i] = Planned{Target: w.target.Name, Platform: w.target.Platform, Vendor: w.target.Vendor, Request: r}
	}
	return out, nil
}

// Submit validates a rotation, records it (with its sealed credential) and starts it in the
// background. The returned rotation is a snapshot taken before any vendor call, bounded as
// GET's default answer is: its per-status counts and the first page of its targets (PageOf;
// Get, Wait or GetPage read the rest). With an
// IdempotencyKey seen before, it returns the rotation that key created (replayed true), or a
// *ConflictError when the request differs from the first one.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (*Rotation, bool, error) {
	if e.isClosing() {
		return nil, false, ErrShuttingDown
	}
	if req.IdempotencyKey != "" {
		hit, err := e.store.FindIdempotencyKey(ctx, req.Actor, req.IdempotencyKey)
		if err != nil {
			return nil, false, fmt.Errorf("look up Idempotency-Key: %w", err)
		}
		if hit != nil {
			return e.replay(ctx, req, hit)
		}
	}
	if err := e.checkGenerate(&req); err != nil {
		return nil, false, err
	}
	var srcRot *SourceRotationState
	if req.Generate {
		st, release, err := e.generated(ctx, &req, e.sources[req.Source], false)
		if err != nil {
			return nil, false, err
		}
		defer release()
		srcRot = st
	}
	src, ws, err := e.prepare(req)
	if err != nil {
		return nil, false, err
	}
	now := e.now()
	rot := &Rotation{ID: e.cfg.NewID(), Source: src.Name, Status: RotationPending, CreatedAt: now,
		Actor: req.Actor, Type: req.Credential.Type, SourceRotation: srcRot}
	rot.Targets = make([]TargetResult, 0, len(ws)) // once: growing it by appends was 2.5x its size in garbage
	for _, w := range ws {
		rot.Targets = append(rot.Targets, TargetResult{Name: w.target.Name, Platform: w.target.Platform,
			Vendor: w.target.Vendor, Status: TargetPending})
	}
	var sealed []byte
	if e.cfg.Sealer != nil {
		clear, err := req.Credential.EncodeClear()
		if err != nil {
			return nil, false, err
		}
		if sealed, err = e.cfg.Sealer.Seal(clear, []byte(rot.ID)); err != nil {
			return nil, false, fmt.Errorf("encrypt credential: %w", err)
		}
	}
	hit, err := e.store.CreateRotation(ctx, NewRotation{Rotation: rot, SealedCredential: sealed, Owner: e.cfg.Owner,
		LeaseTTL: e.cfg.LeaseTTL, Actor: req.Actor, IdempotencyKey: req.IdempotencyKey, RequestHash: req.RequestHash,
		Audit: &AuditEvent{At: e.now(), Actor: req.Actor, Action: "rotation.submitted", Source: src.Name, RotationID: rot.ID,
			Detail: fmt.Sprintf("%s to %d target(s)", req.Credential.Type, len(ws))}})
	if err != nil {
		return nil, false, fmt.Errorf("record rotation: %w", err)
	}
	if hit != nil { // a concurrent submission with the same key won
		return e.replay(ctx, req, hit)
	}
	if rot.Seq == 0 {
		stored, err := e.store.GetRotation(ctx, rot.ID)
		if err != nil {
			return nil, false, fmt.Errorf("read back rotation: %w", err)
		}
		rot.Seq = stored.Seq
	}
	if srcRot != nil {
		if err := e.recordGenerated(ctx, src, rot); err != nil {
			e.log.Error("store: record the generated rotation as the source's current one", zap.String("rotation_id", rot.ID), zap.Error(err))
		}
	}
	e.log.Info("rotation accepted", zap.String("rotation_id", rot.ID), zap.String("source", src.Name), zap.Int64("seq", rot.Seq),
		zap.String("credential_type", string(req.Credential.Type)), zap.Int("targets", len(ws)), zap.String("actor", req.Actor))
	e.supersedeLocal(rot)
	// A page, not a copy of every target: 100,000 of them would be 20 MB for an answer that
	// shows 100.
	snapshot, err := PageOf(rot, TargetPage{})
	if err != nil {
		return nil, false, err
	}
	if !e.launch(rot, req.Credential, ws) {
		return nil, false, ErrShuttingDown
	}
	return snapshot, false, nil
}

// checkGenerate refuses a request that mixes generation and a submitted credential.
func (e *Engine) checkGenerate(req *SubmitRequest) error {
	src, ok := e.sources[req.Source]
	if !ok {
		return &NotFoundError{What: "source", Name: req.Source}
	}
	switch {
	case req.Generate && req.Credential.Type != "":
		return &InputError{Message: "invalid rotation request", Problems: []Problem{{Field: "credential",
			Message: "give either generate: true (credsync makes the credential) or a credential, not both"}}}
	case !req.Generate && src.Rotation != nil:
		return &InputError{Message: "invalid rotation request", Problems: []Problem{{Field: "generate",
			Message: fmt.Sprintf("source %q rotates at the source (rotation: in its config): credsync makes its credential; send {\"source\": %q, \"generate\": true}", src.Name, src.Name)}}}
	}
	return nil
}

func (e *Engine) replay(ctx context.Context, req SubmitRequest, hit *IdempotencyHit) (*Rotation, bool, error) {
	if hit.RequestHash != req.RequestHash {
		return nil, false, &ConflictError{Message: fmt.Sprintf("Idempotency-Key %q was used for a different request (rotation %s): use a new key for a new rotation", req.IdempotencyKey, hit.RotationID)}
	}
	rot, err := e.GetPage(ctx, hit.RotationID, TargetPage{})
	return rot, true, err
}

// supersedeLocal stops this replica's older rotations of the same source from sending to the
// targets the new one covers. (Across replicas, the store's target claims do the same.)
func (e *Engine) supersedeLocal(newer *Rotation) {
	names := map[string]bool{}
	for _, t := range newer.Targets {
		names[t.Name] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runs {
		r.mu.Lock()
		if r.rot.Source == newer.Source && r.rot.Seq < newer.Seq {
			for name := range names {
				r.super[name] = true
				if cancel, ok := r.targets[name]; ok {
					cancel()
				}
			}
		}
		r.mu.Unlock()
	}
}

// launch starts working a rotation; false when the engine is shutting down.
func (e *Engine) launch(rot *Rotation, cred Credential, ws []work) bool {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Deadline)
	r := &run{rot: rot, cred: cred, scrub: NewScrubber(cred.Secrets()...), done: make(chan struct{}), cancel: cancel,
		targets: map[string]context.CancelFunc{}, super: map[string]bool{}}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		cancel()
		return false
	}
	e.runs[rot.ID] = r
	e.wg.Add(1)
	e.mu.Unlock()
	go e.execute(ctx, r, ws)
	return true
}

// Retry sends the rotation's credential again to its targets that did not succeed. It returns a
// snapshot bounded as Submit's is.
func (e *Engine) Retry(ctx context.Context, id, actor string) (*Rotation, error) {
	if e.isClosing() {
		return nil, ErrShuttingDown
	}
	e.mu.Lock()
	_, active := e.runs[id]
	e.mu.Unlock()
	if active {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s is still running: wait for it to finish, then retry", id)}
	}
	rot, err := e.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !rot.Status.Finished() {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s is still running on another replica: wait for it to finish, then retry", id)}
	}
	src := e.sources[rot.Source]
	var retryable []slot
	for i, tr := range rot.Targets {
		if tr.Status != TargetSucceeded && tr.Status != TargetSuperseded && findTarget(src, tr.Name) != nil {
			retryable = append(retryable, slot{idx: i, name: tr.Name})
		}
	}
	if len(retryable) == 0 {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s has no target left to retry (succeeded or superseded ones are not sent again)", id)}
	}
	cred, err := e.openCredential(ctx, id)
	if errors.Is(err, ErrStoreUnavailable) { // the store's condition, not the rotation's: try again later
		return nil, err
	}
	if err != nil {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s cannot be retried: %v; submit a new rotation", id, err)}
	}
	ok, err := e.store.AcquireLease(ctx, id, e.cfg.Owner, e.cfg.LeaseTTL)
	if err != nil {
		return nil, fmt.Errorf("lease rotation %s: %w", id, err)
	}
	if !ok {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s is being retried by another replica", id)}
	}
	ws, unbuilt := buildWork(src, retryable, cred)
	if len(unbuilt) > 0 {
		_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner)
		return nil, fmt.Errorf("rebuild request for target %q: %w", unbuilt[0].name, unbuilt[0].err)
	}
	for _, w := range ws {
		tr := &rot.Targets[w.idx]
		tr.Status, tr.Error, tr.Verified, tr.Warning, tr.FinishedAt = TargetPending, nil, false, "", nil
	}
	rot.Status, rot.FinishedAt = RotationPending, nil
	if err := e.store.UpdateRotation(ctx, rot); err != nil {
		_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner)
		return nil, fmt.Errorf("record retry: %w", err)
	}
	e.log.Info("rotation retried", zap.String("rotation_id", id), zap.Int("targets", len(ws)), zap.String("actor", actor))
	e.audit(AuditEvent{Actor: actor, Action: "rotation.retried", Source: rot.Source, RotationID: id, Detail: fmt.Sprintf("%d target(s)", len(ws))})
	snapshot, err := PageOf(rot, TargetPage{})
	if err != nil {
		return nil, err
	}
	if !e.launch(rot, cred, ws) {
		return nil, ErrShuttingDown
	}
	return snapshot, nil
}

// slot names one target of a rotation: its index in Rotation.Targets and its name.
type slot struct {
	idx  int
	name string
}

// unbuiltTarget is a slot buildWork made no work for: the target left the config (removed),
// or its adapter could not build the request (err).
type unbuiltTarget struct {
	slot
	removed bool
	err     error
}

// buildWork is the one way a rotation's work is made, on submit, on resume and on retry: for
// each slot, the configured target of that name and the request its adapter builds from cred.
// What cannot be built is returned beside it; each caller decides what that means (submit: the
// request is refused whole; resume: that target fails; retry: the retry is refused).
func buildWork(src *Source, slots []slot, cred Credential) ([]work, []unbuiltTarget) {
	ws := make([]work, 0, len(slots))
	var bad []unbuiltTarget
	for _, sl := range slots {
		t := findTarget(src, sl.name)
		if t == nil {
			bad = append(bad, unbuiltTarget{slot: sl, removed: true})
			continue
		}
		if _, err := t.Adapter.Build(cred); err != nil {
			bad = append(bad, unbuiltTarget{slot: sl, err: err})
			continue
		}
		ws = append(ws, work{idx: sl.idx, target: t})
	}
	return ws, bad
}

func findTarget(s *Source, name string) *Target {
	if s == nil {
		return nil
	}
	return s.Target(name)
}

// targetNames lists a source's target names for a message: the first 20, and how many more.
func targetNames(s *Source) string {
	const shown = 20
	names := make([]string, 0, min(shown, len(s.Targets)))
	for i, t := range s.Targets {
		if i == shown {
			return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", len(s.Targets)-shown)
		}
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}
