package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/notify"
)

var _ notify.Observer = (*Metrics)(nil)

// Notification metrics: labelled by the notification's name (from the config: bounded) and an
// enum. notify.Service reports to them.

type notifyMetrics struct {
	deliveries *prometheus.GaugeVec
	attempts   *prometheus.CounterVec
}

// notify registers the notification collectors on first use: a gateway without notifications
// exports none.
func (m *Metrics) notify() *notifyMetrics {
	m.notifyOnce.Do(func() {
		m.notifyM = &notifyMetrics{
			deliveries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "credsync_notification_deliveries",
				Help: "Deliveries of events to each notification, by status: pending (not attempted yet), failing (attempted, still retried), delivered, failed (given up). Counted in the store (every replica), refreshed every few seconds; events are purged after a week.",
			}, []string{"notification", "status"}),
			attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "credsync_notification_attempts_total",
				Help: "Delivery attempts this replica made, by notification and result: delivered, retry (will be retried), failed (given up).",
			}, []string{"notification", "result"}),
		}
		m.reg.MustRegister(m.notifyM.deliveries, m.notifyM.attempts)
	})
	return m.notifyM
}

// DeliveryAttempt counts one delivery attempt (result delivered, retry or failed).
func (m *Metrics) DeliveryAttempt(notification, result string) {
	m.notify().attempts.WithLabelValues(notification, result).Inc()
}

// DeliveryCounts sets a notification's deliveries by status, as the store counts them.
func (m *Metrics) DeliveryCounts(c core.DeliveryCounts) {
	g := m.notify().deliveries
	g.WithLabelValues(c.Notification, "pending").Set(float64(c.Pending))
	g.WithLabelValues(c.Notification, "failing").Set(float64(c.Failing))
	g.WithLabelValues(c.Notification, "delivered").Set(float64(c.Delivered))
	g.WithLabelValues(c.Notification, "failed").Set(float64(c.Failed))
}

// The store calls of notification deliveries, timed like every other (timedStore).

func (t *timedStore) ClaimDeliveries(ctx context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) (ds []core.Delivery, err error) {
	defer func(start time.Time) { t.observe("claim_deliveries", start, err) }(time.Now())
	return t.Store.ClaimDeliveries(ctx, owner, notification, now, limit, ttl)
}

func (t *timedStore) FinishDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus) (ok bool, err error) {
	defer func(start time.Time) { t.observe("finish_delivery", start, err) }(time.Now())
	return t.Store.FinishDelivery(ctx, owner, a, status)
}

func (t *timedStore) RescheduleDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, next time.Time) (ok bool, err error) {
	defer func(start time.Time) { t.observe("reschedule_delivery", start, err) }(time.Now())
	return t.Store.RescheduleDelivery(ctx, owner, a, next)
}

func (t *timedStore) DeliveryCounts(ctx context.Context) (cs []core.DeliveryCounts, err error) {
	defer func(start time.Time) { t.observe("delivery_counts", start, err) }(time.Now())
	return t.Store.DeliveryCounts(ctx)
}

func (t *timedStore) PurgeEvents(ctx context.Context, before time.Time, limit int) (n int, err error) {
	defer func(start time.Time) { t.observe("purge_events", start, err) }(time.Now())
	return t.Store.PurgeEvents(ctx, before, limit)
}
