package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/credsync/credsync/core"
)

// Deliveries of outbox events to notifications (migration 0007): one row per (event,
// notification), leased to one replica at a time while it is being sent.

// enqueueEvent inserts an event and, when it is new, its deliveries (SQLite's EnqueueEvent).
func enqueueEvent(ctx context.Context, q querier, ev core.Event, payload string, notifications []string) error {
	n, err := q.exec(ctx, `INSERT INTO events (id, type, created_at, payload) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, micros(ev.Time), payload)
	if err != nil || n == 0 || len(notifications) == 0 {
		return err
	}
	vals := make([]string, len(notifications))
	args := []any{ev.ID, micros(ev.Time)}
	for i, name := range notifications {
		args = append(args, name)
		vals[i] = "($1, $" + strconv.Itoa(len(args)) + ", 'pending', $2)"
	}
	_, err = q.exec(ctx, `INSERT INTO deliveries (event_id, notification, status, next_attempt_at) VALUES `+
		strings.Join(vals, ", ")+` ON CONFLICT (event_id, notification) DO NOTHING`, args...)
	return err
}

// ClaimDeliveries implements core.Store: one UPDATE of the due rows, selected FOR UPDATE SKIP
// LOCKED on PostgreSQL (the lease condition is re-checked on the locked row, as in
// ClaimOrphans), then their events, in one transaction. limit <= 0 claims them all.
func (s *Store) ClaimDeliveries(ctx context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) ([]core.Delivery, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	var out []core.Delivery
	err := s.b.inTx(ctx, func(q querier) error {
		out = nil
		rs, err := q.query(ctx, `UPDATE deliveries SET owner = $1, lease_until = @now + $2
			WHERE notification = $3 AND event_id IN (
				SELECT event_id FROM deliveries
				WHERE notification = $3 AND status = 'pending' AND next_attempt_at <= $4
				  AND (owner IS NULL OR owner = $1 OR lease_until <= @now)
				ORDER BY next_attempt_at, event_id LIMIT $5 @skiplocked)
			RETURNING event_id, attempts, next_attempt_at`, owner, ttlMicros(ttl), notification, micros(now), limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				d    = core.Delivery{Notification: notification}
				next int64
			)
			if err := rs.Scan(&d.Event.ID, &d.Attempts, &next); err != nil {
				return err
			}
			d.NextAttemptAt = fromMicros(next)
			out = append(out, d)
		}
		if err := rs.Err(); err != nil {
			return err
		}
		rs.Close()
		return loadEvents(ctx, q, out)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim deliveries of %s: %w", notification, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].Event.ID < out[j].Event.ID
	})
	return out, nil
}

// loadEvents fills in the events of claimed deliveries.
func loadEvents(ctx context.Context, q querier, ds []core.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ph := make([]string, len(ds))
	args := make([]any, len(ds))
	at := make(map[string][]int, len(ds))
	for i, d := range ds {
		ph[i] = "$" + strconv.Itoa(i+1)
		args[i] = d.Event.ID
		at[d.Event.ID] = append(at[d.Event.ID], i)
	}
	rs, err := q.query(ctx, `SELECT id, payload FROM events WHERE id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id, payload string
		if err := rs.Scan(&id, &payload); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for _, i := range at[id] {
			if err := json.Unmarshal([]byte(payload), &ds[i].Event); err != nil {
				return fmt.Errorf("decode event %s: %w", id, err)
			}
		}
	}
	return rs.Err()
}

// FinishDelivery implements core.Store.
func (s *Store) FinishDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus) (bool, error) {
	if status != core.DeliveryDelivered && status != core.DeliveryFailed {
		return false, fmt.Errorf("sqlstore: finish delivery of %s to %s: status %q is not final", a.EventID, a.Notification, status)
	}
	ok, err := s.recordDelivery(ctx, owner, a, status, time.Time{})
	if err != nil {
		return false, fmt.Errorf("sqlstore: finish delivery of %s to %s: %w", a.EventID, a.Notification, err)
	}
	return ok, nil
}

// RescheduleDelivery implements core.Store.
func (s *Store) RescheduleDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, next time.Time) (bool, error) {
	ok, err := s.recordDelivery(ctx, owner, a, core.DeliveryPending, next)
	if err != nil {
		return false, fmt.Errorf("sqlstore: reschedule delivery of %s to %s: %w", a.EventID, a.Notification, err)
	}
	return ok, nil
}

