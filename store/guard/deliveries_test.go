package guard_test

import (
	"context"
	"time"

	"github.com/credsync/credsync/core"
)

// frozen's deliveries (guard_test.go): every call hangs.

func (f frozen) ClaimDeliveries(context.Context, string, string, time.Time, int, time.Duration) ([]core.Delivery, error) {
	f.hang()
	return nil, nil
}

func (f frozen) FinishDelivery(context.Context, string, core.DeliveryAttempt, core.DeliveryStatus) (bool, error) {
	f.hang()
	return false, nil
}

func (f frozen) RescheduleDelivery(context.Context, string, core.DeliveryAttempt, time.Time) (bool, error) {
	f.hang()
	return false, nil
}

func (f frozen) DeliveryCounts(context.Context) ([]core.DeliveryCounts, error) {
	f.hang()
	return nil, nil
}

func (f frozen) PurgeEvents(context.Context, time.Time, int) (int, error) { f.hang(); return 0, nil }
