package memstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/credsync/credsync/core"
)

// Deliveries of outbox events to notifications: one per (event, notification), as in
// store/sqlstore's deliveries table.

type deliveryKey struct{ event, notification string }

type delivery struct {
	status     core.DeliveryStatus
	attempts   int
	next       time.Time
	lastError  string
	owner      string
	leaseUntil time.Time
}

type notifState struct {
	lastError       string
	lastErrorAt     time.Time
	lastDeliveredAt time.Time
}

func cloneEvent(ev core.Event) core.Event {
	if ev.Targets != nil {
		ts := make([]core.EventTarget, len(ev.Targets))
		for i, t := range ev.Targets {
			if t.Error != nil {
				e := *t.Error
				t.Error = &e
			}
			ts[i] = t
		}
		ev.Targets = ts
	}
	return ev
}

// addDeliveries adds a pending delivery of ev per notification; s.mu is held.
func (s *Store) addDeliveries(ev core.Event, notifications []string) {
	if s.dlvs == nil {
		s.dlvs = map[deliveryKey]*delivery{}
	}
	for _, n := range notifications {
		k := deliveryKey{ev.ID, n}
		if _, ok := s.dlvs[k]; !ok {
			s.dlvs[k] = &delivery{status: core.DeliveryPending, next: ev.Time}
		}
	}
}

func (s *Store) event(id string) (core.Event, bool) {
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].ID >= id })
	if i < len(s.events) && s.events[i].ID == id {
		return cloneEvent(s.events[i]), true
	}
	return core.Event{}, false
}

// ClaimDeliveries implements core.Store.
func (s *Store) ClaimDeliveries(_ context.Context, owner, notification string, now time.Time, limit int, ttl time.Duration) ([]core.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clock := s.now()
	var due []core.Delivery
	for k, d := range s.dlvs {
		if k.notification != notification || d.status != core.DeliveryPending || d.next.After(now) {
			continue
		}
		if d.owner != "" && d.owner != owner && clock.Before(d.leaseUntil) {
			continue
		}
		ev, ok := s.event(k.event)
		if !ok {
			continue
		}
		due = append(due, core.Delivery{Event: ev, Notification: notification, Attempts: d.attempts, NextAttemptAt: d.next})
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].NextAttemptAt.Equal(due[j].NextAttemptAt) {
			return due[i].NextAttemptAt.Before(due[j].NextAttemptAt)
		}
		return due[i].Event.ID < due[j].Event.ID
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	for _, d := range due {
		l := s.dlvs[deliveryKey{d.Event.ID, notification}]
		l.owner, l.leaseUntil = owner, clock.Add(ttl)
	}
	return due, nil
}

// held returns the pending delivery owner holds; s.mu is held.
func (s *Store) held(owner string, a core.DeliveryAttempt) *delivery {
	d := s.dlvs[deliveryKey{a.EventID, a.Notification}]
	if d == nil || d.owner != owner || d.status != core.DeliveryPending {
		return nil
	}
	return d
}

// record applies an attempt's common part; s.mu is held.
func (s *Store) record(d *delivery, a core.DeliveryAttempt) {
	if !a.NotSent {
		d.attempts++
	}
	d.owner, d.leaseUntil = "", time.Time{}
	if s.dlvState == nil {
		s.dlvState = map[string]*notifState{}
	}
	st := s.dlvState[a.Notification]
	if st == nil {
		st = &notifState{}
		s.dlvState[a.Notification] = st
	}
	if a.Error != "" {
		d.lastError = core.ClipDeliveryError(a.Error)
		if !a.At.Before(st.lastErrorAt) {
			st.lastError, st.lastErrorAt = d.lastError, a.At
		}
	}
}

// FinishDelivery implements core.Store.
func (s *Store) FinishDelivery(_ context.Context, owner string, a core.DeliveryAttempt, status core.DeliveryStatus) (bool, error) {
	if status != core.DeliveryDelivered && status != core.DeliveryFailed {
		return false, fmt.Errorf("memstore: finish delivery of %s to %s: status %q is not final", a.EventID, a.Notification, status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.held(owner, a)
	if d == nil {
		return false, nil
	}
	s.record(d, a)
	d.status = status
	if st := s.dlvState[a.Notification]; status == core.DeliveryDelivered && a.At.After(st.lastDeliveredAt) {
		st.lastDeliveredAt = a.At
	}
	return true, nil
}

// RescheduleDelivery implements core.Store.
func (s *Store) RescheduleDelivery(_ context.Context, owner string, a core.DeliveryAttempt, next time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.held(owner, a)
	if d == nil {
		return false, nil
	}
	s.record(d, a)
	d.next = next
	return true, nil
}

// DeliveryCounts implements core.Store.
func (s *Store) DeliveryCounts(context.Context) ([]core.DeliveryCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := map[string]*core.DeliveryCounts{}
	get := func(n string) *core.DeliveryCounts {
		c := by[n]
		if c == nil {
			c = &core.DeliveryCounts{Notification: n}
			by[n] = c
		}
		return c
	}
	for k, d := range s.dlvs {
		c := get(k.notification)
		switch {
		case d.status == core.DeliveryDelivered:
			c.Delivered++
		case d.status == core.DeliveryFailed:
			c.Failed++
		case d.attempts > 0:
			c.Failing++
		default:
			c.Pending++
		}
	}
	for n, st := range s.dlvState {
		c := get(n)
		c.LastError = st.lastError
		if !st.lastErrorAt.IsZero() {
			t := st.lastErrorAt
			c.LastErrorAt = &t
		}
		if !st.lastDeliveredAt.IsZero() {
			t := st.lastDeliveredAt
			c.LastDeliveredAt = &t
		}
	}
	out := make([]core.DeliveryCounts, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Notification < out[j].Notification })
	return out, nil
}

// PurgeEvents implements core.Store.
func (s *Store) PurgeEvents(_ context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make([]core.Event, 0)
	for _, e := range s.events {
		if e.Time.Before(before) {
			old = append(old, e)
		}
	}
	sort.SliceStable(old, func(i, j int) bool { return old[i].Time.Before(old[j].Time) })
	if len(old) > limit {
		old = old[:limit]
	}
	gone := map[string]bool{}
	for _, e := range old {
		gone[e.ID] = true
	}
	kept := s.events[:0]
	for _, e := range s.events {
		if !gone[e.ID] {
			kept = append(kept, e)
		}
	}
	s.events = kept
	for k := range s.dlvs {
		if gone[k.event] {
			delete(s.dlvs, k)
		}
	}
	return len(old), nil
}
