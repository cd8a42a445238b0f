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

func TestDefaultEvents(t *testing.T) {
	d := core.DefaultEvents()
	require.NotContains(t, d, core.EventRotationSucceeded, "a success needs nobody's attention")
	require.Len(t, d, len(core.EventTypes())-1)
	require.True(t, core.Subscription{Name: "ops", Events: d}.Wants(core.EventRotationPartial))
	require.False(t, core.Subscription{Name: "ops", Events: d}.Wants(core.EventRotationSucceeded))
}

// TestEventsAreEnqueuedForTheNotificationsThatWantThem: the engine writes each event with one
// delivery per notification whose filter takes it, and answers their counts.
func TestEventsAreEnqueuedForTheNotificationsThatWantThem(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	ok, bad := standin.New(core.TypePassword), standin.New(core.TypePassword)
	bad.FailWith(&core.Error{Code: core.CodeRejected, Message: "HTTP 400"})
	kr, err := keyring.Generate()
	require.NoError(t, err)
	subs := []core.Subscription{
		{Name: "ops", Events: core.DefaultEvents()},
		{Name: "all", Events: core.EventTypes()},
		{Name: "pauses", Events: []string{core.EventPauseStarted}},
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Store: st, Logger: zap.NewNop(), Sealer: kr, Notifications: subs,
		Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources: []*core.Source{
			{Name: "good", Targets: []*core.Target{{Name: "a", Platform: "p", Vendor: "fake", Adapter: ok}}},
			{Name: "flaky", Targets: []*core.Target{{Name: "x", Platform: "p", Vendor: "fake", Adapter: bad}}},
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	cred := core.Credential{Type: core.TypePassword, Password: core.NewSecret("delivery-test-secret")}
	for _, src := range []string{"good", "flaky"} {
		rot, _, err := eng.Submit(ctx, core.SubmitRequest{Source: src, Credential: cred})
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = eng.Wait(wctx, rot.ID)
		cancel()
		require.NoError(t, err)
	}
	types := func(name string) []string {
		var out []string
		require.Eventually(t, func() bool {
			evs, err := st.ListEvents(ctx, "", 10)
			require.NoError(t, err)
			return len(evs) == 2
		}, 5*time.Second, 10*time.Millisecond, "both rotations' events are written")
		ds, err := st.ClaimDeliveries(ctx, "test", name, time.Now().Add(time.Hour), 10, time.Minute)
		require.NoError(t, err)
		for _, d := range ds {
			out = append(out, d.Event.Type)
			require.NotContains(t, d.Event.Detail+d.Event.Source, "delivery-test-secret")
		}
		return out
	}
	require.Equal(t, []string{core.EventRotationFailed}, types("ops"), "the default filter leaves out successes")
	require.ElementsMatch(t, []string{core.EventRotationSucceeded, core.EventRotationFailed}, types("all"))
	require.Empty(t, types("pauses"))

	views, err := eng.Notifications(ctx)
	require.NoError(t, err)
	require.Len(t, views, 3)
	for i, v := range views {
		require.Equal(t, subs[i].Name, v.Notification, "config order")
		require.Equal(t, subs[i].Events, v.Events)
	}
	require.Equal(t, 1, views[0].Pending)
	require.Equal(t, 2, views[1].Pending)
	require.Zero(t, views[2].Pending+views[2].Failing+views[2].Delivered+views[2].Failed)
}