// recordDelivery writes an attempt's outcome on the delivery owner holds (next: when status is
// pending) and, when it changed the row, the notification's last error or last delivery: one
// transaction.
func (s *Store) recordDelivery(ctx context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus, next time.Time) (bool, error) {
	set := []string{"owner = NULL", "lease_until = NULL", "status = $4"}
	args := []any{a.EventID, a.Notification, owner, string(status)}
	add := func(col string, v any) {
		args = append(args, v)
		set = append(set, col+" = $"+strconv.Itoa(len(args)))
	}
	if status == core.DeliveryPending {
		add("next_attempt_at", micros(next))
	}
	if !a.NotSent {
		set = append(set, "attempts = attempts + 1")
		add("last_attempt_at", micros(a.At))
	}
	msg := core.ClipDeliveryError(a.Error)
	if msg != "" {
		add("last_error", msg)
	}
	if status == core.DeliveryDelivered {
		add("delivered_at", micros(a.At))
	}
	var changed bool
	err := s.b.inTx(ctx, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE deliveries SET `+strings.Join(set, ", ")+`
			WHERE event_id = $1 AND notification = $2 AND owner = $3 AND status = 'pending'`, args...)
		if changed = n > 0; err != nil || !changed {
			return err
		}
		if msg != "" {
			if _, err := q.exec(ctx, `INSERT INTO notification_state (notification, last_error, last_error_at) VALUES ($1, $2, $3)
				ON CONFLICT (notification) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at
				WHERE notification_state.last_error_at <= excluded.last_error_at`, a.Notification, msg, micros(a.At)); err != nil {
				return fmt.Errorf("record the last error: %w", err)
			}
		}
		if status == core.DeliveryDelivered {
			if _, err := q.exec(ctx, `INSERT INTO notification_state (notification, last_delivered_at) VALUES ($1, $2)
				ON CONFLICT (notification) DO UPDATE SET last_delivered_at = excluded.last_delivered_at
				WHERE notification_state.last_delivered_at < excluded.last_delivered_at`, a.Notification, micros(a.At)); err != nil {
				return fmt.Errorf("record the last delivery: %w", err)
			}
		}
		return nil
	})
	return changed && err == nil, err
}

// DeliveryCounts implements core.Store: one GROUP BY over the deliveries (index
// deliveries_status) and the notifications' state rows.
func (s *Store) DeliveryCounts(ctx context.Context) ([]core.DeliveryCounts, error) {
	by := map[string]*core.DeliveryCounts{}
	get := func(n string) *core.DeliveryCounts {
		c := by[n]
		if c == nil {
			c = &core.DeliveryCounts{Notification: n}
			by[n] = c
		}
		return c
	}
	rs, err := s.b.query(ctx, `SELECT notification, status, CASE WHEN attempts > 0 THEN 1 ELSE 0 END, count(*)
		FROM deliveries GROUP BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: count deliveries: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			name, status string
			tried        int
			n            int64
		)
		if err := rs.Scan(&name, &status, &tried, &n); err != nil {
			return nil, fmt.Errorf("sqlstore: count deliveries: %w", err)
		}
		c := get(name)
		switch {
		case status == string(core.DeliveryDelivered):
			c.Delivered += int(n)
		case status == string(core.DeliveryFailed):
			c.Failed += int(n)
		case tried == 1:
			c.Failing += int(n)
		default:
			c.Pending += int(n)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: count deliveries: %w", err)
	}
	rs.Close()
	rs, err = s.b.query(ctx, `SELECT notification, last_error, last_error_at, last_delivered_at FROM notification_state`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: notification state: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			name, msg          string
			errAt, deliveredAt int64
		)
		if err := rs.Scan(&name, &msg, &errAt, &deliveredAt); err != nil {
			return nil, fmt.Errorf("sqlstore: notification state: %w", err)
		}
		c := get(name)
		c.LastError = msg
		if errAt != 0 {
			t := fromMicros(errAt)
			c.LastErrorAt = &t
		}
		if deliveredAt != 0 {
			t := fromMicros(deliveredAt)
			c.LastDeliveredAt = &t
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: notification state: %w", err)
	}
	out := make([]core.DeliveryCounts, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Notification < out[j].Notification })
	return out, nil
}

// PurgeEvents implements core.Store: at most limit events, oldest first (index
// events_created); their deliveries go with them (ON DELETE CASCADE).
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := s.b.write(ctx, `DELETE FROM events WHERE id IN (
		SELECT id FROM events WHERE created_at < $1 ORDER BY created_at, id LIMIT $2)`, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge events: %w", err)
	}
	return int(n), nil
}
