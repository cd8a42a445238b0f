package metrics

import (
	"context"
	"time"

	"github.com/credsync/credsync/core"
)

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
