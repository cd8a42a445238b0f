// Package memstore keeps rotations in memory. It loses everything on restart: it backs tests and
// the demo until a durable store is configured.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/credsync/credsync/core"
)

// DefaultLimit is how many rotations ListRotations returns when the filter names no limit.
const DefaultLimit = 100

// Store is an in-memory core.Store, safe for concurrent use.
type Store struct {
	mu   sync.RWMutex
	rots map[string]*core.Rotation
}

// New returns an empty store.
func New() *Store { return &Store{rots: map[string]*core.Rotation{}} }

var _ core.Store = (*Store)(nil)

// CreateRotation records a new rotation.
func (s *Store) CreateRotation(_ context.Context, r *core.Rotation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rots[r.ID]; ok {
		return fmt.Errorf("rotation %s already exists", r.ID)
	}
	s.rots[r.ID] = r.Clone()
	return nil
}

// UpdateRotation replaces a recorded rotation.
func (s *Store) UpdateRotation(_ context.Context, r *core.Rotation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rots[r.ID]; !ok {
		return fmt.Errorf("rotation %s: %w", r.ID, core.ErrNotFound)
	}
	s.rots[r.ID] = r.Clone()
	return nil
}

// GetRotation returns a copy of a rotation.
func (s *Store) GetRotation(_ context.Context, id string) (*core.Rotation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.rots[id]
	if !ok {
		return nil, core.ErrNotFound
	}
	return r.Clone(), nil
}

// ListRotations returns matching rotations, newest first.
func (s *Store) ListRotations(_ context.Context, f core.ListFilter) ([]*core.Rotation, error) {
	s.mu.RLock()
	out := make([]*core.Rotation, 0)
	for _, r := range s.rots {
		if (f.Source == "" || r.Source == f.Source) && (f.Status == "" || r.Status == f.Status) {
			out = append(out, r.Clone())
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
