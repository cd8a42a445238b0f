package guard_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/guard"
	"github.com/credsync/credsync/store/memstore"
	"github.com/credsync/credsync/store/storetest"
)

// frozen is a store every call of which hangs for d, ignoring its context: a database that
// neither answers nor lets go in time. It sleeps rather than waiting on a channel the test
// closes, so that nothing orders its late answer after the caller's read (the race detector
// sees a late answer written where a caller reads).
type frozen struct{ d time.Duration }

func (f frozen) hang() { time.Sleep(f.d) }

func (f frozen) CreateRotation(context.Context, core.NewRotation) (*core.IdempotencyHit, error) {
	f.hang()
	return nil, nil
}
func (f frozen) UpdateRotation(context.Context, *core.Rotation) error { f.hang(); return nil }
func (f frozen) GetRotationPage(context.Context, string, core.TargetPage) (*core.Rotation, error) {
	f.hang()
	return nil, nil
}
func (f frozen) LastOutcomes(context.Context) (map[string]map[string]core.LastOutcome, error) {
	f.hang()
	return nil, nil
}
func (f frozen) PurgeHistory(context.Context, time.Time, int) (int, error) { f.hang(); return 0, nil }
func (f frozen) PurgeAudit(context.Context, time.Time, int) (int, error)   { f.hang(); return 0, nil }
func (f frozen) GetSourceState(context.Context, string) (core.SourceState, error) {
	f.hang()
	return core.SourceState{}, nil
}
func (f frozen) PutSourceState(context.Context, core.SourceState) error { f.hang(); return nil }
func (f frozen) SetSourceRotation(context.Context, string, core.SourceRotationState) error {
	f.hang()
	return nil
}
func (f frozen) AcquireNamedLease(context.Context, string, string, time.Duration) (bool, error) {
	f.hang()
	return false, nil
}
func (f frozen) ReleaseNamedLease(context.Context, string, string) error { f.hang(); return nil }
func (f frozen) EnqueueEvent(context.Context, core.Event, []string) error {
	f.hang()
	return nil
}
func (f frozen) PutTargetHealth(context.Context, string, string, core.TargetHealth) error {
	f.hang()
	return nil
}
func (f frozen) GetTargetHealth(context.Context, string, string) (core.TargetHealth, bool, error) {
	f.hang()
	return core.TargetHealth{}, false, nil
}
func (f frozen) TargetHealths(context.Context) (map[string]map[string]core.TargetHealth, error) {
	f.hang()
	return nil, nil
}
func (f frozen) CreatePause(context.Context, core.Pause) error          { f.hang(); return nil }
func (f frozen) ListPauses(context.Context, bool) ([]core.Pause, error) { f.hang(); return nil, nil }
func (f frozen) EndPause(context.Context, string, string, time.Time) (core.Pause, error) {
	f.hang()
	return core.Pause{}, nil
}
func (f frozen) ListEvents(context.Context, string, int) ([]core.Event, error) {
	f.hang()
	return nil, nil
}
func (f frozen) SetRotationStatus(context.Context, string, core.RotationStatus, *time.Time) error {
	f.hang()
	return nil
}
func (f frozen) UpdateTarget(context.Context, string, int, core.TargetResult) error {
	f.hang()
	return nil
}
func (f frozen) FinishTarget(context.Context, string, int, core.TargetResult, core.AuditEvent) error {
	f.hang()
	return nil
}
func (f frozen) GetRotation(context.Context, string) (*core.Rotation, error) {
	f.hang()
	return nil, nil
}
func (f frozen) ListRotations(context.Context, core.ListFilter) ([]*core.Rotation, error) {
	f.hang()
	return nil, nil
}
func (f frozen) FindIdempotencyKey(context.Context, string, string) (*core.IdempotencyHit, error) {
	f.hang()
	return nil, nil
}
func (f frozen) SealedCredential(context.Context, string) ([]byte, error) { f.hang(); return nil, nil }
func (f frozen) DeleteCredential(context.Context, string) error           { f.hang(); return nil }
func (f frozen) PurgeCredentials(context.Context, time.Time) (int, error) { f.hang(); return 0, nil }
func (f frozen) ReleaseLease(context.Context, string, string) error       { f.hang(); return nil }
func (f frozen) AppendAudit(context.Context, core.AuditEvent) error       { f.hang(); return nil }
func (f frozen) Ping(context.Context) error                               { f.hang(); return nil }
func (f frozen) Close() error                                             { return nil }
func (f frozen) ReleaseTarget(context.Context, core.TargetClaim, time.Duration) error {
	f.hang()
	return nil
}
func (f frozen) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	f.hang()
	return false, nil
}
func (f frozen) RenewLease(context.Context, string, string, time.Duration) (bool, error) {
	f.hang()
	return false, nil
}
func (f frozen) ClaimOrphans(context.Context, string, time.Duration, int) ([]string, error) {
	f.hang()
	return nil, nil
}
func (f frozen) ClaimTarget(context.Context, core.TargetClaim, time.Duration) (core.ClaimResult, error) {
	f.hang()
	return 0, nil
}
func (f frozen) RenewTargetClaim(context.Context, core.TargetClaim, time.Duration) (core.ClaimResult, error) {
	f.hang()
	return 0, nil
}
func (f frozen) ListAudit(context.Context, core.AuditFilter) ([]core.AuditEvent, error) {
	f.hang()
	return nil, nil
}

