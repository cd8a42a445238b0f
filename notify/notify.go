// Package notify delivers credsync's events (DESIGN.md "Notifications") to the configured
// webhooks, at least once, from the durable outbox in the store.
//
// The engine writes each event with one pending delivery per notification that wants it, in one
// transaction (core.Store.EnqueueEvent); it never waits for a receiver. A Service runs one loop
// per notification, on goroutines of its own: it claims due deliveries from the store
// (core.Store.ClaimDeliveries: on PostgreSQL FOR UPDATE SKIP LOCKED, so each delivery is sent by
// one replica at a time), sends each through the notification's integration (one per format:
// json, slack), and records the outcome: delivered; rescheduled with exponential backoff after a
// network error, a timeout, 408, 429 (Retry-After honoured) or 5xx; failed at once after another
// 4xx, or once 24 hours have passed since the event. A receiver that is down is probed with one
// delivery at a time, backing off, so it costs one attempt per backoff rather than one per event.
//
// Nothing sent holds a secret: events carry only the engine's scrubbed target errors. The
// webhook URL may itself hold a token (Slack's do): it is never logged, stored or shown, only
// its host; the receiver's answers are scrubbed of it before they reach a log or the store.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
)

// Formats.
const (
	FormatJSON  = "json"  // the event as JSON, signed when a secret is set
	FormatSlack = "slack" // a Slack incoming-webhook message: {"text": "..."}
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultPoll        = time.Second
	DefaultMaxAge      = 24 * time.Hour
	DefaultBackoffBase = 2 * time.Second
	DefaultBackoffMax  = 30 * time.Minute
	DefaultBatch       = 4
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultCountsEvery = 10 * time.Second
	// DefaultStoreTimeout bounds each store call the service makes.
	DefaultStoreTimeout = 10 * time.Second
)

// purgeBatch is how many events one PurgeEvents call deletes at most.
const purgeBatch = 500

// lateGrace is how late past the 24-hour cut a delivery may still be attempted: its last
// attempt is scheduled at the cut and claimed a poll or so after it.
const lateGrace = time.Minute

// Notification is one configured receiver.
type Notification struct {
	Name string
	// URL may hold a token (Slack's webhooks do): only its host is ever logged or shown.
	URL    core.Secret
	Format string // FormatJSON (default) or FormatSlack
	// Secret, with FormatJSON, signs each body: X-Credsync-Signature.
	Secret core.Secret
	// Events are the event types it wants.
	Events []string
}

// NamePattern is what a notification's name may be: it labels metrics and API answers.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Observer receives the service's metrics (package metrics implements it).
type Observer interface {
	// DeliveryAttempt counts one attempt: result delivered, retry or failed.
	DeliveryAttempt(notification, result string)
	// DeliveryCounts reports a notification's deliveries by status, as the store counts them.
	DeliveryCounts(c core.DeliveryCounts)
}

// Config wires a Service.
type Config struct {
	Notifications []Notification
	Store         core.Store
	// Owner names this replica in delivery leases (the engine's owner: stable across restarts,
	// so that a restarted replica takes back what it held at once).
	Owner    string
	Logger   *zap.Logger
	Observer Observer
	// Client sends the webhooks; nil: NewClient(Timeout).
	Client *http.Client
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// Poll is how often each notification looks for due deliveries (default DefaultPoll).
	Poll time.Duration
	// MaxAge is how long after an event its delivery is retried (default 24h); then it fails.
	MaxAge time.Duration
	// BackoffBase and BackoffMax shape the retries: attempt n failed, the next waits about
	// BackoffBase·2^(n-1), at most BackoffMax (defaults 2s and 30m).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Batch is how many deliveries one claim takes while the receiver answers (default 4).
	Batch int
	// Retention is how long events are kept in the outbox, delivered or not (default 7 days).
	Retention time.Duration
	// CountsEvery is how often the store's counts are reported to Observer (default 10s).
	CountsEvery time.Duration
	// StoreTimeout bounds each store call (default DefaultStoreTimeout).
	StoreTimeout time.Duration
	// Now is the clock (default time.Now); Jitter picks the actual wait in [d/2, d] (default
	// a uniform random pick).
	Now    func() time.Time
	Jitter func(d time.Duration) time.Duration
}

