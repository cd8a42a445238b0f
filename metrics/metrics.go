// Package metrics exposes credsync's Prometheus metrics: it implements core.Observer for the
// engine and wraps the store to time it. Every label value is bounded (vendor and platform come
// from the config, the rest are enums); no rotation id, target name or secret is ever a label.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/credsync/credsync/core"
)

// Metrics holds credsync's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	rotations      *prometheus.CounterVec
	inFlight       prometheus.Gauge
	targets        *prometheus.CounterVec
	vendorLatency  *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	storeLatency   *prometheus.HistogramVec
	apiRequests    *prometheus.CounterVec
	apiRateLimited *prometheus.CounterVec
	pauses         prometheus.Gauge
	health         *prometheus.GaugeVec

	notifyOnce sync.Once // notify.go
	notifyM    *notifyMetrics
}

var _ core.Observer = (*Metrics)(nil)

// New registers the collectors (and the Go and process collectors) in a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsync_rotations_total", Help: "Rotations finished, by outcome.",
		}, []string{"status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "credsync_rotations_in_flight", Help: "Rotations this replica is working on.",
		}),
		targets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsync_target_updates_total", Help: "Target updates finished, by vendor, platform and outcome.",
		}, []string{"vendor", "platform", "status"}),
		vendorLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "credsync_vendor_request_duration_seconds", Help: "Vendor calls, by vendor, platform, operation (update, verify) and status class (2xx, 4xx, 5xx, network, other).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"vendor", "platform", "op", "class"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsync_vendor_retries_total", Help: "Vendor calls retried after a retryable failure, by vendor and platform.",
		}, []string{"vendor", "platform"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "credsync_store_operation_duration_seconds", Help: "Rotation store operations, by operation and result (ok, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op", "result"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsync_api_requests_total", Help: "API requests, by route pattern and status code.",
		}, []string{"route", "code"}),
		apiRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsync_api_rate_limited_total", Help: "API requests refused with 429 by the per-token rate limit, by token name.",
		}, []string{"token"}),
		pauses: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "credsync_pauses_active", Help: "Emergency pauses in force (no new vendor call starts where one holds).",
		}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "credsync_targets_health", Help: "Targets with verify_every, by platform and health (healthy, unhealthy, unknown), as the last scheduled check saw them.",
		}, []string{"platform", "health"}),
	}
	m.reg.MustRegister(m.rotations, m.inFlight, m.targets, m.vendorLatency, m.retries, m.storeLatency,
		m.apiRequests, m.apiRateLimited, m.pauses, m.health, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry the collectors live in (tests read it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// RotationStarted implements core.Observer.
func (m *Metrics) RotationStarted() { m.inFlight.Inc() }

// RotationFinished implements core.Observer; an empty status means the rotation was left
// unfinished here (shutdown, lease lost).
func (m *Metrics) RotationFinished(status core.RotationStatus) {
	m.inFlight.Dec()
	if status != "" {
		m.rotations.WithLabelValues(string(status)).Inc()
	}
}

// TargetFinished implements core.Observer.
func (m *Metrics) TargetFinished(vendor, platform string, status core.TargetStatus) {
	m.targets.WithLabelValues(vendor, platform, string(status)).Inc()
}

// VendorCall implements core.Observer.
func (m *Metrics) VendorCall(vendor, platform, op, class string, took time.Duration) {
	m.vendorLatency.WithLabelValues(vendor, platform, op, class).Observe(took.Seconds())
}

// Retry implements core.Observer.
func (m *Metrics) Retry(vendor, platform string) { m.retries.WithLabelValues(vendor, platform).Inc() }

// Paused implements core.Observer.
func (m *Metrics) Paused(active int) { m.pauses.Set(float64(active)) }

// Health implements core.Observer.
func (m *Metrics) Health(platform string, counts map[core.HealthStatus]int) {
	for st, n := range counts {
		m.health.WithLabelValues(platform, string(st)).Set(float64(n))
	}
}

// APIRequest counts one API request by its route pattern (never the raw path: ids stay out).
func (m *Metrics) APIRequest(route string, code int) {
	m.apiRequests.WithLabelValues(route, httpCode(code)).Inc()
}

// APIRateLimited counts a request refused by a token's rate limit.
func (m *Metrics) APIRateLimited(token string) { m.apiRateLimited.WithLabelValues(token).Inc() }

func httpCode(c int) string {
	if c < 100 || c > 599 {
		return "other"
	}
	const digits = "0123456789"
	return string([]byte{digits[c/100], digits[c/10%10], digits[c%10]})
}

// Store wraps a core.Store, timing every operation.
func (m *Metrics) Store(s core.Store) core.Store { return &timedStore{Store: s, m: m} }

type timedStore struct {
	core.Store
	m *Metrics
}

func (t *timedStore) observe(op string, start time.Time, err error) {
	res := "ok"
	if err != nil {
		res = "error"
	}
	t.m.storeLatency.WithLabelValues(op, res).Observe(time.Since(start).Seconds())
}

func (t *timedStore) CreateRotation(ctx context.Context, n core.NewRotation) (h *core.IdempotencyHit, err error) {
	defer func(start time.Time) { t.observe("create_rotation", start, err) }(time.Now())
	return t.Store.CreateRotation(ctx, n)
}

func (t *timedStore) UpdateRotation(ctx context.Context, r *core.Rotation) (err error) {
	defer func(start time.Time) { t.observe("update_rotation", start, err) }(time.Now())
	return t.Store.UpdateRotation(ctx, r)
}

func (t *timedStore) SetRotationStatus(ctx context.Context, id string, status core.RotationStatus, finishedAt *time.Time) (err error) {
	defer func(start time.Time) { t.observe("set_rotation_status", start, err) }(time.Now())
	return t.Store.SetRotationStatus(ctx, id, status, finishedAt)
}

func (t *timedStore) FinishTarget(ctx context.Context, id string, idx int, tr core.TargetResult, ev core.AuditEvent) (err error) {
	defer func(start time.Time) { t.observe("finish_target", start, err) }(time.Now())
	return t.Store.FinishTarget(ctx, id, idx, tr, ev)
}

func (t *timedStore) UpdateTarget(ctx context.Context, id string, idx int, tr core.TargetResult) (err error) {
	defer func(start time.Time) { t.observe("update_target", start, err) }(time.Now())
	return t.Store.UpdateTarget(ctx, id, idx, tr)
}

func (t *timedStore) GetRotation(ctx context.Context, id string) (r *core.Rotation, err error) {
	defer func(start time.Time) { t.observe("get_rotation", start, err) }(time.Now())
	return t.Store.GetRotation(ctx, id)
}

func (t *timedStore) GetRotationPage(ctx context.Context, id string, p core.TargetPage) (r *core.Rotation, err error) {
	defer func(start time.Time) { t.observe("get_rotation_page", start, err) }(time.Now())
	return t.Store.GetRotationPage(ctx, id, p)
}

func (t *timedStore) LastOutcomes(ctx context.Context) (r map[string]map[string]core.LastOutcome, err error) {
	defer func(start time.Time) { t.observe("last_outcomes", start, err) }(time.Now())
	return t.Store.LastOutcomes(ctx)
}

func (t *timedStore) PurgeHistory(ctx context.Context, before time.Time, limit int) (n int, err error) {
	defer func(start time.Time) { t.observe("purge_history", start, err) }(time.Now())
	return t.Store.PurgeHistory(ctx, before, limit)
}

func (t *timedStore) PurgeAudit(ctx context.Context, before time.Time, limit int) (n int, err error) {
	defer func(start time.Time) { t.observe("purge_audit", start, err) }(time.Now())
	return t.Store.PurgeAudit(ctx, before, limit)
}

func (t *timedStore) GetSourceState(ctx context.Context, source string) (st core.SourceState, err error) {
	defer func(start time.Time) { t.observe("get_source_state", start, err) }(time.Now())
	return t.Store.GetSourceState(ctx, source)
}

func (t *timedStore) PutSourceState(ctx context.Context, st core.SourceState) (err error) {
	defer func(start time.Time) { t.observe("put_source_state", start, err) }(time.Now())
	return t.Store.PutSourceState(ctx, st)
}

func (t *timedStore) SetSourceRotation(ctx context.Context, id string, st core.SourceRotationState) (err error) {
	defer func(start time.Time) { t.observe("set_source_rotation", start, err) }(time.Now())
	return t.Store.SetSourceRotation(ctx, id, st)
}

func (t *timedStore) AcquireNamedLease(ctx context.Context, name, owner string, ttl time.Duration) (ok bool, err error) {
	defer func(start time.Time) { t.observe("acquire_named_lease", start, err) }(time.Now())
	return t.Store.AcquireNamedLease(ctx, name, owner, ttl)
}

func (t *timedStore) ReleaseNamedLease(ctx context.Context, name, owner string) (err error) {
	defer func(start time.Time) { t.observe("release_named_lease", start, err) }(time.Now())
	return t.Store.ReleaseNamedLease(ctx, name, owner)
}

func (t *timedStore) CreatePause(ctx context.Context, p core.Pause) (err error) {
	defer func(start time.Time) { t.observe("create_pause", start, err) }(time.Now())
	return t.Store.CreatePause(ctx, p)
}

func (t *timedStore) PutTargetHealth(ctx context.Context, source, target string, h core.TargetHealth) (err error) {
	defer func(start time.Time) { t.observe("put_target_health", start, err) }(time.Now())
	return t.Store.PutTargetHealth(ctx, source, target, h)
}

func (t *timedStore) GetTargetHealth(ctx context.Context, source, target string) (h core.TargetHealth, ok bool, err error) {
	defer func(start time.Time) { t.observe("get_target_health", start, err) }(time.Now())
	return t.Store.GetTargetHealth(ctx, source, target)
}

func (t *timedStore) TargetHealths(ctx context.Context) (hs map[string]map[string]core.TargetHealth, err error) {
	defer func(start time.Time) { t.observe("target_healths", start, err) }(time.Now())
	return t.Store.TargetHealths(ctx)
}

func (t *timedStore) ListPauses(ctx context.Context, active bool) (ps []core.Pause, err error) {
	defer func(start time.Time) { t.observe("list_pauses", start, err) }(time.Now())
	return t.Store.ListPauses(ctx, active)
}

func (t *timedStore) EndPause(ctx context.Context, id, actor string, at time.Time) (p core.Pause, err error) {
	defer func(start time.Time) { t.observe("end_pause", start, err) }(time.Now())
	return t.Store.EndPause(ctx, id, actor, at)
}

func (t *timedStore) EnqueueEvent(ctx context.Context, ev core.Event, notifications []string) (err error) {
	defer func(start time.Time) { t.observe("enqueue_event", start, err) }(time.Now())
	return t.Store.EnqueueEvent(ctx, ev, notifications)
}

func (t *timedStore) ListEvents(ctx context.Context, after string, limit int) (evs []core.Event, err error) {
	defer func(start time.Time) { t.observe("list_events", start, err) }(time.Now())
	return t.Store.ListEvents(ctx, after, limit)
}

func (t *timedStore) ListRotations(ctx context.Context, f core.ListFilter) (r []*core.Rotation, err error) {
	defer func(start time.Time) { t.observe("list_rotations", start, err) }(time.Now())
	return t.Store.ListRotations(ctx, f)
}

func (t *timedStore) ClaimTarget(ctx context.Context, c core.TargetClaim, ttl time.Duration) (r core.ClaimResult, err error) {
	defer func(start time.Time) { t.observe("claim_target", start, err) }(time.Now())
	return t.Store.ClaimTarget(ctx, c, ttl)
}

func (t *timedStore) RenewTargetClaim(ctx context.Context, c core.TargetClaim, ttl time.Duration) (r core.ClaimResult, err error) {
	defer func(start time.Time) { t.observe("renew_target_claim", start, err) }(time.Now())
	return t.Store.RenewTargetClaim(ctx, c, ttl)
}

func (t *timedStore) ReleaseTarget(ctx context.Context, c core.TargetClaim, hold time.Duration) (err error) {
	defer func(start time.Time) { t.observe("release_target", start, err) }(time.Now())
	return t.Store.ReleaseTarget(ctx, c, hold)
}

func (t *timedStore) AppendAudit(ctx context.Context, e core.AuditEvent) (err error) {
	defer func(start time.Time) { t.observe("append_audit", start, err) }(time.Now())
	return t.Store.AppendAudit(ctx, e)
}
