package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/metrics"
	"github.com/credsync/credsync/store/memstore"
)

func TestNotificationMetrics(t *testing.T) {
	m := metrics.New()
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	require.NotContains(t, scrape(), "credsync_notification", "no notification metrics before a notification reports")
	m.DeliveryAttempt("ops", "retry")
	m.DeliveryAttempt("ops", "delivered")
	m.DeliveryCounts(core.DeliveryCounts{Notification: "ops", Pending: 2, Failing: 1, Delivered: 40, Failed: 3, LastError: "never a label"})
	text := scrape()
	for _, want := range []string{
		`credsync_notification_attempts_total{notification="ops",result="retry"} 1`,
		`credsync_notification_attempts_total{notification="ops",result="delivered"} 1`,
		`credsync_notification_deliveries{notification="ops",status="pending"} 2`,
		`credsync_notification_deliveries{notification="ops",status="failing"} 1`,
		`credsync_notification_deliveries{notification="ops",status="delivered"} 40`,
		`credsync_notification_deliveries{notification="ops",status="failed"} 3`,
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "never a label")

	// The store's delivery calls are timed like the others.
	st := m.Store(memstore.New())
	require.NoError(t, st.EnqueueEvent(context.Background(), core.Event{ID: "evt_1", Type: core.EventRotationFailed, Time: time.Now()}, []string{"ops"}))
	_, err := st.ClaimDeliveries(context.Background(), "r", "ops", time.Now(), 1, time.Minute)
	require.NoError(t, err)
	_, err = st.DeliveryCounts(context.Background())
	require.NoError(t, err)
	text = scrape()
	for _, op := range []string{"enqueue_event", "claim_deliveries", "delivery_counts"} {
		require.Contains(t, text, `credsync_store_operation_duration_seconds_count{op="`+op+`",result="ok"} 1`)
	}
}
