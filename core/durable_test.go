package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/store/memstore"
)

// seedUnfinished records a rotation as a crashed replica would leave it: running, one target in
// flight, its credential sealed, its lease held by owner for ttl.
func seedUnfinished(t *testing.T, st core.Store, kr core.Sealer, owner string, ttl time.Duration, cred core.Credential) string {
	t.Helper()
	now := time.Now().UTC()
	rot := &core.Rotation{ID: "rot_crashed", Source: "db", Status: core.RotationRunning, CreatedAt: now, Type: cred.Type,
		Targets: []core.TargetResult{{Name: "p-a", Platform: "p", Vendor: "fake", Status: core.TargetRunning, Attempts: 1, StartedAt: &now}}}
	var sealed []byte
	if kr != nil {
		clear, err := cred.EncodeClear()
		require.NoError(t, err)
		sealed, err = kr.Seal(clear, []byte(rot.ID))
		require.NoError(t, err)
	}
	hit, err := st.CreateRotation(context.Background(), core.NewRotation{Rotation: rot, SealedCredential: sealed, Owner: owner, LeaseTTL: ttl})
	require.NoError(t, err)
	require.Nil(t, hit)
	return rot.ID
}

func waitFinished(t *testing.T, eng *core.Engine, id string) *core.Rotation {
	t.Helper()
	var rot *core.Rotation
	require.Eventually(t, func() bool {
		var err error
		rot, err = eng.Get(context.Background(), id)
		return err == nil && rot.Status.Finished()
	}, 10*time.Second, 10*time.Millisecond)
	return rot
}

func TestResumesOwnRotationAtOnceAfterRestart(t *testing.T) {
	st := memstore.New()
	kr, _ := keyring.Generate()
	id := seedUnfinished(t, st, kr, "replica-a", time.Hour, pw("resumed-pw"))
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Store, c.Sealer, c.Owner, c.LeaseTTL = st, kr, "replica-a", time.Hour
	})
	require.NoError(t, h.eng.Start(context.Background()))
	rot := waitFinished(t, h.eng, id)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, 2, rot.Targets[0].Attempts, "attempts continue across the restart")
	require.Equal(t, []string{`{"password":"resumed-pw"}`}, a.got, "the in-flight target is sent again with the stored credential")
	_, err := st.SealedCredential(context.Background(), id)
	require.True(t, errors.Is(err, core.ErrNotFound), "the credential is deleted once every target succeeded")
	evs, err := st.ListAudit(context.Background(), core.AuditFilter{RotationID: id})
	require.NoError(t, err)
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	require.Contains(t, actions, "rotation.resumed")
	require.Contains(t, actions, "rotation.finished")
}

func TestTakesOverADeadReplicasRotationAfterItsLease(t *testing.T) {
	st := memstore.New()
	kr, _ := keyring.Generate()
	id := seedUnfinished(t, st, kr, "replica-dead", 300*time.Millisecond, pw("x"))
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Store, c.Sealer, c.Owner, c.LeaseTTL = st, kr, "replica-b", 100*time.Millisecond
	})
	start := time.Now()
	require.NoError(t, h.eng.Start(context.Background()))
	require.Zero(t, a.calls(), "a live lease of another replica is respected")
	rot := waitFinished(t, h.eng, id)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "taken over only once the dead replica's lease expired")
}

func TestWithoutKeyAnInterruptedRotationAsksToResubmit(t *testing.T) {
	st := memstore.New()
	id := seedUnfinished(t, st, nil, "replica-a", time.Hour, pw("x"))
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Store, c.Sealer, c.Owner = st, nil, "replica-a"
	})
	require.NoError(t, h.eng.Start(context.Background()))
	rot := waitFinished(t, h.eng, id)
	require.Equal(t, core.RotationFailed, rot.Status)
	require.Equal(t, core.CodeInterrupted, rot.Targets[0].Error.Code)
	require.Contains(t, rot.Targets[0].Error.Message, "submit the rotation again")
	require.Zero(t, a.calls())
}

func TestShutdownLeavesDurableWorkForTheNextStart(t *testing.T) {
	st := memstore.New()
	kr, _ := keyring.Generate()
	hang := &fakeAdapter{accepts: types, script: []step{{wait: time.Hour}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": hang}, func(c *core.EngineConfig) {
		c.Store, c.Sealer, c.Owner, c.DurableStore = st, kr, "replica-a", true
	})
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("carried-over")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hang.calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Error(t, h.eng.Shutdown(ctx), "the grace period ran out")
	left, err := st.GetRotation(context.Background(), rot.ID)
	require.NoError(t, err)
	require.False(t, left.Status.Finished(), "an interrupted rotation is not reported as failed")
	require.Equal(t, core.TargetPending, left.Targets[0].Status)

	ok := &fakeAdapter{accepts: types}
	h2 := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": ok}, func(c *core.EngineConfig) {
		c.Store, c.Sealer, c.Owner, c.DurableStore = st, kr, "replica-a", true
	})
	require.NoError(t, h2.eng.Start(context.Background()))
	done := waitFinished(t, h2.eng, rot.ID)
	require.Equal(t, core.RotationSucceeded, done.Status)
	require.Equal(t, []string{`{"password":"carried-over"}`}, ok.got)
}

