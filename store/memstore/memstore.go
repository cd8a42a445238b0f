// Package memstore keeps rotations in memory. It loses everything on restart: it backs tests and
// the demo when no durable store is configured. It implements every core.Store semantic (leases,
// target claims, idempotency, audit) for one process.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/credsync/credsync/core"
)

// DefaultLimit is how many rotations ListRotations returns when the filter names no limit.
const DefaultLimit = core.DefaultListLimit

// Store is an in-memory core.Store, safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	now      func() time.Time
	rots     map[string]*entry
	last     map[string]lastOutcome // source\x00target → newest finished outcome
	srcState map[string]core.SourceState
	events   []core.Event
	pauses   []core.Pause
	health   map[string]map[string]core.TargetHealth
	dlvs     map[deliveryKey]*delivery // deliveries.go
	dlvState map[string]*notifState
	named    map[string]namedLease
	seqs     map[string]int64
	idem     map[string]core.IdempotencyHit
	claims   map[string]*claim
	audit    []core.AuditEvent
}

type entry struct {
	rot        *core.Rotation
	sealed     []byte
	owner      string
	leaseUntil time.Time
}

type claim struct {
	seq        int64  // the highest rotation seq granted the target
	want       int64  // the highest seq that asked for it while it was busy
	rotationID string // of the holder
	holder     string
	until      time.Time // the holder's claim is live until then
}

// New returns an empty store.
func New() *Store {
	return &Store{now: time.Now, rots: map[string]*entry{}, last: map[string]lastOutcome{}, srcState: map[string]core.SourceState{}, health: map[string]map[string]core.TargetHealth{}, named: map[string]namedLease{}, seqs: map[string]int64{},
		idem: map[string]core.IdempotencyHit{}, claims: map[string]*claim{}}
}

var _ core.Store = (*Store)(nil)

// CreateRotation implements core.Store.
func (s *Store) CreateRotation(_ context.Context, n core.NewRotation) (*core.IdempotencyHit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := n.Rotation
	if n.IdempotencyKey != "" {
		if hit, ok := s.idem[n.Actor+"\x00"+n.IdempotencyKey]; ok {
			return &hit, nil
		}
	}
	if _, ok := s.rots[r.ID]; ok {
		return nil, fmt.Errorf("rotation %s already exists", r.ID)
	}
	s.seqs[r.Source]++
	r.Seq = s.seqs[r.Source]
	e := &entry{rot: r.Clone(), sealed: append([]byte(nil), n.SealedCredential...)}
	if n.SealedCredential == nil {
		e.sealed = nil
	}
	if n.Owner != "" {
		e.owner, e.leaseUntil = n.Owner, s.now().Add(n.LeaseTTL)
	}
	s.rots[r.ID] = e
	if n.IdempotencyKey != "" {
		s.idem[n.Actor+"\x00"+n.IdempotencyKey] = core.IdempotencyHit{RotationID: r.ID, RequestHash: n.RequestHash}
	}
	if n.Audit != nil {
		s.audit = append(s.audit, *n.Audit)
	}
	return nil, nil
}

// UpdateRotation implements core.Store.
func (s *Store) UpdateRotation(_ context.Context, r *core.Rotation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[r.ID]
	if !ok {
		return fmt.Errorf("rotation %s: %w", r.ID, core.ErrNotFound)
	}
	c := r.Clone()
	c.Seq = e.rot.Seq
	c.TargetCounts, c.NextTargets = nil, ""
	e.rot = c
	for _, t := range c.Targets {
		if t.Status.Finished() {
			s.setLast(c, t)
		}
	}
	return nil
}

// setLast records t, a finished target of r, as its last outcome unless a newer rotation of the
// source left one; s.mu is held.
func (s *Store) setLast(r *core.Rotation, t core.TargetResult) {
	key := r.Source + "\x00" + t.Name
	if cur, ok := s.last[key]; ok && cur.seq > r.Seq {
		return
	}
	s.last[key] = lastOutcome{source: r.Source, target: t.Name, seq: r.Seq, out: core.LastOutcomeOf(r.ID, cloneTarget(t))}
}

type lastOutcome struct {
	source, target string
	seq            int64
	out            core.LastOutcome
}

