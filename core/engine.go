package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
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
	DefaultLeaseTTL       = 30 * time.Second
)

// Target error codes set by the engine itself (besides the adapters' codes in adapter.go).
const (
	CodeSuperseded    = "superseded"     // a newer rotation of the source took the target over
	CodeInterrupted   = "interrupted"    // the gateway restarted and could not resume (no credential)
	CodeTargetRemoved = "target_removed" // the target left the config while the rotation was unfinished
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
	// DurableStore says the store outlives the process: targets stopped by a shutdown are then
	// left unfinished for the next start to resume, instead of ending canceled.
	DurableStore bool
	// Sealer encrypts the credential kept for resuming and retrying. Without one nothing is kept:
	// a rotation interrupted by a restart ends with code interrupted, and retry is refused.
	Sealer Sealer
	// Owner names this gateway replica in leases; it should survive a restart of the same replica
	// (so that it resumes its own rotations at once) and differ between replicas.
	Owner string
	// LeaseTTL is how long a replica's claim on a rotation lasts without renewal; a dead
	// replica's rotations are taken over after it.
	LeaseTTL time.Duration
	// Deadline bounds a whole rotation, retries and verification included.
	Deadline time.Duration
	Backoff  Backoff
	// Retention is how long the sealed credential of a rotation that did not fully succeed is
	// kept for POST /v1/rotations/{id}/retry.
	Retention time.Duration
	Clock     Clock
	// Jitter picks the actual wait in [d/2, d]; nil uses a uniform random pick.
	Jitter func(d time.Duration) time.Duration
	// NewID names rotations; nil uses a time-ordered random id.
	NewID func() string
	// Observer receives metrics events; nil discards them.
	Observer Observer
}

// Engine fans rotations out to targets: concurrently, bounded per platform, each call retried
// with backoff while the adapter says a retry may help, within a per-attempt timeout and a
// per-rotation deadline. Every state change is written to the store before and after each vendor
// call, so another start (or another replica) can resume what a crash interrupted.
type Engine struct {
	cfg       EngineConfig
	log       *zap.Logger
	store     Store
	clock     Clock
	platforms map[string]Platform
	sources   map[string]*Source
	order     []string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // runs
	bg     sync.WaitGroup // background loop

	mu      sync.Mutex
	closing bool
	runs    map[string]*run
	ids     idGen
}

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

type work struct {
	idx    int
	target *Target
	req    Request
}

// NewEngine checks the wiring and returns an engine. Call Start to resume unfinished rotations and
// run the lease loop.
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
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 1 {
				return d
			}
			return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
		}
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger, store: cfg.Store, clock: cfg.Clock,
		platforms: map[string]Platform{}, sources: map[string]*Source{}, runs: map[string]*run{},
	}
	for _, p := range cfg.Platforms {
		p = p.WithDefaults()
		if p.Admission == nil {
			p.Admission = NewAdmission(p, nil)
		}
		e.platforms[p.Name] = p
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
	if e.cfg.NewID == nil {
		e.cfg.NewID = e.ids.next
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Platform returns a platform's effective settings (defaults applied).
func (e *Engine) Platform(name string) (Platform, bool) {
	p, ok := e.platforms[name]
	return p, ok
}

// Owner is this replica's lease owner name.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Start resumes the unfinished rotations this replica may take (its own from before a restart,
// and any whose lease expired), then keeps renewing leases, taking over dead replicas' rotations
// and purging expired credentials until Shutdown.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.resumeAll(ctx); err != nil {
		return err
	}
	e.bg.Add(1)
	go e.loop()
	return nil
}

