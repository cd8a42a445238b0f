package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"
)

// Defaults for EngineConfig and Platform fields left zero.
const (
	DefaultDeadline       = 10 * time.Minute
	DefaultTimeout        = 30 * time.Second
	DefaultMaxAttempts    = 5
	DefaultMaxConcurrency = 8
	DefaultBackoffBase    = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultRetention      = 7 * 24 * time.Hour
)

// Clock is the engine's view of time; tests replace it to make backoff instant and observable.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, whichever is first, and returns ctx.Err() in the
	// latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is the retry stage's schedule: attempt n waits about Base·2^(n-1), capped at Max, with
// jitter; a vendor's Retry-After is honoured when it asks for longer.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// EngineConfig wires an Engine.
type EngineConfig struct {
	Platforms []Platform
	Sources   []*Source
	Store     Store
	Logger    *zap.Logger
	// Deadline bounds a whole rotation, retries and verification included.
	Deadline time.Duration
	Backoff  Backoff
	// Retention is how long the credential of a rotation that did not fully succeed is kept in
	// memory so that POST /v1/rotations/{id}/retry can send it again.
	Retention time.Duration
	Clock     Clock
	// Jitter picks the actual wait in [d/2, d]; nil uses a uniform random pick.
	Jitter func(d time.Duration) time.Duration
	// NewID names rotations; nil uses a time-ordered random id.
	NewID func() string
}

// Engine fans rotations out to targets: concurrently, bounded per platform, each call retried
// with backoff while the adapter says a retry may help, within a per-attempt timeout and a
// per-rotation deadline.
type Engine struct {
	cfg       EngineConfig
	log       *zap.Logger
	store     Store
	clock     Clock
	platforms map[string]*platformRun
	sources   map[string]*Source
	order     []string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closing bool
	runs    map[string]*run
	idem    map[string]idemEntry
	idemMu  sync.Mutex
}

// idemEntry remembers which rotation an Idempotency-Key created. In memory only: the durable
// stores keep it across restarts.
type idemEntry struct {
	hash       string
	rotationID string
	at         time.Time
}

type platformRun struct {
	Platform
	sem chan struct{}
}

// run is a rotation the engine is working on, or finished but still holding its credential.
type run struct {
	mu       sync.Mutex
	rot      *Rotation
	cred     Credential
	done     chan struct{}
	active   bool
	finished time.Time
}

type work struct {
	idx    int
	target *Target
	req    Request
}

// NewEngine checks the wiring and returns a ready engine.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff.Base = DefaultBackoffBase
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = DefaultBackoffMax
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 1 {
				return d
			}
			return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
		}
	}
	if cfg.NewID == nil {
		cfg.NewID = newRotationID
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger, store: cfg.Store, clock: cfg.Clock,
		platforms: map[string]*platformRun{}, sources: map[string]*Source{}, runs: map[string]*run{}, idem: map[string]idemEntry{},
	}
	for _, p := range cfg.Platforms {
		if p.Timeout <= 0 {
			p.Timeout = DefaultTimeout
		}
		if p.MaxAttempts <= 0 {
			p.MaxAttempts = DefaultMaxAttempts
		}
		if p.MaxConcurrency <= 0 {
			p.MaxConcurrency = DefaultMaxConcurrency
		}
		e.platforms[p.Name] = &platformRun{Platform: p, sem: make(chan struct{}, p.MaxConcurrency)}
	}
	for _, s := range cfg.Sources {
		if _, dup := e.sources[s.Name]; dup {
			return nil, fmt.Errorf("engine: source %q is defined twice", s.Name)
		}
		for _, t := range s.Targets {
			if _, ok := e.platforms[t.Platform]; !ok {
				return nil, fmt.Errorf("engine: source %q target %q: unknown platform %q", s.Name, t.Name, t.Platform)
			}
			if t.Adapter == nil {
				return nil, fmt.Errorf("engine: source %q target %q has no adapter", s.Name, t.Name)
			}
		}
		e.sources[s.Name] = s
		e.order = append(e.order, s.Name)
	}
	sort.Strings(e.order)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Platform returns a platform's effective settings (defaults applied).