func cloneTarget(t core.TargetResult) core.TargetResult {
	if t.Error != nil {
		c := *t.Error
		t.Error = &c
	}
	return t
}

// SetRotationStatus implements core.Store.
func (s *Store) SetRotationStatus(_ context.Context, id string, status core.RotationStatus, finishedAt *time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok {
		return fmt.Errorf("rotation %s: %w", id, core.ErrNotFound)
	}
	e.rot.Status = status
	e.rot.FinishedAt = nil
	if finishedAt != nil {
		t := *finishedAt
		e.rot.FinishedAt = &t
	}
	return nil
}

// UpdateTarget implements core.Store.
func (s *Store) UpdateTarget(_ context.Context, id string, idx int, t core.TargetResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateTarget(id, idx, t)
}

// FinishTarget implements core.Store.
func (s *Store) FinishTarget(_ context.Context, id string, idx int, t core.TargetResult, ev core.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.updateTarget(id, idx, t); err != nil {
		return err
	}
	s.audit = append(s.audit, ev)
	s.setLast(s.rots[id].rot, t)
	return nil
}

// updateTarget replaces one target's state; s.mu is held.
func (s *Store) updateTarget(id string, idx int, t core.TargetResult) error {
	e, ok := s.rots[id]
	if !ok || idx < 0 || idx >= len(e.rot.Targets) {
		return fmt.Errorf("rotation %s target %d: %w", id, idx, core.ErrNotFound)
	}
	if t.Error != nil {
		c := *t.Error
		t.Error = &c
	}
	e.rot.Targets[idx] = t
	return nil
}

// GetRotation implements core.Store.
func (s *Store) GetRotation(_ context.Context, id string) (*core.Rotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok {
		return nil, core.ErrNotFound
	}
	return e.rot.Clone(), nil
}

// GetRotationPage implements core.Store.
func (s *Store) GetRotationPage(_ context.Context, id string, p core.TargetPage) (*core.Rotation, error) {
	if _, _, err := p.Bounds(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok {
		return nil, core.ErrNotFound
	}
	return core.PageOf(e.rot, p)
}

func counts(ts []core.TargetResult) map[core.TargetStatus]int {
	out := map[core.TargetStatus]int{}
	for _, t := range ts {
		out[t.Status]++
	}
	return out
}

// LastOutcomes implements core.Store.
func (s *Store) LastOutcomes(_ context.Context) (map[string]map[string]core.LastOutcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]core.LastOutcome{}
	for _, l := range s.last {
		if out[l.source] == nil {
			out[l.source] = map[string]core.LastOutcome{}
		}
		out[l.source][l.target] = l.out
	}
	return out, nil
}

// PurgeHistory implements core.Store.
func (s *Store) PurgeHistory(_ context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []*entry
	for _, e := range s.rots {
		if e.rot.FinishedAt != nil && e.rot.FinishedAt.Before(before) {
			old = append(old, e)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].rot.FinishedAt.Before(*old[j].rot.FinishedAt) })
	if len(old) > limit {
		old = old[:limit]
	}
	for _, e := range old {
		delete(s.rots, e.rot.ID)
		for k, hit := range s.idem {
			if hit.RotationID == e.rot.ID {
				delete(s.idem, k)
			}
		}
	}
	return len(old), nil
}

// PurgeAudit implements core.Store.
func (s *Store) PurgeAudit(_ context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.audit) && n < limit && s.audit[n].At.Before(before) {
		n++
	}
	s.audit = s.audit[n:]
	return n, nil
}

