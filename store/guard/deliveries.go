package guard

import (
	"context"
	"time"

	"github.com/credsync/credsync/core"
)

// ClaimDeliveries implements core.Store.
func (g *Store) ClaimDeliveries(ctx context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) ([]core.Delivery, error) {
	return call(g, ctx, "claim deliveries", func(ctx context.Context) ([]core.Delivery, error) {
		return g.s.ClaimDeliveries(ctx, owner, notification, now, limit, ttl)
	})
}

// FinishDelivery implements core.Store.
func (g *Store) FinishDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus) (bool, error) {
	return call(g, ctx, "finish delivery", func(ctx context.Context) (bool, error) {
		return g.s.FinishDelivery(ctx, owner, a, status)
	})
}

// RescheduleDelivery implements core.Store.
func (g *Store) RescheduleDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, next time.Time) (bool, error) {
	return call(g, ctx, "reschedule delivery", func(ctx context.Context) (bool, error) {
		return g.s.RescheduleDelivery(ctx, owner, a, next)
	})
}

// DeliveryCounts implements core.Store.
func (g *Store) DeliveryCounts(ctx context.Context) ([]core.DeliveryCounts, error) {
	return call(g, ctx, "count deliveries", func(ctx context.Context) ([]core.DeliveryCounts, error) {
		return g.s.DeliveryCounts(ctx)
	})
}

// PurgeEvents implements core.Store.
func (g *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	return call(g, ctx, "purge events", func(ctx context.Context) (int, error) {
		return g.s.PurgeEvents(ctx, before, limit)
	})
}