func (e *Engine) Platform(name string) (Platform, bool) {
	p, ok := e.platforms[name]
	if !ok {
		return Platform{}, false
	}
	return p.Platform, true
}

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
}

// NotFoundError is an unknown source or rotation.
type NotFoundError struct{ What, Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.What, e.Name) }

// ConflictError is a request that contradicts the rotation's state.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// ErrShuttingDown is returned once Shutdown has begun.
var ErrShuttingDown = errors.New("the gateway is shutting down; submit again once it is back")

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
		byName := map[string]*Target{}
		for _, t := range src.Targets {
			byName[t.Name] = t
		}
		seen := map[string]bool{}
		selected = nil
		for i, n := range req.Targets {
			t, ok := byName[n]
			switch {
			case !ok:
				problems = append(problems, Problem{Field: fmt.Sprintf("targets[%d]", i), Message: fmt.Sprintf("source %q has no target %q (targets: %s)", src.Name, n, targetNames(src))})
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
	var ws []work
	for i, t := range selected {
		r, err := t.Adapter.Build(req.Credential)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				return nil, nil, fmt.Errorf("target %q: build request: %w", t.Name, err)
			}
			for _, p := range ie.Problems {
				p.Target = t.Name
				problems = append(problems, p)
			}
			if len(ie.Problems) == 0 {
				problems = append(problems, Problem{Field: "credential", Target: t.Name, Message: ie.Message})
			}
			continue
		}
		ws = append(ws, work{idx: i, target: t, req: r})
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
	_, ws, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	out := make([]Planned, len(ws))
	for i, w := range ws {
		out[i] = Planned{Target: w.target.Name, Platform: w.target.Platform, Vendor: w.target.Vendor, Request: w.req}
	}
	return out, nil
}

// Submit validates a rotation, records it and starts it in the background. The returned
// rotation is a snapshot taken before any vendor call. With an IdempotencyKey seen before, it
// returns the rotation that key created (replayed true), or a *ConflictError when the request
// differs from the first one.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (rot *Rotation, replayed bool, err error) {
	if req.IdempotencyKey != "" {
		key := req.Actor + "\x00" + req.IdempotencyKey
		// Keyed submissions are serialised so that two concurrent repeats cannot both start one.
		e.idemMu.Lock()
		defer e.idemMu.Unlock()
		e.mu.Lock()
		prev, ok := e.idem[key]
		e.mu.Unlock()
		if ok {
			if prev.hash != req.RequestHash {
				return nil, false, &ConflictError{Message: fmt.Sprintf("Idempotency-Key %q was used for a different request (rotation %s): use a new key for a new rotation", req.IdempotencyKey, prev.rotationID)}
			}
			rot, err := e.Get(ctx, prev.rotationID)
			return rot, true, err
		}
		rot, err := e.submit(ctx, req)
		if err != nil {
			return nil, false, err
		}
		e.mu.Lock()
		e.idem[key] = idemEntry{hash: req.RequestHash, rotationID: rot.ID, at: e.clock.Now()}
		e.mu.Unlock()
		return rot, false, nil
	}
	rot, err = e.submit(ctx, req)
	return rot, false, err
}

func (e *Engine) submit(ctx context.Context, req SubmitRequest) (*Rotation, error) {
	e.mu.Lock()
	closing := e.closing
	e.mu.Unlock()
	if closing {
		return nil, ErrShuttingDown
	}
	src, ws, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now().UTC()
	rot := &Rotation{ID: e.cfg.NewID(), Source: src.Name, Status: RotationPending, CreatedAt: now,
		Actor: req.Actor, Type: req.Credential.Type}
	for _, w := range ws {
		rot.Targets = append(rot.Targets, TargetResult{Name: w.target.Name, Platform: w.target.Platform,
			Vendor: w.target.Vendor, Status: TargetPending})
	}
	for i := range ws {
		ws[i].idx = i
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, ErrShuttingDown
	}
	e.sweepLocked(now)
	if err := e.store.CreateRotation(ctx, rot.Clone()); err != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("record rotation: %w", err)
	}
	r := &run{rot: rot, cred: req.Credential, done: make(chan struct{}), active: true}
	e.runs[rot.ID] = r
	snapshot := rot.Clone()
	e.wg.Add(1)
	e.mu.Unlock()
	e.log.Info("rotation accepted", zap.String("rotation_id", rot.ID), zap.String("source", src.Name),
		zap.String("credential_type", string(req.Credential.Type)), zap.Int("targets", len(ws)), zap.String("actor", req.Actor))
	go e.execute(r, ws)
	return snapshot, nil
}

