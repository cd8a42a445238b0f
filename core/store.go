package core

import (
	"context"
	"errors"
)

// ErrNotFound is returned by a Store for an unknown rotation.
var ErrNotFound = errors.New("not found")

// ListFilter selects rotations; zero values select everything.
type ListFilter struct {
	Source string
	Status RotationStatus
	Limit  int // 0: the store's default
}

// Store keeps rotations. The engine writes the whole rotation after every state change, so a
// store that persists each write loses nothing that was reported.
type Store interface {
	CreateRotation(ctx context.Context, r *Rotation) error
	UpdateRotation(ctx context.Context, r *Rotation) error
	GetRotation(ctx context.Context, id string) (*Rotation, error)
	// ListRotations returns rotations newest first.
	ListRotations(ctx context.Context, f ListFilter) ([]*Rotation, error)
}
