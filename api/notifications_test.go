package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// DeliveryCounts fails like the other calls of the docs test's broken store.
func (s *brokenStore) DeliveryCounts(ctx context.Context) ([]core.DeliveryCounts, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.DeliveryCounts(ctx)
}

func TestNotificationsAnswer(t *testing.T) {
	e := newDocEnv(t)
	ctx := context.Background()
	ev := core.Event{ID: "evt_1", Type: core.EventRotationFailed, Time: time.Now().UTC()}
	require.NoError(t, e.store.EnqueueEvent(ctx, ev, []string{"ops", "removed-from-the-config"}))
	require.NoError(t, e.store.EnqueueEvent(ctx, core.Event{ID: "evt_2", Type: core.EventRotationFailed, Time: time.Now().UTC()}, []string{"ops"}))
	ds, err := e.store.ClaimDeliveries(ctx, "r", "ops", time.Now(), 1, time.Minute)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	at := time.Now().UTC().Truncate(time.Microsecond)
	ok, err := e.store.RescheduleDelivery(ctx, "r", core.DeliveryAttempt{EventID: ds[0].Event.ID, Notification: "ops", At: at,
		Error: "ops.example.com answered 503 Service Unavailable"}, at.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)

	req, err := http.NewRequest("GET", e.srv.URL+"/v1/notifications", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+docToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var got NotificationsResponse
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got.Notifications, 1, "only the configured notifications")
	n := got.Notifications[0]
	require.Equal(t, "ops", n.Notification)
	require.Equal(t, core.DefaultEvents(), n.Events)
	require.Equal(t, 1, n.Pending)
	require.Equal(t, 1, n.Failing)
	require.Equal(t, "ops.example.com answered 503 Service Unavailable", n.LastError)
	require.NotNil(t, n.LastErrorAt)
	require.True(t, n.LastErrorAt.Equal(at))
	require.Nil(t, n.LastDeliveredAt)
}