// Retry sends the rotation's credential again to its targets that did not succeed.
func (e *Engine) Retry(ctx context.Context, id string) (*Rotation, error) {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, ErrShuttingDown
	}
	r, ok := e.runs[id]
	e.mu.Unlock()
	if !ok {
		if _, err := e.Get(ctx, id); err != nil {
			return nil, err
		}
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s no longer holds its credential (it succeeded, or its retention passed): submit a new rotation", id)}
	}
	r.mu.Lock()
	if r.active {
		r.mu.Unlock()
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s is still running: wait for it to finish, then retry", id)}
	}
	src := e.sources[r.rot.Source]
	byName := map[string]*Target{}
	for _, t := range src.Targets {
		byName[t.Name] = t
	}
	var ws []work
	for i, tr := range r.rot.Targets {
		t := byName[tr.Name]
		if tr.Status == TargetSucceeded || t == nil {
			continue
		}
		req, err := t.Adapter.Build(r.cred)
		if err != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("rebuild request for target %q: %w", t.Name, err)
		}
		ws = append(ws, work{idx: i, target: t, req: req})
	}
	if len(ws) == 0 {
		r.mu.Unlock()
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s has no target left to retry", id)}
	}
	for _, w := range ws {
		tr := &r.rot.Targets[w.idx]
		tr.Status, tr.Error, tr.Verified, tr.Warning, tr.FinishedAt = TargetPending, nil, false, "", nil
	}
	r.rot.Status, r.rot.FinishedAt = RotationPending, nil
	r.active, r.done = true, make(chan struct{})
	snapshot := r.rot.Clone()
	err := e.store.UpdateRotation(ctx, snapshot.Clone())
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("record retry: %w", err)
	}
	e.mu.Lock()
	e.wg.Add(1)
	e.mu.Unlock()
	e.log.Info("rotation retried", zap.String("rotation_id", id), zap.Int("targets", len(ws)))
	go e.execute(r, ws)
	return snapshot, nil
}

// sweepLocked forgets credentials held past their retention. Call with e.mu held.
func (e *Engine) sweepLocked(now time.Time) {
	for id, r := range e.runs {
		r.mu.Lock()
		expired := !r.active && now.Sub(r.finished) > e.cfg.Retention
		r.mu.Unlock()
		if expired {
			delete(e.runs, id)
		}
	}
	for k, v := range e.idem {
		if now.Sub(v.at) > e.cfg.Retention {
			delete(e.idem, k)
		}
	}
}

func (e *Engine) execute(r *run, ws []work) {
	defer e.wg.Done()
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Deadline)
	defer cancel()
	e.update(ctx, r, func(rot *Rotation) { rot.Status = RotationRunning })

	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func(w work) {
			defer wg.Done()
			e.runTarget(ctx, r, w)
		}(w)
	}
	wg.Wait()

	var final *Rotation
	e.update(ctx, r, func(rot *Rotation) {
		now := e.clock.Now().UTC()
		rot.Status = Outcome(rot.Targets)
		rot.FinishedAt = &now
		final = rot.Clone()
	})
	var errs *multierror.Error
	for _, t := range final.Targets {
		if t.Error != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.Name, t.Error))
		}
	}
	fields := []zap.Field{zap.String("rotation_id", final.ID), zap.String("source", final.Source),
		zap.String("status", string(final.Status)), zap.Duration("took", final.FinishedAt.Sub(final.CreatedAt))}
	if err := errs.ErrorOrNil(); err != nil {
		fields = append(fields, zap.String("errors", err.Error()))
	}
	e.log.Info("rotation finished", fields...)

	r.mu.Lock()
	r.active = false
	r.finished = e.clock.Now()
	close(r.done)
	succeeded := final.Status == RotationSucceeded
	r.mu.Unlock()
	if succeeded {
		// Nothing left to retry: drop the credential at once.
		e.mu.Lock()
		delete(e.runs, final.ID)
		e.mu.Unlock()
	}
}