// Service delivers due events to the configured notifications until Stop.
type Service struct {
	cfg      Config
	log      *zap.Logger
	store    core.Store
	sched    schedule
	leaseTTL time.Duration
	targets  []*target

	ctx    context.Context // attempts; canceled when Stop runs out of time
	cancel context.CancelFunc
	quit   chan struct{} // closed by Stop: claim nothing more
	wg     sync.WaitGroup

	startOnce, stopOnce sync.Once
}

// target is one notification and its integration.
type target struct {
	n    Notification
	host string // the URL's host: all that is ever logged of it
	send integration
}

// New checks the notifications and returns a service; Start runs it.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("notify: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Owner == "" {
		return nil, errors.New("notify: an owner (the replica's name) is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.Poll, DefaultPoll)
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.BackoffBase, DefaultBackoffBase)
	def(&cfg.BackoffMax, DefaultBackoffMax)
	def(&cfg.Retention, DefaultRetention)
	def(&cfg.CountsEvery, DefaultCountsEvery)
	def(&cfg.StoreTimeout, DefaultStoreTimeout)
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(cfg.Timeout)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, store: cfg.Store, quit: make(chan struct{}),
		sched: schedule{base: cfg.BackoffBase, max: cfg.BackoffMax, maxAge: cfg.MaxAge, jitter: cfg.Jitter},
		// A claim covers its whole batch, each attempt at most Timeout, and the store writes.
		leaseTTL: time.Duration(cfg.Batch)*(cfg.Timeout+cfg.StoreTimeout) + 30*time.Second}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for _, n := range cfg.Notifications {
		if !NamePattern.MatchString(n.Name) {
			return nil, fmt.Errorf("notify: notification name %q: letters, digits, . _ - (at most 64)", n.Name)
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("notify: notification %q is configured twice", n.Name)
		}
		seen[n.Name] = true
		if n.Format == "" {
			n.Format = FormatJSON
		}
		host, err := CheckURL(n.URL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("notify: notification %s: %w", n.Name, err)
		}
		t := &target{n: n, host: host}
		hook := newWebhook(n, host, cfg.Client, cfg.Now)
		switch n.Format {
		case FormatJSON:
			t.send = jsonIntegration{hook}
		case FormatSlack:
			if !n.Secret.IsZero() {
				return nil, fmt.Errorf("notify: notification %s: format slack takes no secret (Slack's incoming webhooks verify no signature: the URL is the secret)", n.Name)
			}
			t.send = slackIntegration{hook}
		default:
			return nil, fmt.Errorf("notify: notification %s: format %q: json or slack", n.Name, n.Format)
		}
		s.targets = append(s.targets, t)
	}
	return s, nil
}

// CheckURL checks a webhook URL (absolute http or https, with a host) and returns its host.
// Its errors never quote the URL: its path or query may hold a token.
func CheckURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("url does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("url must be an absolute http:// or https:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("url has no host")
	}
	if u.User != nil {
		return "", errors.New("url must not carry a user or password (user@host)")
	}
	return u.Host, nil
}

// Start runs the service: one delivery loop per notification, the counts reported to the
// Observer, and the outbox purge. It returns at once.
func (s *Service) Start(context.Context) error {
	s.startOnce.Do(func() {
		for _, t := range s.targets {
			s.log.Info("notification: delivering events", zap.String("notification", t.n.Name), zap.String("host", t.host),
				zap.String("format", t.n.Format), zap.Bool("signed", t.n.Format != FormatSlack && !t.n.Secret.IsZero()), zap.Strings("events", t.n.Events))
			s.wg.Add(1)
			go s.loop(t)
		}
		s.wg.Add(1)
		go s.housekeeping()
	})
	return nil
}

