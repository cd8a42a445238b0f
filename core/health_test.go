package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

// checked is a stand-in whose check answers what the test says and counts the calls.
type checked struct {
	*standin.Adapter
	mu     sync.Mutex
	result core.CheckResult
	calls  int
}

func newChecked() *checked {
	return &checked{Adapter: standin.New(core.TypePassword), result: core.CheckResult{Status: core.CheckReady, Message: "fine"}}
}

func (c *checked) Check(context.Context) core.CheckResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.result
}

func (c *checked) set(r core.CheckResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.result = r
}

func (c *checked) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func healthEngine(t *testing.T, st core.Store, owner string, a *checked, every time.Duration) *core.Engine {
	t.Helper()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	src := &core.Source{Name: "wh", Targets: []*core.Target{{Name: "rg", Platform: "rg", Vendor: "rivergen", Adapter: a, VerifyEvery: every}}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{{Name: "rg", Vendor: "rivergen", MaxAttempts: 1}}, Sources: []*core.Source{src},
		Store: st, Sealer: kr, DurableStore: true, Owner: owner, Logger: zap.NewNop(), VerifyTick: 5 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng
}

func healthOf(t *testing.T, eng *core.Engine) core.TargetHealth {
	t.Helper()
	vs, err := eng.Sources(context.Background())
	require.NoError(t, err)
	require.NotNil(t, vs[0].Targets[0].Health, "a target with verify_every shows its health")
	return *vs[0].Targets[0].Health
}

func eventTypes(t *testing.T, st core.Store) []string {
	t.Helper()
	evs, err := st.ListEvents(context.Background(), "", 1000)
	require.NoError(t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func waitHealth(t *testing.T, eng *core.Engine, want core.HealthStatus, a *checked) core.TargetHealth {
	t.Helper()
	// At least two more checks, so that a repeated result is seen repeating.
	after := a.count() + 2
	var h core.TargetHealth
	require.Eventually(t, func() bool { h = healthOf(t, eng); return a.count() >= after && h.Status == want }, 5*time.Second, 5*time.Millisecond,
		"health %s", want)
	return h
}

func TestDriftAndRecoveryAreAnnouncedOnce(t *testing.T) {
	st := memstore.New()
	a := newChecked()
	eng := healthEngine(t, st, "r1", a, 20*time.Millisecond)

	h := waitHealth(t, eng, core.HealthHealthy, a)
	require.False(t, h.CheckedAt.IsZero())
	require.Equal(t, "fine", h.Message)
	require.Empty(t, eventTypes(t, st), "healthy from the start: nothing to say")

	// The platform stops answering: unknown, and no drift (it says nothing about the credential).
	a.set(core.CheckResult{Status: core.CheckUnreachable, Message: "HTTP 503"})
	waitHealth(t, eng, core.HealthUnknown, a)
	require.Empty(t, eventTypes(t, st))

	// The credential it holds fails: drift, once, though every check fails.
	a.set(core.CheckResult{Status: core.CheckReady, CredentialFails: true, Message: "Test Connection failed (AUTHENTICATION_FAILED)"})
	h = waitHealth(t, eng, core.HealthUnhealthy, a)
	require.Contains(t, h.Message, "AUTHENTICATION_FAILED")
	waitHealth(t, eng, core.HealthUnhealthy, a)
	require.Equal(t, []string{core.EventTargetDrift}, eventTypes(t, st))

	// It passes again: recovered, once.
	a.set(core.CheckResult{Status: core.CheckReady, Message: "fine again"})
	waitHealth(t, eng, core.HealthHealthy, a)
	waitHealth(t, eng, core.HealthHealthy, a)
	require.Equal(t, []string{core.EventTargetDrift, core.EventTargetRecovered}, eventTypes(t, st))

	evs, err := st.ListEvents(context.Background(), "", 10)
	require.NoError(t, err)
	require.Equal(t, "wh", evs[0].Source)
	require.Len(t, evs[0].Targets, 1)
	require.Equal(t, "rg", evs[0].Targets[0].Name)
	require.Equal(t, "unhealthy", evs[0].Targets[0].Status)
	require.Contains(t, evs[0].Targets[0].Error.Message, "AUTHENTICATION_FAILED")
}

func TestAVerifiedRotationIsHealthAndAPauseHoldsTheChecks(t *testing.T) {
	st := memstore.New()
	a := newChecked()
	a.set(core.CheckResult{Status: core.CheckNotFound, Message: "data source 1 not found"})
	eng := healthEngine(t, st, "r1", a, time.Hour) // checked once at start, then not for an hour
	require.Eventually(t, func() bool { return healthOf(t, eng).Status == core.HealthUnhealthy }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, a.count())

	rot, _, err := eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Credential: pw("p1")})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := eng.Wait(wctx, rot.ID)
	require.NoError(t, err)
	require.True(t, r.Targets[0].Verified)
	h := healthOf(t, eng)
	require.Equal(t, core.HealthHealthy, h.Status, "a verified rotation proves the credential works")
	require.Equal(t, "verified by rotation "+rot.ID, h.Message)
	require.Contains(t, eventTypes(t, st), core.EventTargetRecovered)
	require.Equal(t, 1, a.count(), "and the next check is verify_every after it")

	// A paused target is not checked: a check is a vendor call.
	st2 := memstore.New()
	b := newChecked()
	p, err := healthEngine(t, st2, "r2", b, 10*time.Millisecond).StartPause(context.Background(), core.PauseRequest{Reason: "incident"})
	require.NoError(t, err)
	n := b.count()
	time.Sleep(100 * time.Millisecond)
	require.LessOrEqual(t, b.count(), n+1, "at most the check already under way when the pause began (pause %s)", p.ID)
}

func TestOneReplicaRunsTheChecks(t *testing.T) {
	st := memstore.New()
	a, b := newChecked(), newChecked()
	healthEngine(t, st, "r1", a, 10*time.Millisecond)
	healthEngine(t, st, "r2", b, 10*time.Millisecond)
	require.Eventually(t, func() bool { return a.count()+b.count() >= 10 }, 5*time.Second, 5*time.Millisecond)
	require.True(t, a.count() == 0 || b.count() == 0, "one replica holds the verify lease: %d and %d checks", a.count(), b.count())
}
