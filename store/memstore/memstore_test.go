package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/store/memstore"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		src, st := "a", core.RotationSucceeded
		if i%2 == 1 {
			src, st = "b", core.RotationFailed
		}
		require.NoError(t, s.CreateRotation(ctx, &core.Rotation{ID: fmt.Sprintf("r%d", i), Source: src, Status: st, CreatedAt: base.Add(time.Duration(i) * time.Minute),
			Targets: []core.TargetResult{{Name: "t", Error: &core.Error{Code: "x"}}}}))
	}
	require.Error(t, s.CreateRotation(ctx, &core.Rotation{ID: "r0"}), "ids are unique")

	got, err := s.GetRotation(ctx, "r1")
	require.NoError(t, err)
	got.Targets[0].Error.Code = "mutated"
	again, _ := s.GetRotation(ctx, "r1")
	require.Equal(t, "x", again.Targets[0].Error.Code, "callers get copies")

	_, err = s.GetRotation(ctx, "nope")
	require.True(t, errors.Is(err, core.ErrNotFound))
	require.True(t, errors.Is(s.UpdateRotation(ctx, &core.Rotation{ID: "nope"}), core.ErrNotFound))

	all, err := s.ListRotations(ctx, core.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, "r4", all[0].ID, "newest first")
	require.Len(t, all, 5)
	a, _ := s.ListRotations(ctx, core.ListFilter{Source: "a"})
	require.Len(t, a, 3)
	f, _ := s.ListRotations(ctx, core.ListFilter{Status: core.RotationFailed, Limit: 1})
	require.Len(t, f, 1)
	require.Equal(t, "r3", f[0].ID)
}