func TestEveryCallIsBounded(t *testing.T) {
	f := frozen{d: 300 * time.Millisecond}
	g := guard.New(f, 100*time.Millisecond, "the test store", nil)
	// The calls given up on answer late. Under -race, a late answer written where its caller
	// already read (a captured variable) is reported, as CI reported it for ListPauses.
	defer time.Sleep(400 * time.Millisecond)
	v := reflect.ValueOf(g)
	st := reflect.TypeOf((*core.Store)(nil)).Elem()
	for i := 0; i < st.NumMethod(); i++ {
		name := st.Method(i).Name
		if name == "Close" {
			continue
		}
		m := v.MethodByName(name)
		args := []reflect.Value{reflect.ValueOf(context.Background())}
		for j := 1; j < m.Type().NumIn(); j++ {
			args = append(args, reflect.Zero(m.Type().In(j)))
		}
		start := time.Now()
		out := m.Call(args)
		took := time.Since(start)
		err, _ := out[len(out)-1].Interface().(error)
		require.ErrorIs(t, err, core.ErrStoreUnavailable, name)
		var ue *core.StoreUnavailableError
		require.ErrorAs(t, err, &ue, name)
		require.Contains(t, ue.Message, "the test store did not answer within 100ms (store.timeout)", name)
		require.Less(t, took, time.Second, "%s answered after %s", name, took)
	}
}

// scripted answers every call with err, after honouring a cancellation.
type scripted struct {
	*memstore.Store
	err   error
	panic any
	wait  time.Duration
}

func (s scripted) GetRotation(ctx context.Context, id string) (*core.Rotation, error) {
	if s.panic != nil {
		panic(s.panic)
	}
	select {
	case <-time.After(s.wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.Store.GetRotation(ctx, id)
}

func TestErrorsPassThrough(t *testing.T) {
	ctx := context.Background()
	ms := memstore.New()
	_, err := ms.CreateRotation(ctx, core.NewRotation{Rotation: &core.Rotation{ID: "rot_1", Source: "s", Status: core.RotationPending}})
	require.NoError(t, err)

	g := guard.New(scripted{Store: ms}, time.Second, "", nil)
	r, err := g.GetRotation(ctx, "rot_1")
	require.NoError(t, err)
	require.Equal(t, "rot_1", r.ID, "results come through")
	_, err = g.GetRotation(ctx, "rot_2")
	require.ErrorIs(t, err, core.ErrNotFound)
	require.NotErrorIs(t, err, core.ErrStoreUnavailable, "not found is not unavailability")

	bug := errors.New("a constraint failed")
	_, err = guard.New(scripted{Store: ms, err: bug}, time.Second, "", nil).GetRotation(ctx, "rot_1")
	require.Equal(t, bug, err, "the call's own error is unchanged")

	down := &core.StoreUnavailableError{Message: "the disk is full"}
	_, err = guard.New(scripted{Store: ms, err: down}, time.Second, "", nil).GetRotation(ctx, "rot_1")
	require.Equal(t, down, err, "what the store classified is kept")

	// The caller giving up is the caller's doing, not the store's.
	slow := guard.New(scripted{Store: ms, wait: time.Minute}, time.Minute, "", nil)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = slow.GetRotation(cctx, "rot_1")
	require.ErrorIs(t, err, core.ErrStoreUnavailable, "the caller's deadline passed first: the store did not answer in time")
	var ue *core.StoreUnavailableError
	require.ErrorAs(t, err, &ue)
	require.Contains(t, ue.Message, "did not answer within 50ms", "the bound that applied is named")
	cctx, cancel = context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = slow.GetRotation(cctx, "rot_1")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, core.ErrStoreUnavailable)

	// The timeout's own context, honoured by the store, is still the store not answering.
	_, err = guard.New(scripted{Store: ms, wait: time.Minute}, 50*time.Millisecond, "the SQLite file x", nil).GetRotation(ctx, "rot_1")
	require.ErrorIs(t, err, core.ErrStoreUnavailable)
	require.ErrorAs(t, err, &ue)
	require.Contains(t, ue.Message, "the SQLite file x did not answer within 50ms")
}

func TestPanicReachesTheCaller(t *testing.T) {
	g := guard.New(scripted{Store: memstore.New(), panic: "boom"}, time.Second, "", nil)
	require.PanicsWithValue(t, "boom", func() { _, _ = g.GetRotation(context.Background(), "x") },
		"a panic in the store is raised in the caller's goroutine, where the API recovers it")
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store { return guard.New(memstore.New(), time.Minute, "", nil) })
}