// Stop claims nothing more and waits for the attempts in flight until ctx ends; then it cancels
// them. An attempt cut off this way is not recorded: the delivery stays leased to this replica,
// which takes it back at its next start (another replica once the lease expires), so it is sent
// again: at least once.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.quit) })
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("notify: deliveries still in flight were stopped; they are sent again at the next start: %w", ctx.Err())
		s.cancel()
		<-done
	}
	s.cancel()
	return err
}

// sleep waits d, or until Stop; false once stopping.
func (s *Service) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-s.quit:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-s.quit:
		return false
	case <-tm.C:
		return true
	}
}

func (s *Service) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

func (s *Service) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
}

// loop delivers one notification's due deliveries until Stop. While the receiver answers, it
// claims a batch at a time; after a retryable failure it waits the receiver's backoff (it grows
// with consecutive failures) and probes with one delivery until one goes through. Deliveries
// claimed but not sent when a batch stops stay leased to this replica: the next claim takes them
// back.
func (s *Service) loop(t *target) {
	defer s.wg.Done()
	failures := 0
	wait := time.Duration(0)
	for s.sleep(wait) {
		limit := s.cfg.Batch
		if failures > 0 {
			limit = 1
		}
		ctx, cancel := s.storeCtx()
		ds, err := s.store.ClaimDeliveries(ctx, s.cfg.Owner, t.n.Name, s.cfg.Now(), limit, s.leaseTTL)
		cancel()
		if err != nil {
			s.log.Warn("notification: cannot claim due deliveries; trying again", zap.String("notification", t.n.Name), zap.Error(err))
			wait = max(s.cfg.Poll, 5*time.Second)
			continue
		}
		wait = s.cfg.Poll
		if len(ds) == limit {
			wait = 0 // more may be due
		}
		for _, d := range ds {
			if s.stopping() {
				break
			}
			switch res, asked := s.deliver(t, d); res {
			case outcomeDelivered, outcomeFinal:
				failures = 0 // the receiver answers
			case outcomeRetry:
				failures++
				wait = max(s.cfg.Poll, s.sched.delay(failures), asked)
			case outcomeSkipped, outcomeStopped:
			}
			if failures > 0 {
				break
			}
		}
	}
}

type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeFinal             // failed for good (a final answer, or past the cut)
	outcomeRetry             // rescheduled (or given up at the cut after a retryable failure)
	outcomeSkipped           // given up without sending: too late
	outcomeStopped           // cut off by Stop: not recorded
)