// update applies fn to the rotation and writes the result to the store, in order: the lock is
// held across the write so that two targets' updates cannot reach the store swapped.
func (e *Engine) update(ctx context.Context, r *run, fn func(*Rotation)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.rot)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.store.UpdateRotation(sctx, r.rot.Clone()); err != nil {
		e.log.Error("store: record rotation state", zap.String("rotation_id", r.rot.ID), zap.Error(err))
	}
}

func (e *Engine) runTarget(ctx context.Context, r *run, w work) {
	secrets := r.cred.Secrets()
	p := e.platforms[w.target.Platform]
	var (
		attempts int
		ver      Verification
		err      error
		retry    bool
	)
	defer func() {
		if rec := recover(); rec != nil {
			e.log.Error("panic in target", zap.String("rotation_id", r.rot.ID), zap.String("target", w.target.Name),
				zap.String("panic", Scrub(fmt.Sprint(rec), secrets)), zap.String("stack", Scrub(string(debug.Stack()), secrets)))
			err, retry = &Error{Code: CodeInternal, Message: "internal error in credsync (see the gateway log)"}, false
		}
		e.finishTarget(ctx, r, w, attempts, ver, err, retry, secrets)
	}()

	e.update(ctx, r, func(rot *Rotation) {
		now := e.clock.Now().UTC()
		t := &rot.Targets[w.idx]
		t.Status, t.StartedAt, t.Attempts = TargetRunning, &now, 0
	})
	attempts, retry, err = e.withRetry(ctx, p, true, func(actx context.Context) (bool, error) {
		return w.target.Adapter.Send(actx, w.req)
	}, func(n int) {
		e.update(ctx, r, func(rot *Rotation) { rot.Targets[w.idx].Attempts = n })
	})
	if err != nil {
		return
	}
	_, retry, err = e.withRetry(ctx, p, false, func(vctx context.Context) (bool, error) {
		v, retry, err := w.target.Adapter.Verify(vctx)
		ver = v
		return retry, err
	}, nil)
}

func (e *Engine) finishTarget(ctx context.Context, r *run, w work, attempts int, ver Verification, err error, retry bool, secrets []string) {
	var res TargetResult
	e.update(ctx, r, func(rot *Rotation) {
		now := e.clock.Now().UTC()
		t := &rot.Targets[w.idx]
		t.Attempts, t.FinishedAt = attempts, &now
		if err != nil {
			t.Status, t.Verified, t.Error = TargetFailed, false, e.targetError(ctx, err, retry, secrets)
		} else {
			t.Status, t.Verified, t.Warning = TargetSucceeded, ver.Verified, Scrub(ver.Warning, secrets)
		}
		res = *t
	})
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
		return
	}
	e.log.Info("target succeeded", fields...)
}

// withRetry is the one retry stage: it calls fn until it succeeds, says a retry would not help,
// runs out of attempts, or the rotation's deadline leaves no room for the next wait. It holds a
// slot of the platform's concurrency bound only while a call is in flight.
func (e *Engine) withRetry(ctx context.Context, p *platformRun, perAttemptTimeout bool, fn func(context.Context) (bool, error), onAttempt func(int)) (int, bool, error) {
	var lastErr error
	for n := 1; ; n++ {
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return n - 1, true, lastErr
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if perAttemptTimeout {
			actx, cancel = context.WithTimeout(ctx, p.Timeout)
		}
		retry, err := fn(actx)
		cancel()
		<-p.sem
		if onAttempt != nil {
			onAttempt(n)
		}
		if err == nil {
			return n, false, nil
		}
		lastErr = err
		if !retry || n >= p.MaxAttempts || ctx.Err() != nil {
			return n, retry, err
		}
		delay := e.delay(n, err)
		if dl, ok := ctx.Deadline(); ok && e.clock.Now().Add(delay).After(dl) {
			return n, retry, err
		}
		if e.clock.Sleep(ctx, delay) != nil {
			return n, retry, err
		}
	}
}

