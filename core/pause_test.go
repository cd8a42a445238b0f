package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

func pauseEnv(t *testing.T, st core.Store) (*core.Engine, *standin.Adapter, *standin.Adapter) {
	t.Helper()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	felt, rg := standin.New(core.TypePassword), standin.New(core.TypePassword)
	src := &core.Source{Name: "wh", Targets: []*core.Target{
		{Name: "felt", Platform: "felt", Vendor: "felt", Adapter: felt},
		{Name: "rg", Platform: "rg", Vendor: "rivergen", Adapter: rg},
	}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{{Name: "felt", Vendor: "felt"}, {Name: "rg", Vendor: "rivergen"}},
		Sources: []*core.Source{src}, Store: st, Sealer: kr, DurableStore: true, Owner: "r1", Logger: zap.NewNop()})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng, felt, rg
}

func TestPauseHoldsItsTargetsOnly(t *testing.T) {
	st := memstore.New()
	eng, felt, rg := pauseEnv(t, st)
	ctx := context.Background()
	p, err := eng.StartPause(ctx, core.PauseRequest{Platform: "felt", Reason: "Felt says their API is degraded", Actor: "oncall"})
	require.NoError(t, err)

	rot, _, err := eng.Submit(ctx, core.SubmitRequest{Source: "wh", Credential: pw("p1"), Actor: "job"})
	require.NoError(t, err, "a rotation is still accepted while paused")
	require.Eventually(t, func() bool {
		r, err := eng.Get(ctx, rot.ID)
		require.NoError(t, err)
		return target(r, "rg").Status == core.TargetSucceeded && target(r, "felt").Paused
	}, 5*time.Second, 10*time.Millisecond, "the other platform goes on; the paused one is held")
	r, _ := eng.Get(ctx, rot.ID)
	require.Equal(t, core.TargetPending, target(r, "felt").Status)
	require.Zero(t, felt.Sends(), "no call to a paused platform")
	require.Equal(t, 1, rg.Sends())

	// Pauses hold across restarts: a new engine on the same store finds it.
	ps, err := eng.Pauses(ctx, true)
	require.NoError(t, err)
	require.Len(t, ps, 1)

	_, err = eng.EndPause(ctx, p.ID, "oncall")
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err = eng.Wait(wctx, rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, r.Status)
	require.False(t, target(r, "felt").Paused)
	require.Equal(t, 1, felt.Sends())
	_, err = eng.EndPause(ctx, p.ID, "oncall")
	var nf *core.NotFoundError
	require.ErrorAs(t, err, &nf, "ended once")

	evs, err := st.ListEvents(ctx, "", 100)
	require.NoError(t, err)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	require.Contains(t, types, core.EventPauseStarted)
	require.Contains(t, types, core.EventPauseEnded)
}

func TestNewerRotationSupersedesAHeldTarget(t *testing.T) {
	eng, felt, _ := pauseEnv(t, memstore.New())
	ctx := context.Background()
	p, err := eng.StartPause(ctx, core.PauseRequest{Reason: "everything", Actor: "oncall"})
	require.NoError(t, err)
	older, _, err := eng.Submit(ctx, core.SubmitRequest{Source: "wh", Credential: pw("old")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { r, _ := eng.Get(ctx, older.ID); return target(r, "felt").Paused }, 5*time.Second, 10*time.Millisecond)
	newer, _, err := eng.Submit(ctx, core.SubmitRequest{Source: "wh", Credential: pw("new")})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	o, err := eng.Wait(wctx, older.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSuperseded, o.Status, "a held rotation is superseded by a newer one")
	_, err = eng.EndPause(ctx, p.ID, "oncall")
	require.NoError(t, err)
	n, err := eng.Wait(wctx, newer.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, n.Status)
	require.Equal(t, "new", felt.LastCredential().Password.Reveal(), "only the newer credential was sent")
	require.Equal(t, 1, felt.Sends())
}

func TestPauseRefusals(t *testing.T) {
	eng, _, _ := pauseEnv(t, memstore.New())
	for _, req := range []core.PauseRequest{{Reason: ""}, {Platform: "nope", Reason: "x"}, {Source: "nope", Reason: "x"}} {
		_, err := eng.StartPause(context.Background(), req)
		var ie *core.InputError
		require.ErrorAs(t, err, &ie, "%+v", req)
	}
}