// ListRotations implements core.Store.
func (s *Store) ListRotations(_ context.Context, f core.ListFilter) ([]*core.Rotation, error) {
	s.mu.Lock()
	out := make([]*core.Rotation, 0)
	for _, e := range s.rots {
		r := e.rot
		if (f.Source == "" || r.Source == f.Source) && core.InSources(f.Sources, r.Source) && (f.Status == "" || r.Status == f.Status) && (f.Before == "" || r.ID < f.Before) {
			c := r.Clone()
			c.TargetCounts, c.Targets = counts(c.Targets), []core.TargetResult{}
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// FindIdempotencyKey implements core.Store.
func (s *Store) FindIdempotencyKey(_ context.Context, actor, key string) (*core.IdempotencyHit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hit, ok := s.idem[actor+"\x00"+key]; ok {
		return &hit, nil
	}
	return nil, nil
}

// SealedCredential implements core.Store.
func (s *Store) SealedCredential(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok || e.sealed == nil {
		return nil, core.ErrNotFound
	}
	return append([]byte(nil), e.sealed...), nil
}

// DeleteCredential implements core.Store.
func (s *Store) DeleteCredential(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.rots[id]; ok {
		e.sealed = nil
	}
	return nil
}

// PurgeCredentials implements core.Store.
func (s *Store) PurgeCredentials(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.rots {
		if e.sealed != nil && e.rot.FinishedAt != nil && e.rot.FinishedAt.Before(before) {
			e.sealed = nil
			n++
		}
	}
	return n, nil
}

// AcquireLease implements core.Store.
func (s *Store) AcquireLease(_ context.Context, id, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok {
		return false, core.ErrNotFound
	}
	now := s.now()
	if e.owner != "" && e.owner != owner && now.Before(e.leaseUntil) {
		return false, nil
	}
	e.owner, e.leaseUntil = owner, now.Add(ttl)
	return true, nil
}

// RenewLease implements core.Store.
func (s *Store) RenewLease(_ context.Context, id, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok || e.owner != owner {
		return false, nil
	}
	e.leaseUntil = s.now().Add(ttl)
	return true, nil
}

// ReleaseLease implements core.Store.
func (s *Store) ReleaseLease(_ context.Context, id, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.rots[id]; ok && e.owner == owner {
		e.owner, e.leaseUntil = "", time.Time{}
	}
	return nil
}

// ClaimOrphans implements core.Store.
func (s *Store) ClaimOrphans(_ context.Context, owner string, ttl time.Duration, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var ids []string
	for id, e := range s.rots {
		if !e.rot.Status.Finished() && (e.owner == "" || !now.Before(e.leaseUntil)) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	for _, id := range ids {
		s.rots[id].owner, s.rots[id].leaseUntil = owner, now.Add(ttl)
	}
	return ids, nil
}

// ClaimTarget implements core.Store.
func (s *Store) ClaimTarget(_ context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	key := c.Source + "\x00" + c.Target
	cl, ok := s.claims[key]
	if !ok {
		s.claims[key] = &claim{seq: c.Seq, rotationID: c.RotationID, holder: c.Holder, until: now.Add(ttl)}
		return core.ClaimGranted, nil
	}
	if max(cl.seq, cl.want) > c.Seq {
		return core.ClaimSuperseded, nil
	}
	if cl.holder != c.Holder && now.Before(cl.until) {
		cl.want = max(cl.want, c.Seq)
		return core.ClaimBusy, nil
	}
	cl.seq, cl.rotationID, cl.holder, cl.until = c.Seq, c.RotationID, c.Holder, now.Add(ttl)
	return core.ClaimGranted, nil
}

// RenewTargetClaim implements core.Store.
func (s *Store) RenewTargetClaim(_ context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cl, ok := s.claims[c.Source+"\x00"+c.Target]
	if !ok || cl.holder != c.Holder { // nobody else was granted it since: still this holder's

		return core.ClaimLost, nil
	}
	cl.until = now.Add(ttl)
	if max(cl.seq, cl.want) > c.Seq {
		return core.ClaimSuperseded, nil
	}
	return core.ClaimGranted, nil
}

// ReleaseTarget implements core.Store.
func (s *Store) ReleaseTarget(_ context.Context, c core.TargetClaim, hold time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl, ok := s.claims[c.Source+"\x00"+c.Target]; ok && cl.holder == c.Holder {
		cl.until = s.now().Add(hold)
	}
	return nil
}

// PutTargetHealth implements core.Store.
func (s *Store) PutTargetHealth(_ context.Context, source, target string, h core.TargetHealth) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.health[source] == nil {
		s.health[source] = map[string]core.TargetHealth{}
	}
	h.CheckedAt = h.CheckedAt.UTC().Truncate(time.Microsecond)
	s.health[source][target] = h
	return nil
}

// GetTargetHealth implements core.Store.
func (s *Store) GetTargetHealth(_ context.Context, source, target string) (core.TargetHealth, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.health[source][target]
	return h, ok, nil
}

// TargetHealths implements core.Store.
func (s *Store) TargetHealths(context.Context) (map[string]map[string]core.TargetHealth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]core.TargetHealth, len(s.health))
	for src, ts := range s.health {
		out[src] = make(map[string]core.TargetHealth, len(ts))
		for t, h := range ts {
			out[src][t] = h
		}
	}
	return out, nil
}

// GetSourceState implements core.Store.
func (s *Store) GetSourceState(_ context.Context, source string) (core.SourceState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.srcState[source]
	if !ok {
		return core.SourceState{Source: source}, nil
	}
	st.InUse = append([]string(nil), st.InUse...)
	return st, nil
}

// PutSourceState implements core.Store.
func (s *Store) PutSourceState(_ context.Context, st core.SourceState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.InUse = append([]string(nil), st.InUse...)
	s.srcState[st.Source] = st
	return nil
}

// SetSourceRotation implements core.Store.
func (s *Store) SetSourceRotation(_ context.Context, id string, st core.SourceRotationState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rots[id]
	if !ok {
		return fmt.Errorf("rotation %s: %w", id, core.ErrNotFound)
	}
	e.rot.SourceRotation = &st
	return nil
}

// AcquireNamedLease implements core.Store.
func (s *Store) AcquireNamedLease(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if l, ok := s.named[name]; ok && l.owner != owner && now.Before(l.until) {
		return false, nil
	}
	s.named[name] = namedLease{owner: owner, until: now.Add(ttl)}
	return true, nil
}

// ReleaseNamedLease implements core.Store.
func (s *Store) ReleaseNamedLease(_ context.Context, name, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.named[name]; ok && l.owner == owner {
		delete(s.named, name)
	}
	return nil
}

type namedLease struct {
	owner string
	until time.Time
}

// CreatePause implements core.Store.
func (s *Store) CreatePause(_ context.Context, p core.Pause) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pauses = append(s.pauses, p)
	return nil
}