// delay is the wait before attempt n+1.
func (e *Engine) delay(n int, err error) time.Duration {
	d := e.cfg.Backoff.Base
	for i := 1; i < n && d < e.cfg.Backoff.Max; i++ {
		d *= 2
	}
	if d > e.cfg.Backoff.Max {
		d = e.cfg.Backoff.Max
	}
	d = e.cfg.Jitter(d)
	var ce *Error
	if errors.As(err, &ce) && ce.RetryAfter > d {
		d = ce.RetryAfter
	}
	return d
}

// targetError turns whatever an adapter returned into the stored, secret-free error.
func (e *Engine) targetError(ctx context.Context, err error, retry bool, secrets []string) *Error {
	var out Error
	var ce *Error
	if errors.As(err, &ce) {
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
		out.Message = "the gateway stopped before this target finished; retry the rotation"
		retry = true
	}
	out.Retryable = retry
	out.RetryAfter = 0
	out.Message = Scrub(out.Message, secrets)
	return &out
}

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

// Wait returns the rotation once it has finished, or its current state when ctx ends first.
func (e *Engine) Wait(ctx context.Context, id string) (*Rotation, error) {
	e.mu.Lock()
	r, ok := e.runs[id]
	e.mu.Unlock()
	if ok {
		r.mu.Lock()
		done := r.done
		r.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	return e.Get(context.WithoutCancel(ctx), id)
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

// SourceView is a configured source as GET /v1/sources shows it.
type SourceView struct {
	Name    string       `json:"name"`
	Targets []TargetView `json:"targets"`
}

// TargetView is a configured target and its last outcome.
type TargetView struct {
	Name     string           `json:"name"`
	Platform string           `json:"platform"`
	Vendor   string           `json:"vendor"`
	Accepts  []CredentialType `json:"accepts"`
	Last     *LastOutcome     `json:"last_rotation"`
}

// LastOutcome is a target's part of the newest rotation that reached it.
type LastOutcome struct {
	RotationID string       `json:"rotation_id"`
	Status     TargetStatus `json:"status"`
	Verified   bool         `json:"verified"`
	FinishedAt *time.Time   `json:"finished_at"`
	Error      *Error       `json:"error"`
}

// sourceHistory is how many recent rotations of a source are read to find each target's last outcome.
const sourceHistory = 200

// Sources lists the configured sources with each target's last outcome.
func (e *Engine) Sources(ctx context.Context) ([]SourceView, error) {
	out := make([]SourceView, 0, len(e.order))
	for _, name := range e.order {
		src := e.sources[name]
		rots, err := e.store.ListRotations(ctx, ListFilter{Source: name, Limit: sourceHistory})
		if err != nil {
			return nil, fmt.Errorf("list rotations of %s: %w", name, err)
		}
		v := SourceView{Name: name}
		for _, t := range src.Targets {
			tv := TargetView{Name: t.Name, Platform: t.Platform, Vendor: t.Vendor, Accepts: t.Adapter.Accepts()}
		find:
			for _, rot := range rots { // newest first
				for _, tr := range rot.Targets {
					if tr.Name == t.Name && tr.Status != TargetPending {
						tv.Last = &LastOutcome{RotationID: rot.ID, Status: tr.Status, Verified: tr.Verified, FinishedAt: tr.FinishedAt, Error: tr.Error}
						break find
					}
				}
			}
			v.Targets = append(v.Targets, tv)
		}
		out = append(out, v)
	}
	return out, nil
}

// Shutdown stops accepting rotations and waits for running ones until ctx ends; then it cancels
// what is left (those targets end with code canceled) and waits for them to be recorded.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return fmt.Errorf("shutdown: rotations still running after the grace period were canceled: %w", ctx.Err())
	}
}

func targetNames(s *Source) string {
	names := ""
	for i, t := range s.Targets {
		if i > 0 {
			names += ", "
		}
		names += t.Name
	}
	return names
}

func newRotationID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("rot_%011x%s", time.Now().UnixMilli(), hex.EncodeToString(b[:]))
}
