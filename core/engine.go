package core

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

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
	// DefaultHistoryRetention keeps finished rotations 90 days; DefaultAuditRetention keeps the
	// audit trail a year, apart from them.
	DefaultHistoryRetention = 90 * 24 * time.Hour
	DefaultAuditRetention   = 365 * 24 * time.Hour
)

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
	// SourceTick is how often retires and schedules of sources rotated at the source are
	// looked at (0: DefaultSourceTick).
	SourceTick time.Duration
	// VerifyTick is how often the scheduled checks (verify_every) are looked at (0:
	// DefaultVerifyTick).
	VerifyTick time.Duration
	// HistoryRetention is how long a finished rotation is kept (0: DefaultHistoryRetention);
	// AuditRetention how long an audit event is (0: DefaultAuditRetention).
	HistoryRetention time.Duration
	AuditRetention   time.Duration
	// StoreTimeout bounds each store call the engine makes on its own (state writes that must
	// outlive a canceled caller, audit events, claim renewals, Ping); 0: 10s. The gateway sets
	// store.timeout.
	StoreTimeout time.Duration
	// Notifications are the configured notifications (name and event filter): each event is
	// written with one delivery for each that wants its type (Store.EnqueueEvent); package notify
	// sends them.
	Notifications []Subscription
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
	pauses  pauses
	ids     idGen
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
	if cfg.SourceTick <= 0 {
		cfg.SourceTick = DefaultSourceTick
	}
	if cfg.VerifyTick <= 0 {
		cfg.VerifyTick = DefaultVerifyTick
	}
	if cfg.HistoryRetention <= 0 {
		cfg.HistoryRetention = DefaultHistoryRetention
	}
	if cfg.AuditRetention <= 0 {
		cfg.AuditRetention = DefaultAuditRetention
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
	e.refreshPauses(ctx) // before anything is resumed: a pause holds across restarts
	if err := e.resumeAll(ctx); err != nil {
		return err
	}
	e.bg.Add(5)
	go e.loop()
	go e.pauseLoop()
	go e.purgeLoop()
	go e.sourceLoop()
	go e.verifyLoop()
	return nil
}

// sourceLoop is the service that retires previous users once due and starts scheduled
// rotations, on its own goroutine: a slow source database never delays lease renewals.
func (e *Engine) sourceLoop() {
	defer e.bg.Done()
	rotating := false
	for _, s := range e.sources {
		rotating = rotating || s.Rotation != nil
	}
	if !rotating {
		return
	}
	tick := time.NewTicker(e.cfg.SourceTick)
	defer tick.Stop()
	for {
		e.sourceTick(e.ctx) // at start too: a retire that fell due while the gateway was down
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *Engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// now is the engine's time as every answer shows it: UTC, in microseconds, the precision
// both stores keep, so that a time read back equals the one first returned.
func (e *Engine) now() time.Time { return e.clock.Now().UTC().Truncate(time.Microsecond) }

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
