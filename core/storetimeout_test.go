package core_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/memstore"
)

// stuckStore is a memstore whose Ping and audit appends hang until their context ends, and whose
// sealed credentials are unavailable while down is set.
type stuckStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *stuckStore) Ping(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *stuckStore) SealedCredential(ctx context.Context, id string) ([]byte, error) {
	if s.down.Load() {
		return nil, &core.StoreUnavailableError{Message: "the store is down (test)"}
	}
	return s.Store.SealedCredential(ctx, id)
}

func TestStoreTimeoutBoundsTheEnginesOwnCalls(t *testing.T) {
	st := &stuckStore{Store: memstore.New()}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": {accepts: types}},
		func(c *core.EngineConfig) { c.Store, c.StoreTimeout = st, 200*time.Millisecond })
	start := time.Now()
	err := h.eng.Ping(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second, "Ping is bounded by StoreTimeout")
}

func TestRetryWhileTheStoreIsUnavailableIsNotAConflict(t *testing.T) {
	st := &stuckStore{Store: memstore.New()}
	a := &fakeAdapter{accepts: types, script: []step{{err: &core.Error{Code: core.CodeRejected, Message: "HTTP 400"}}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) { c.Store = st })
	rot := h.rotate(t, pw("x"))
	require.Equal(t, core.RotationFailed, rot.Status)
	st.down.Store(true)
	_, err := h.eng.Retry(context.Background(), rot.ID, "job")
	require.ErrorIs(t, err, core.ErrStoreUnavailable, "the store's condition, answered 503, not 409")
	var ce *core.ConflictError
	require.NotErrorAs(t, err, &ce)
}