// ListPauses implements core.Store.
func (s *Store) ListPauses(_ context.Context, active bool) ([]core.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []core.Pause{}
	for i := len(s.pauses) - 1; i >= 0; i-- {
		if !active || s.pauses[i].EndedAt == nil {
			out = append(out, s.pauses[i])
		}
	}
	return out, nil
}

// EndPause implements core.Store.
func (s *Store) EndPause(_ context.Context, id, actor string, at time.Time) (core.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.pauses {
		if p.ID == id && p.EndedAt == nil {
			t := at
			s.pauses[i].EndedAt, s.pauses[i].EndedBy = &t, actor
			return s.pauses[i], nil
		}
	}
	return core.Pause{}, fmt.Errorf("pause %s: %w", id, core.ErrNotFound)
}

// EnqueueEvent implements core.Store.
func (s *Store) EnqueueEvent(_ context.Context, ev core.Event, notifications []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.ID == ev.ID {
			return nil
		}
	}
	s.events = append(s.events, cloneEvent(ev))
	sort.Slice(s.events, func(i, j int) bool { return s.events[i].ID < s.events[j].ID })
	s.addDeliveries(ev, notifications)
	return nil
}

// ListEvents implements core.Store.
func (s *Store) ListEvents(_ context.Context, after string, limit int) ([]core.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.Event
	for _, e := range s.events {
		if e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// AppendAudit implements core.Store.
func (s *Store) AppendAudit(_ context.Context, e core.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, e)
	return nil
}

// ListAudit implements core.Store.
func (s *Store) ListAudit(_ context.Context, f core.AuditFilter) ([]core.AuditEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []core.AuditEvent
	for i := len(s.audit) - 1; i >= 0 && len(out) < limit; i-- {
		e := s.audit[i]
		if (f.Source == "" || e.Source == f.Source) && core.InSources(f.Sources, e.Source) && (f.RotationID == "" || e.RotationID == f.RotationID) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Ping implements core.Store.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements core.Store.
func (s *Store) Close() error { return nil }
