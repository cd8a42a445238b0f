package guard

import (
	"context"
	"time"

	"github.com/credsync/credsync/core"
)

// ClaimDeliveries implements core.Store.
func (g *Store) ClaimDeliveries(ctx context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) ([]core.Delivery, error) {
	var out []core.Delivery
	err := g.do(ctx, "claim deliveries", func(ctx context.Context) (err error) {
		out, err = g.s.ClaimDeliveries(ctx, owner, notification, now, limit, ttl)
		return err
	})
	return out, err
}

// FinishDelivery implements core.Store.
func (g *Store) FinishDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus) (bool, error) {
	var ok bool
	err := g.do(ctx, "finish delivery", func(ctx context.Context) (err error) {
		ok, err = g.s.FinishDelivery(ctx, owner, a, status)
		return err
	})
	return ok, err
}

// RescheduleDelivery implements core.Store.
func (g *Store) RescheduleDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, next time.Time) (bool, error) {
	var ok bool
	err := g.do(ctx, "reschedule delivery", func(ctx context.Context) (err error) {
		ok, err = g.s.RescheduleDelivery(ctx, owner, a, next)
		return err
	})
	return ok, err
}

// DeliveryCounts implements core.Store.
func (g *Store) DeliveryCounts(ctx context.Context) ([]core.DeliveryCounts, error) {
	var out []core.DeliveryCounts
	err := g.do(ctx, "count deliveries", func(ctx context.Context) (err error) {
		out, err = g.s.DeliveryCounts(ctx)
		return err
	})
	return out, err
}

// PurgeEvents implements core.Store.
func (g *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := g.do(ctx, "purge events", func(ctx context.Context) (err error) {
		n, err = g.s.PurgeEvents(ctx, before, limit)
		return err
	})
	return n, err
}