// deliver makes one attempt and records its outcome; asked is the wait a receiver asked for
// (Retry-After).
func (s *Service) deliver(t *target, d core.Delivery) (res outcome, asked time.Duration) {
	log := s.log.With(zap.String("notification", t.n.Name), zap.String("host", t.host),
		zap.String("event_id", d.Event.ID), zap.String("event_type", d.Event.Type), zap.Int("attempt", d.Attempts+1))
	start := s.cfg.Now()
	if start.After(d.Event.Time.Add(s.cfg.MaxAge + lateGrace)) {
		msg := fmt.Sprintf("given up: not delivered within %s of the event", hours(s.cfg.MaxAge))
		s.finish(log, d, core.DeliveryAttempt{At: start, Error: msg, NotSent: true}, core.DeliveryFailed)
		log.Error("notification: " + msg)
		s.observe(t, "failed")
		return outcomeSkipped, 0
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	retry, err := t.send.Notify(ctx, d.Event)
	cancel()
	at := s.cfg.Now()
	switch {
	case err == nil:
		s.finish(log, d, core.DeliveryAttempt{At: at}, core.DeliveryDelivered)
		log.Debug("notification delivered", zap.Duration("took", at.Sub(start)))
		s.observe(t, "delivered")
		return outcomeDelivered, 0
	case s.ctx.Err() != nil:
		log.Info("notification: attempt stopped by the shutdown; it is sent again at the next start")
		return outcomeStopped, 0
	case !retry:
		msg := err.Error() + " (not retried)"
		s.finish(log, d, core.DeliveryAttempt{At: at, Error: msg}, core.DeliveryFailed)
		log.Error("notification failed for good", zap.String("error", msg))
		s.observe(t, "failed")
		return outcomeFinal, 0
	}
	next, ok := s.sched.retryAt(d.Event.Time, d.Attempts+1, at, retryAfter(err))
	if !ok {
		msg := fmt.Sprintf("given up %s after the event: %s", hours(s.cfg.MaxAge), err)
		s.finish(log, d, core.DeliveryAttempt{At: at, Error: msg}, core.DeliveryFailed)
		log.Error("notification failed for good", zap.String("error", msg))
		s.observe(t, "failed")
		return outcomeRetry, retryAfter(err)
	}
	ctx, cancel = s.storeCtx()
	held, serr := s.store.RescheduleDelivery(ctx, s.cfg.Owner, core.DeliveryAttempt{EventID: d.Event.ID, Notification: t.n.Name, At: at, Error: err.Error()}, next)
	cancel()
	s.recorded(log, held, serr)
	log.Warn("notification not delivered; retrying", zap.String("error", err.Error()), zap.Time("next_attempt_at", next))
	s.observe(t, "retry")
	return outcomeRetry, retryAfter(err)
}

// finish records a final outcome.
func (s *Service) finish(log *zap.Logger, d core.Delivery, a core.DeliveryAttempt, status core.DeliveryStatus) {
	a.EventID, a.Notification = d.Event.ID, d.Notification
	ctx, cancel := s.storeCtx()
	held, err := s.store.FinishDelivery(ctx, s.cfg.Owner, a, status)
	cancel()
	s.recorded(log, held, err)
}

func (s *Service) recorded(log *zap.Logger, held bool, err error) {
	switch {
	case err != nil:
		// The lease runs out and the delivery is attempted again: at least once.
		log.Warn("notification: store: record the attempt; it may be sent again", zap.Error(err))
	case !held:
		log.Warn("notification: the delivery's lease was lost (another replica took it over); it may be sent twice")
	}
}

// hours prints a whole number of hours as "24h", anything else as time.Duration does.
func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

func (s *Service) observe(t *target, result string) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.DeliveryAttempt(t.n.Name, result)
	}
}

// housekeeping reports the counts to the Observer every CountsEvery and purges events older
// than Retention every hour (every replica: both are idempotent).
func (s *Service) housekeeping() {
	defer s.wg.Done()
	const purgeEvery = time.Hour
	lastPurge := time.Time{}
	for {
		s.reportCounts()
		if now := s.cfg.Now(); now.Sub(lastPurge) >= purgeEvery {
			lastPurge = now
			s.purge(now)
		}
		if !s.sleep(s.cfg.CountsEvery) {
			return
		}
	}
}

func (s *Service) reportCounts() {
	if s.cfg.Observer == nil || len(s.targets) == 0 {
		return
	}
	ctx, cancel := s.storeCtx()
	cs, err := s.store.DeliveryCounts(ctx)
	cancel()
	if err != nil {
		s.log.Warn("notification: store: count deliveries", zap.Error(err))
		return
	}
	by := map[string]core.DeliveryCounts{}
	for _, c := range cs {
		by[c.Notification] = c
	}
	for _, t := range s.targets {
		c, ok := by[t.n.Name]
		if !ok {
			c = core.DeliveryCounts{Notification: t.n.Name}
		}
		s.cfg.Observer.DeliveryCounts(c)
	}
}

func (s *Service) purge(now time.Time) {
	before := now.Add(-s.cfg.Retention)
	for !s.stopping() {
		ctx, cancel := s.storeCtx()
		n, err := s.store.PurgeEvents(ctx, before, purgeBatch)
		cancel()
		if err != nil {
			s.log.Warn("notification: store: purge old events", zap.Error(err))
			return
		}
		if n > 0 {
			s.log.Info("purged old events from the outbox", zap.Int("events", n), zap.Duration("older_than", s.cfg.Retention))
		}
		if n < purgeBatch || !s.sleep(100*time.Millisecond) {
			return
		}
	}
}