func (e *Engine) loop() {
	defer e.bg.Done()
	renew := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer renew.Stop()
	orphans := time.NewTicker(e.cfg.LeaseTTL / 2)
	defer orphans.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	e.purge()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-renew.C:
			e.renewLeases()
		case <-orphans.C:
			e.claimOrphans()
		case <-purge.C:
			e.purge()
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
		e.log.Warn("store: purge expired credentials", zap.Error(err))
	} else if n > 0 {
		e.log.Info("purged credentials past their retention", zap.Int("rotations", n))
	}
}

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
	var ws []work
	now := e.now()
	for i := range rot.Targets {
		tr := &rot.Targets[i]
		if tr.Status.Finished() {
			continue
		}
		t := findTarget(src, tr.Name)
		switch {
		case t == nil:
			tr.Status, tr.FinishedAt = TargetFailed, &now
			tr.Error = &Error{Code: CodeTargetRemoved, Message: "the target is no longer in the config; this part of the rotation cannot be resumed"}
		case cerr != nil:
			tr.Status, tr.FinishedAt = TargetFailed, &now
			tr.Error = &Error{Code: CodeInterrupted, Retryable: true, Message: "the gateway restarted before this target finished and holds no credential to resume with (" + cerr.Error() + "): submit the rotation again"}
		default:
			req, err := t.Adapter.Build(cred)
			if err != nil {
				tr.Status, tr.FinishedAt = TargetFailed, &now
				tr.Error = &Error{Code: CodeInternal, Message: "rebuilding the request on resume failed: " + Scrub(err.Error(), cred.Secrets())}
				continue
			}
			tr.Status = TargetPending
			ws = append(ws, work{idx: i, target: t, req: req})
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
		seen := map[string]bool{}
		selected = nil
		for i, n := range req.Targets {
			t := findTarget(src, n)
			switch {
			case t == nil:
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
	for _, t := range selected {
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
		ws = append(ws, work{idx: len(ws), target: t, req: r})
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

func (e *Engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// Submit validates a rotation, records it (with its sealed credential) and starts it in the
// background. The returned rotation is a snapshot taken before any vendor call. With an
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
	src, ws, err := e.prepare(req)
	if err != nil {
		return nil, false, err
	}
	now := e.now()
	rot := &Rotation{ID: e.cfg.NewID(), Source: src.Name, Status: RotationPending, CreatedAt: now,
		Actor: req.Actor, Type: req.Credential.Type}
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
	e.log.Info("rotation accepted", zap.String("rotation_id", rot.ID), zap.String("source", src.Name), zap.Int64("seq", rot.Seq),
		zap.String("credential_type", string(req.Credential.Type)), zap.Int("targets", len(ws)), zap.String("actor", req.Actor))
	e.supersedeLocal(rot)
	snapshot := rot.Clone()
	if !e.launch(rot, req.Credential, ws) {
		return nil, false, ErrShuttingDown
	}
	return snapshot, false, nil
}

func (e *Engine) replay(ctx context.Context, req SubmitRequest, hit *IdempotencyHit) (*Rotation, bool, error) {
	if hit.RequestHash != req.RequestHash {
		return nil, false, &ConflictError{Message: fmt.Sprintf("Idempotency-Key %q was used for a different request (rotation %s): use a new key for a new rotation", req.IdempotencyKey, hit.RotationID)}
	}
	rot, err := e.Get(ctx, hit.RotationID)
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

// Retry sends the rotation's credential again to its targets that did not succeed.
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
	var retryable []int
	for i, tr := range rot.Targets {
		if tr.Status != TargetSucceeded && tr.Status != TargetSuperseded && findTarget(src, tr.Name) != nil {
			retryable = append(retryable, i)
		}
	}
	if len(retryable) == 0 {
		return nil, &ConflictError{Message: fmt.Sprintf("rotation %s has no target left to retry (succeeded or superseded ones are not sent again)", id)}
	}
	cred, err := e.openCredential(ctx, id)
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
	var ws []work
	for _, i := range retryable {
		tr := &rot.Targets[i]
		t := findTarget(src, tr.Name)
		req, err := t.Adapter.Build(cred)
		if err != nil {
			_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner)
			return nil, fmt.Errorf("rebuild request for target %q: %w", t.Name, err)
		}
		tr.Status, tr.Error, tr.Verified, tr.Warning, tr.FinishedAt = TargetPending, nil, false, "", nil
		ws = append(ws, work{idx: i, target: t, req: req})
	}
	rot.Status, rot.FinishedAt = RotationPending, nil
	if err := e.store.UpdateRotation(ctx, rot); err != nil {
		_ = e.store.ReleaseLease(ctx, id, e.cfg.Owner)
		return nil, fmt.Errorf("record retry: %w", err)
	}
	e.log.Info("rotation retried", zap.String("rotation_id", id), zap.Int("targets", len(ws)), zap.String("actor", actor))
	e.audit(AuditEvent{Actor: actor, Action: "rotation.retried", Source: rot.Source, RotationID: id, Detail: fmt.Sprintf("%d target(s)", len(ws))})
	snapshot := rot.Clone()
	if !e.launch(rot, cred, ws) {
		return nil, ErrShuttingDown
	}
	return snapshot, nil
}

func (e *Engine) execute(ctx context.Context, r *run, ws []work) {
	defer e.wg.Done()
	defer r.cancel()
	e.cfg.Observer.RotationStarted()
	e.setStatus(ctx, r, func(rot *Rotation) { rot.Status = RotationRunning })

	// A bounded pool of workers rather than a goroutine per target: a 10,000-target fan-out
	// would otherwise park 10,000 goroutines (and their stacks) on 64 platform slots. Twice the
	// slots keeps the slots busy while other workers back off or verify.
	queue := make(chan work)
	var wg sync.WaitGroup
	for i := 0; i < e.workers(ws); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range queue {
				e.runTarget(ctx, r, w)
			}
		}()
	}
	for _, w := range ws {
		queue <- w
	}
	close(queue)
	wg.Wait()

	r.mu.Lock()
	lost := r.lost
	r.mu.Unlock()
	interrupted := e.cfg.DurableStore && errors.Is(e.ctx.Err(), context.Canceled) && e.isClosing()
	var final *Rotation
	if !lost && !interrupted {
		e.setStatus(ctx, r, func(rot *Rotation) {
			if rot.Status = Outcome(rot.Targets); rot.Status.Finished() {
				now := e.now()
				rot.FinishedAt = &now
			}
			final = rot.Clone()
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

// workers is how many targets of a rotation run at once: twice the concurrency of the
// platforms involved, at most one per target.
func (e *Engine) workers(ws []work) int {
	seen := map[string]bool{}
	n := 0
	for _, w := range ws {
		if p := w.target.Platform; !seen[p] {
			seen[p] = true
			n += 2 * e.platforms[p].MaxConcurrency
		}
	}
	return max(1, min(n, len(ws)))
}

// finished records the end of a rotation: the log line, the audit event and, when every target
// succeeded, the deletion of its credential.
func (e *Engine) finished(ctx context.Context, final *Rotation) {
	var errs *multierror.Error
	for _, t := range final.Targets {
		if t.Error != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.Name, t.Error))
		}
	}
	fields := []zap.Field{zap.String("rotation_id", final.ID), zap.String("source", final.Source),
		zap.String("status", string(final.Status)), zap.Int64("took_ms", final.FinishedAt.Sub(final.CreatedAt).Milliseconds())}
	if err := errs.ErrorOrNil(); err != nil {
		fields = append(fields, zap.String("errors", err.Error()))
	}
	e.log.Info("rotation finished", fields...)
	e.audit(AuditEvent{Action: "rotation.finished", Source: final.Source, RotationID: final.ID, Status: string(final.Status)})
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
	sctx, cancel := storeContext(ctx)
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
	sctx, cancel := storeContext(ctx)
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

// storeCallTimeout bounds a store write that must finish even when its caller was canceled.
const storeCallTimeout = 10 * time.Second

// storeContext is ctx's values without its cancellation, bounded by storeCallTimeout: for store
// writes that record what already happened and must not be cut off half way.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
}

// now is the engine's time as every answer shows it: UTC, in microseconds, the precision
// both stores keep, so that a time read back equals the one first returned.
func (e *Engine) now() time.Time { return e.clock.Now().UTC().Truncate(time.Microsecond) }

func (e *Engine) audit(ev AuditEvent) {
	if ev.At.IsZero() {
		ev.At = e.now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.AppendAudit(ctx, ev); err != nil {
		e.log.Error("store: append audit event", zap.String("action", ev.Action), zap.String("rotation_id", ev.RotationID), zap.Error(err))
	}
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

// Wait returns the rotation once it has finished, or its current state when ctx ends first. A
// rotation worked by another replica is polled.
func (e *Engine) Wait(ctx context.Context, id string) (*Rotation, error) {
	for {
		e.mu.Lock()
		r, ok := e.runs[id]
		e.mu.Unlock()
		if ok {
			select {
			case <-r.done:
			case <-ctx.Done():
				return e.Get(context.WithoutCancel(ctx), id)
			}
		}
		rot, err := e.Get(context.WithoutCancel(ctx), id)
		if err != nil || rot.Status.Finished() {
			return rot, err
		}
		if e.clock.Sleep(ctx, 200*time.Millisecond) != nil {
			return e.Get(context.WithoutCancel(ctx), id)
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

// Ping checks the store answers.
func (e *Engine) Ping(ctx context.Context) error { return e.store.Ping(ctx) }

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

// Shutdown stops accepting rotations and waits for running ones until ctx ends; then it stops
// what is left. With a durable store those targets stay unfinished and the next start (or
// another replica) resumes them; leases are released so that happens at once.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: rotations still running after the grace period were stopped; they resume at the next start: %w", ctx.Err())
	}
	e.cancel()
	<-done
	e.bg.Wait()
	return err
}

func findTarget(s *Source, name string) *Target {
	if s == nil {
		return nil
	}
	for _, t := range s.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
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

// idGen makes rotation ids that sort by creation: milliseconds, then a counter within the
// millisecond (and across a clock step back), then randomness so replicas do not collide.
type idGen struct {
	mu     sync.Mutex
	lastMS int64
	seq    uint16
}

func (g *idGen) next() string {
	g.mu.Lock()
	ms := time.Now().UnixMilli()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.seq++
		if g.seq == 0 { // 65536 ids in one millisecond: borrow the next one
			ms++
		}
	} else {
		g.seq = 0
	}
	g.lastMS = ms
	seq := g.seq
	g.mu.Unlock()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("rot_%011x%04x%s", ms, seq, hex.EncodeToString(b[:]))
}
