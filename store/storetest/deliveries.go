package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// The outbox of events and their deliveries to notifications.

func event(n int, typ string) core.Event {
	return core.Event{ID: fmt.Sprintf("evt_%04d", n), Type: typ, Time: base.Add(time.Duration(n) * time.Minute),
		Source: "warehouse", RotationID: id(n), Detail: "detail",
		Targets: []core.EventTarget{
			{Name: "felt/0", Platform: "felt", Status: "failed", Error: &core.EventError{Code: "rejected", Message: "HTTP 400"}},
			{Name: "rivergen/1", Platform: "rivergen", Status: "succeeded"},
		}}
}

func enqueue(t *testing.T, s core.Store, ev core.Event, notifications ...string) {
	t.Helper()
	require.NoError(t, s.EnqueueEvent(ctxT(t), ev, notifications), "EnqueueEvent %s", ev.ID)
}

func claimDeliveries(t *testing.T, s core.Store, owner, notification string, now time.Time, limit int, ttl time.Duration) []core.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(ctxT(t), owner, notification, now, limit, ttl)
	require.NoError(t, err, "ClaimDeliveries %s %s", owner, notification)
	return ds
}

func eventIDs(ds []core.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Event.ID)
	}
	return out
}

func counts(t *testing.T, s core.Store) map[string]core.DeliveryCounts {
	t.Helper()
	cs, err := s.DeliveryCounts(ctxT(t))
	require.NoError(t, err)
	out := map[string]core.DeliveryCounts{}
	for i, c := range cs {
		if i > 0 {
			require.Less(t, cs[i-1].Notification, c.Notification, "sorted by name")
		}
		out[c.Notification] = c
	}
	return out
}

func attempt(ev core.Event, notification string, at time.Time, msg string) core.DeliveryAttempt {
	return core.DeliveryAttempt{EventID: ev.ID, Notification: notification, At: at, Error: msg}
}

func testDeliveriesEnqueue(t *testing.T, s core.Store) {
	ev1, ev2, ev3 := event(1, core.EventRotationPartial), event(2, core.EventRotationFailed), event(3, core.EventRotationSucceeded)
	ev2.Targets = nil
	enqueue(t, s, ev1, "ops", "chat", "ops") // a name twice owes one delivery
	enqueue(t, s, ev2, "ops")
	enqueue(t, s, ev3)
	enqueue(t, s, ev1, "ops", "chat", "late") // already stored: nothing changes

	evs, err := s.ListEvents(ctxT(t), "", 10)
	require.NoError(t, err)
	require.Equal(t, []core.Event{ev1, ev2, ev3}, evs, "every event is in the outbox, whoever wants it")

	later := base.Add(time.Hour)
	ops := claimDeliveries(t, s, "r1", "ops", later, 10, longTTL)
	require.Equal(t, []string{ev1.ID, ev2.ID}, eventIDs(ops), "the longest due first")
	require.Equal(t, ev1, ops[0].Event, "the event comes with its delivery, as enqueued")
	require.Equal(t, ev2, ops[1].Event)
	for i, d := range ops {
		require.Equal(t, "ops", d.Notification)
		require.Zero(t, d.Attempts)
		require.True(t, d.NextAttemptAt.Equal([]core.Event{ev1, ev2}[i].Time), "due at once: at the event's time")
	}
	require.Equal(t, []string{ev1.ID}, eventIDs(claimDeliveries(t, s, "r1", "chat", later, 10, longTTL)))
	require.Empty(t, claimDeliveries(t, s, "r1", "late", later, 10, longTTL), "a notification named after the event was stored has none of it")

	c := counts(t, s)
	require.Len(t, c, 2)
	require.Equal(t, core.DeliveryCounts{Notification: "ops", Pending: 2}, c["ops"])
	require.Equal(t, core.DeliveryCounts{Notification: "chat", Pending: 1}, c["chat"])
}