func TestNewerRotationSupersedesOlder(t *testing.T) {
	// The older rotation's call hangs at the vendor; a newer rotation arrives.
	a := &fakeAdapter{accepts: types, script: []step{{wait: time.Hour}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	older, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("old")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	newer := h.rotate(t, pw("new"))
	require.Equal(t, core.RotationSucceeded, newer.Status)
	require.Greater(t, newer.Seq, older.Seq)
	o, err := h.eng.Wait(context.Background(), older.ID)
	require.NoError(t, err)
	require.Equal(t, core.TargetSuperseded, o.Targets[0].Status)
	require.Equal(t, core.CodeSuperseded, o.Targets[0].Error.Code)
	require.Equal(t, []string{`{"password":"old"}`, `{"password":"new"}`}, a.got, "the newer credential is the last one sent")

	// Retrying the older rotation never sends its credential over the newer one.
	_, err = h.eng.Retry(context.Background(), older.ID, "job")
	var ce *core.ConflictError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, 2, a.calls())
}

func TestOlderRotationWaitingToRetryIsSuperseded(t *testing.T) {
	e := &core.Error{Code: core.CodeVendorError, Message: "HTTP 503", VendorStatus: 503, RetryAfter: time.Hour}
	a := &fakeAdapter{accepts: types, script: []step{{retry: true, err: e}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Clock = core.RealClock{} // the older rotation really waits in its backoff
		c.Deadline = 2 * time.Hour
	})
	older, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("old")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	newer := h.rotate(t, pw("new"))
	require.Equal(t, core.RotationSucceeded, newer.Status)
	o, err := h.eng.Wait(context.Background(), older.ID)
	require.NoError(t, err)
	require.Equal(t, core.TargetSuperseded, o.Targets[0].Status)
	require.Equal(t, core.RotationSuperseded, o.Status, "every target superseded: the rotation is superseded, not failed")
	require.Equal(t, 2, a.calls(), "the older rotation did not send again after the newer one")
}

func TestAuditTrail(t *testing.T) {
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("audit-secret"), Actor: "ci-job"})
	require.NoError(t, err)
	_, err = h.eng.Wait(context.Background(), rot.ID)
	require.NoError(t, err)
	evs, err := h.eng.Audit(context.Background(), core.AuditFilter{Source: "db"})
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.Equal(t, "rotation.finished", evs[0].Action, "newest first")
	require.Equal(t, "target.finished", evs[1].Action)
	require.Equal(t, "succeeded", evs[1].Status)
	require.Equal(t, "rotation.submitted", evs[2].Action)
	require.Equal(t, "ci-job", evs[2].Actor)
	for _, e := range evs {
		require.NotContains(t, e.Detail, "audit-secret")
	}
}

// uncertainClaimStore lands the first claim in the store but answers it with an error, as a
// PostgreSQL commit does when the connection drops after the server committed.
type uncertainClaimStore struct {
	*memstore.Store
	failed   bool
	released []string
}

func (s *uncertainClaimStore) ClaimTarget(ctx context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	res, err := s.Store.ClaimTarget(ctx, c, ttl)
	if !s.failed {
		s.failed = true
		return res, errors.New("commit: connection reset by peer")
	}
	return res, err
}

func (s *uncertainClaimStore) ReleaseTarget(ctx context.Context, c core.TargetClaim, hold time.Duration) error {
	s.released = append(s.released, c.RotationID)
	return s.Store.ReleaseTarget(ctx, c, hold)
}

func TestClaimWithUncertainCommitIsReleased(t *testing.T) {
	st := &uncertainClaimStore{Store: memstore.New()}
	a := &fakeAdapter{accepts: types}
	slow := plat
	slow.Timeout = time.Minute // a leaked claim would block the target for a minute
	h := newHarness(t, []core.Platform{slow}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Store = st
	})
	first := h.rotate(t, pw("first"))
	require.Equal(t, core.RotationFailed, first.Status, "a store error while claiming fails the target")
	require.Zero(t, a.calls(), "nothing is sent without a claim")
	require.Contains(t, st.released, first.ID, "the claim that may have landed is released")

	second := h.rotate(t, pw("second")) // h.rotate waits at most 10s
	require.Equal(t, core.RotationSucceeded, second.Status, "the next rotation is not blocked by the first one's claim")
	require.Equal(t, []string{`{"password":"second"}`}, a.got)
}

func TestCallInFlightIsRecordedBeforeItIsSent(t *testing.T) {
	st := memstore.New()
	hang := &fakeAdapter{accepts: types, script: []step{{wait: time.Hour}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": hang}, func(c *core.EngineConfig) {
		c.Store = st
	})
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hang.calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	stored, err := st.GetRotation(context.Background(), rot.ID)
	require.NoError(t, err)
	tr := stored.Targets[0]
	require.Equal(t, core.TargetRunning, tr.Status, "a crash now resumes this target")
	require.Equal(t, 1, tr.Attempts, "the call in flight is counted")
	require.NotNil(t, tr.StartedAt)
}