func testDeliveriesLeases(t *testing.T, s core.Store) {
	ev := event(1, core.EventRotationFailed)
	enqueue(t, s, ev, "ops")
	require.Empty(t, claimDeliveries(t, s, "r1", "ops", ev.Time.Add(-time.Second), 10, shortTTL), "not due yet")
	require.Len(t, claimDeliveries(t, s, "r1", "ops", ev.Time, 10, shortTTL), 1, "due at its time")
	require.Empty(t, claimDeliveries(t, s, "r2", "ops", ev.Time, 10, shortTTL), "leased to r1")
	require.Len(t, claimDeliveries(t, s, "r1", "ops", ev.Time, 10, shortTTL), 1, "r1 takes its own back (a restart)")
	time.Sleep(expiryWait)
	require.Len(t, claimDeliveries(t, s, "r2", "ops", ev.Time, 10, longTTL), 1, "an expired lease is taken over")

	ok, err := s.FinishDelivery(ctxT(t), "r1", attempt(ev, "ops", ev.Time.Add(time.Second), ""), core.DeliveryDelivered)
	require.NoError(t, err)
	require.False(t, ok, "r1 lost it: its outcome is not recorded")
	require.Equal(t, 1, counts(t, s)["ops"].Pending)

	at := ev.Time.Add(2 * time.Second)
	ok, err = s.RescheduleDelivery(ctxT(t), "r2", attempt(ev, "ops", at, "HTTP 500 Internal Server Error"), ev.Time.Add(10*time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	c := counts(t, s)["ops"]
	require.Equal(t, 1, c.Failing, "attempted, not delivered")
	require.Zero(t, c.Pending)
	require.Equal(t, "HTTP 500 Internal Server Error", c.LastError)
	require.NotNil(t, c.LastErrorAt)
	require.True(t, c.LastErrorAt.Equal(at))
	require.Nil(t, c.LastDeliveredAt)

	require.Empty(t, claimDeliveries(t, s, "r1", "ops", ev.Time.Add(5*time.Minute), 10, longTTL), "rescheduled: not due before its next attempt")
	ds := claimDeliveries(t, s, "r1", "ops", ev.Time.Add(10*time.Minute), 10, longTTL)
	require.Len(t, ds, 1, "the reschedule released the lease")
	require.Equal(t, 1, ds[0].Attempts)
	require.True(t, ds[0].NextAttemptAt.Equal(ev.Time.Add(10*time.Minute)))

	done := ev.Time.Add(11 * time.Minute)
	ok, err = s.FinishDelivery(ctxT(t), "r1", attempt(ev, "ops", done, ""), core.DeliveryDelivered)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.FinishDelivery(ctxT(t), "r1", attempt(ev, "ops", done, ""), core.DeliveryFailed)
	require.NoError(t, err)
	require.False(t, ok, "a finished delivery is not pending")
	require.Empty(t, claimDeliveries(t, s, "r1", "ops", done.Add(time.Hour), 10, longTTL), "a finished delivery is never claimed again")
	c = counts(t, s)["ops"]
	require.Equal(t, 1, c.Delivered)
	require.Zero(t, c.Failing+c.Pending+c.Failed)
	require.Equal(t, "HTTP 500 Internal Server Error", c.LastError, "the last error stays after a delivery")
	require.NotNil(t, c.LastDeliveredAt)
	require.True(t, c.LastDeliveredAt.Equal(done))

	// limit: the longest due first.
	for i := 2; i <= 6; i++ {
		enqueue(t, s, event(i, core.EventTargetDrift), "ops")
	}
	require.Equal(t, []string{"evt_0002", "evt_0003"}, eventIDs(claimDeliveries(t, s, "r1", "ops", base.Add(time.Hour), 2, longTTL)))
	require.Equal(t, []string{"evt_0004", "evt_0005"}, eventIDs(claimDeliveries(t, s, "r2", "ops", base.Add(time.Hour), 2, longTTL)))
}

func testDeliveriesFinish(t *testing.T, s core.Store) {
	ev1, ev2 := event(1, core.EventRotationFailed), event(2, core.EventRotationFailed)
	enqueue(t, s, ev1, "ops")
	enqueue(t, s, ev2, "ops")
	now := base.Add(time.Hour)
	require.Len(t, claimDeliveries(t, s, "r1", "ops", now, 10, longTTL), 2)

	_, err := s.FinishDelivery(ctxT(t), "r1", attempt(ev1, "ops", now, "x"), core.DeliveryPending)
	require.Error(t, err, "pending is not a final status")

	// Given up without sending: not an attempt.
	notSent := attempt(ev1, "ops", now, "not sent")
	notSent.NotSent = true
	ok, err := s.RescheduleDelivery(ctxT(t), "r1", notSent, now)
	require.NoError(t, err)
	require.True(t, ok)
	ds := claimDeliveries(t, s, "r1", "ops", now, 10, longTTL)
	require.Equal(t, []string{ev2.ID, ev1.ID}, eventIDs(ds), "ev1 due again at now, after ev2 (still r1's: taken back)")
	for _, d := range ds {
		require.Zero(t, d.Attempts, "%s: nothing was sent", d.Event.ID)
	}
	require.Equal(t, 0, counts(t, s)["ops"].Failing, "never sent: still pending, not failing")

	// A long error is cut; an older error does not replace a newer one.
	long := strings.Repeat("é", core.MaxDeliveryError)
	ok, err = s.FinishDelivery(ctxT(t), "r1", attempt(ev1, "ops", now.Add(time.Minute), long), core.DeliveryFailed)
	require.NoError(t, err)
	require.True(t, ok)
	c := counts(t, s)["ops"]
	require.Equal(t, 1, c.Failed)
	require.LessOrEqual(t, len(c.LastError), core.MaxDeliveryError)
	require.True(t, strings.HasPrefix(c.LastError, "éé"))
	require.True(t, strings.HasSuffix(c.LastError, "..."), "%q", c.LastError)
	ok, err = s.RescheduleDelivery(ctxT(t), "r1", attempt(ev2, "ops", now, "older"), now.Add(time.Hour))
	require.NoError(t, err)
	require.True(t, ok)
	c = counts(t, s)["ops"]
	require.Equal(t, core.DeliveryCounts{Notification: "ops", Failing: 1, Failed: 1, LastError: c.LastError, LastErrorAt: c.LastErrorAt}, c)
	require.NotEqual(t, "older", c.LastError, "the newest error is kept")
	require.True(t, c.LastErrorAt.Equal(now.Add(time.Minute)))
}

func testDeliveriesConcurrent(t *testing.T, s core.Store) {
	const events, workers, batch = 60, 6, 4
	for i := 1; i <= events; i++ {
		enqueue(t, s, event(i, core.EventTargetDrift), "ops")
	}
	now := base.Add(24 * time.Hour)
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
		errs    = make([]error, workers)
	)
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			owner := fmt.Sprintf("replica-%d", w)
			<-start
			for {
				ds, err := s.ClaimDeliveries(context.Background(), owner, "ops", now, batch, longTTL)
				if err != nil {
					errs[w] = err
					return
				}
				if len(ds) == 0 {
					return
				}
				for _, d := range ds {
					mu.Lock()
					prev, dup := claimed[d.Event.ID]
					claimed[d.Event.ID] = owner
					mu.Unlock()
					if dup {
						errs[w] = fmt.Errorf("%s claimed by %s and %s", d.Event.ID, prev, owner)
						return
					}
					ok, err := s.FinishDelivery(context.Background(), owner, core.DeliveryAttempt{EventID: d.Event.ID, Notification: "ops", At: now}, core.DeliveryDelivered)
					if err != nil || !ok {
						errs[w] = fmt.Errorf("finish %s: %v %v", d.Event.ID, ok, err)
						return
					}
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	for w, err := range errs {
		require.NoError(t, err, "replica-%d", w)
	}
	require.Len(t, claimed, events, "every delivery claimed exactly once")
	require.Equal(t, events, counts(t, s)["ops"].Delivered)
}

func testPurgeEvents(t *testing.T, s core.Store) {
	for i := 1; i <= 3; i++ {
		enqueue(t, s, event(i, core.EventRotationFailed), "ops")
	}
	now := base.Add(time.Hour)
	ds := claimDeliveries(t, s, "r1", "ops", now, 1, longTTL)
	require.Len(t, ds, 1)
	ok, err := s.FinishDelivery(ctxT(t), "r1", attempt(ds[0].Event, "ops", now, "HTTP 404"), core.DeliveryFailed)
	require.NoError(t, err)
	require.True(t, ok)

	cut := base.Add(150 * time.Second) // after events 1 and 2
	n, err := s.PurgeEvents(ctxT(t), cut, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n, "at most limit")
	n, err = s.PurgeEvents(ctxT(t), cut, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = s.PurgeEvents(ctxT(t), cut, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	evs, err := s.ListEvents(ctxT(t), "", 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, "evt_0003", evs[0].ID)
	c := counts(t, s)["ops"]
	require.Equal(t, 1, c.Pending, "the purged events' deliveries went with them, pending or not")
	require.Zero(t, c.Failed)
	require.Equal(t, "HTTP 404", c.LastError, "the last error outlives its event")
	require.Equal(t, []string{"evt_0003"}, eventIDs(claimDeliveries(t, s, "r1", "ops", now, 10, longTTL)))
}
