package core_test

import (
	"context"
	"errors"
	"fmt"
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

// fakeDB is a source database's users: what their password is now. It is the checker's view
// (what the database holds), not what credsync says.
type fakeDB struct {
	mu       sync.Mutex
	pw       map[string]string
	stageErr error
	stages   int
	retires  []string
	hold     chan struct{} // when set, Stage waits for it
}

func newFakeDB(users ...string) *fakeDB {
	db := &fakeDB{pw: map[string]string{}}
	for _, u := range users {
		db.pw[u] = "initial-" + u
	}
	return db
}

func (d *fakeDB) open(context.Context) (core.SourceDB, error) { return d, nil }

func (d *fakeDB) Stage(ctx context.Context, user string, pw core.Secret) error {
	d.mu.Lock()
	hold, err := d.hold, d.stageErr
	d.stages++
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.pw[user]; !ok {
		return errors.New("no such user " + user)
	}
	d.pw[user] = pw.Reveal()
	return nil
}

func (d *fakeDB) Login(_ context.Context, user string, pw core.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pw[user] != pw.Reveal() {
		return errors.New("authentication failed")
	}
	return nil
}

func (d *fakeDB) Retire(_ context.Context, user string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pw[user] = "retired-random"
	d.retires = append(d.retires, user)
	return nil
}

func (d *fakeDB) Check(context.Context, ...string) error { return nil }
func (d *fakeDB) Close() error                           { return nil }

func (d *fakeDB) password(user string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pw[user]
}

type srcEnv struct {
	eng     *core.Engine
	db      *fakeDB
	targets []*standin.Adapter
	st      core.Store
}

func newSrcEnv(t *testing.T, users []string, targets int, mod func(*core.SourceRotation), st core.Store) *srcEnv {
	t.Helper()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	return newSrcEnvWith(t, newFakeDB(users...), kr, users, targets, mod, st)
}

func newSrcEnvWith(t *testing.T, db *fakeDB, kr *keyring.Keyring, users []string, targets int, mod func(*core.SourceRotation), st core.Store) *srcEnv {
	t.Helper()
	sr := &core.SourceRotation{Engine: "postgres", Users: users, RetireAfter: 150 * time.Millisecond, Open: db.open,
		Generate: func() (core.Secret, error) {

			return core.NewSecret("Gen3rated-" + time.Now().Format("150405.000000000")), nil
		}}
	if mod != nil {
		mod(sr)
	}
	env := &srcEnv{db: db, st: st}
	src := &core.Source{Name: "wh", Rotation: sr}
	for i := 0; i < targets; i++ {
		a := standin.New(sr.CredentialType())
		env.targets = append(env.targets, a)
		src.Targets = append(src.Targets, &core.Target{Name: "t" + string(rune('1'+i)), Platform: "p", Vendor: "fake", Adapter: a})
	}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{plat}, Sources: []*core.Source{src}, Store: st,
		Sealer: kr, DurableStore: true, Owner: "replica-1", Logger: zap.NewNop(), SourceTick: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	env.eng = eng
	return env
}

func (e *srcEnv) rotate(t *testing.T) *core.Rotation {
	t.Helper()
	rot, _, err := e.eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Generate: true, Actor: "job"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rot, err = e.eng.Wait(ctx, rot.ID)
	require.NoError(t, err)
	require.True(t, rot.Status.Finished(), "%+v", rot)
	return rot
}

func (e *srcEnv) waitPhase(t *testing.T, id, phase string) *core.Rotation {
	t.Helper()
	var rot *core.Rotation
	require.Eventually(t, func() bool {
		r, err := e.eng.Get(context.Background(), id)
		rot = r
		return err == nil && r.SourceRotation != nil && r.SourceRotation.Phase == phase
	}, 10*time.Second, 10*time.Millisecond, "rotation %s never reached phase %s", id, phase)
	return rot
}

func TestGeneratedRotationRetiresOnlyAfterEveryTargetIsVerified(t *testing.T) {
	e := newSrcEnv(t, []string{"analytics_a", "analytics_b"}, 2, func(sr *core.SourceRotation) { sr.RetireAfter = 300 * time.Millisecond }, memstore.New())
	rot := e.rotate(t)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, "analytics_b", rot.SourceRotation.User, "before any rotation users[0] is active: the other is staged")
	require.Equal(t, "analytics_a", rot.SourceRotation.PreviousUser)
	sent := e.targets[0].LastCredential()
	require.Equal(t, "analytics_b", sent.Username, "every target receives the staged user")
	require.Equal(t, sent.Password.Reveal(), e.targets[1].LastCredential().Password.Reveal())
	require.Equal(t, sent.Password.Reveal(), e.db.password("analytics_b"), "the database holds what the targets received")
	require.Equal(t, "initial-analytics_a", e.db.password("analytics_a"), "the previous user keeps working until the retire")
	for _, tr := range rot.Targets {
		require.Equal(t, "analytics_b", tr.User, tr.Name)
	}
	require.Contains(t, []string{core.PhaseRetiring, core.PhaseDone}, rot.SourceRotation.Phase)

	srcs, err := e.eng.Sources(context.Background())
	require.NoError(t, err)
	require.Equal(t, "analytics_b", srcs[0].ActiveUser)

	done := e.waitPhase(t, rot.ID, core.PhaseDone)
	require.NotNil(t, done.SourceRotation.RetiredAt)
	require.False(t, done.SourceRotation.RetiredAt.Before(*done.SourceRotation.RetireAt), "not before retire_at")
	require.Equal(t, "retired-random", e.db.password("analytics_a"), "the previous user no longer logs in")
	require.Equal(t, sent.Password.Reveal(), e.db.password("analytics_b"), "the new one still does")
	evs, err := e.eng.Audit(context.Background(), core.AuditFilter{RotationID: rot.ID})
	require.NoError(t, err)
	actions := map[string]bool{}
	for _, ev := range evs {
		actions[ev.Action] = true
	}
	require.True(t, actions["credential.retired"], "%v", actions)

	// The next rotation alternates back.
	next := e.rotate(t)
	require.Equal(t, "analytics_a", next.SourceRotation.User)
	require.Equal(t, "analytics_b", next.SourceRotation.PreviousUser)
}

func TestOneTargetFailingRetiresNothingUntilARetryCompletes(t *testing.T) {
	e := newSrcEnv(t, []string{"a", "b"}, 2, func(sr *core.SourceRotation) { sr.RetireAfter = 50 * time.Millisecond }, memstore.New())
	e.targets[1].FailWith(&core.Error{Code: core.CodeRejected, Message: "HTTP 400: no", VendorStatus: 400})
	rot := e.rotate(t)
	require.Equal(t, core.RotationPartial, rot.Status)
	require.Equal(t, core.PhasePropagating, rot.SourceRotation.Phase, "the barrier holds")
	users := map[string]string{}
	for _, tr := range rot.Targets {
		users[tr.Name] = tr.User
	}
	require.Equal(t, map[string]string{"t1": "b", "t2": "a"}, users, "the rotation says which target holds which user")
	time.Sleep(300 * time.Millisecond) // many ticks past retire_after
	require.Equal(t, "initial-a", e.db.password("a"), "nothing is retired while a target holds the previous user")
	require.Empty(t, e.db.retires)

	_, _, err := e.eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Generate: true})
	var ce *core.ConflictError
	require.ErrorAs(t, err, &ce, "both users are held: a new rotation would break one of them")

	e.targets[1].FailWith(nil)
	_, err = e.eng.Retry(context.Background(), rot.ID, "job")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rot, err = e.eng.Wait(ctx, rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	e.waitPhase(t, rot.ID, core.PhaseDone)
	require.Equal(t, []string{"a"}, e.db.retires, "the retry completed it: the retire clock started and ran")
}

func TestStageFailureCallsNoTarget(t *testing.T) {
	e := newSrcEnv(t, []string{"a", "b"}, 2, nil, memstore.New())
	e.db.stageErr = errors.New("connection refused")
	rot := e.rotate(t)
	require.Equal(t, core.RotationFailed, rot.Status)
	for i, tr := range rot.Targets {
		require.Equal(t, core.CodeStageFailed, tr.Error.Code)
		require.Zero(t, e.targets[i].Sends(), "no target is called when staging failed")
	}
	require.Equal(t, "initial-a", e.db.password("a"))
	e.db.stageErr = nil
	_, err := e.eng.Retry(context.Background(), rot.ID, "job")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rot, err = e.eng.Wait(ctx, rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status, "a retry stages again, then sends")
}

func TestSingleUserIsReplacedInPlace(t *testing.T) {
	e := newSrcEnv(t, []string{"solo"}, 1, nil, memstore.New())
	rot := e.rotate(t)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, "solo", rot.SourceRotation.User)
	require.Empty(t, rot.SourceRotation.PreviousUser)
	require.Equal(t, core.PhaseDone, rot.SourceRotation.Phase, "nothing to retire")
	require.Equal(t, e.targets[0].LastCredential().Password.Reveal(), e.db.password("solo"))
}

func TestGeneratedRotationResumesInStaging(t *testing.T) {
	st := memstore.New()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	db := newFakeDB("a", "b")
	db.hold = make(chan struct{})
	e := newSrcEnvWith(t, db, kr, []string{"a", "b"}, 1, nil, st)
	rot, _, err := e.eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Generate: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool { db.mu.Lock(); defer db.mu.Unlock(); return db.stages == 1 }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = e.eng.Shutdown(ctx) // the gateway stops in phase staging
	left, err := st.GetRotation(context.Background(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.PhaseStaging, left.SourceRotation.Phase, "left in its phase, not failed")
	require.False(t, left.Status.Finished())
	require.Zero(t, e.targets[0].Sends())

	// The same replica comes back (same store, key and database): it stages again and goes on.
	db.mu.Lock()
	db.hold = nil
	db.mu.Unlock()
	e2 := newSrcEnvWith(t, db, kr, []string{"a", "b"}, 1, nil, st)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	done, err := e2.eng.Wait(ctx2, rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, done.Status)
	require.Equal(t, 2, db.stages, "staged again after the restart")
	require.Equal(t, e2.targets[0].LastCredential().Password.Reveal(), db.password("b"), "the same password: the sealed one")
}

func TestScheduledRotationRunsOnItsOwnAndAdvances(t *testing.T) {
	e := newSrcEnv(t, []string{"a", "b"}, 1, func(sr *core.SourceRotation) {
		sr.Schedule, sr.RetireAfter = 300*time.Millisecond, 10*time.Millisecond
	}, memstore.New())
	var first *core.Rotation
	require.Eventually(t, func() bool {
		rots, err := e.eng.List(context.Background(), core.ListFilter{Source: "wh"})
		require.NoError(t, err)
		if len(rots) > 0 && rots[len(rots)-1].Status.Finished() {
			first = rots[len(rots)-1]
			return true
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the schedule started a rotation")
	require.Equal(t, "schedule", first.Actor)
	require.Equal(t, core.RotationSucceeded, first.Status)
	srcs, err := e.eng.Sources(context.Background())
	require.NoError(t, err)
	require.NotNil(t, srcs[0].NextDueAt, "next_due_at is shown")
	require.NotNil(t, srcs[0].LastRotatedAt)
	require.True(t, srcs[0].NextDueAt.After(*srcs[0].LastRotatedAt))
	require.Eventually(t, func() bool {
		rots, _ := e.eng.List(context.Background(), core.ListFilter{Source: "wh"})
		return len(rots) >= 2
	}, 10*time.Second, 20*time.Millisecond, "and again when next_due_at passes")
}

func TestGenerateRefusals(t *testing.T) {
	e := newSrcEnv(t, []string{"a", "b"}, 1, nil, memstore.New())
	ctx := context.Background()
	_, _, err := e.eng.Submit(ctx, core.SubmitRequest{Source: "wh", Credential: core.Credential{Type: core.TypePassword, Password: core.NewSecret("x")}})
	var ie *core.InputError
	require.ErrorAs(t, err, &ie, "a rotating source makes its own credential")
	_, _, err = e.eng.Submit(ctx, core.SubmitRequest{Source: "wh", Generate: true, Targets: []string{"t1"}})
	require.ErrorAs(t, err, &ie, "a generated rotation goes to every target")
	plan, err := e.eng.Plan(core.SubmitRequest{Source: "wh", Generate: true})
	require.NoError(t, err)
	require.Len(t, plan, 1)
	require.Equal(t, "initial-b", e.db.password("b"), "a plan stages nothing")

	plain := &core.Source{Name: "plain", Targets: []*core.Target{{Name: "x", Platform: "p", Vendor: "fake", Adapter: standin.New(core.TypePassword)}}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{plat}, Sources: []*core.Source{plain}, Store: memstore.New()})
	require.NoError(t, err)
	defer func() { _ = eng.Shutdown(ctx) }()
	_, _, err = eng.Submit(ctx, core.SubmitRequest{Source: "plain", Generate: true})
	require.ErrorAs(t, err, &ie, "a source without rotation: takes a credential")
}

func TestEventsAreWrittenToTheOutbox(t *testing.T) {
	st := memstore.New()
	e := newSrcEnv(t, []string{"a", "b"}, 1, func(sr *core.SourceRotation) { sr.RetireAfter = 20 * time.Millisecond }, st)
	rot := e.rotate(t)
	e.waitPhase(t, rot.ID, core.PhaseDone)
	var types []string
	require.Eventually(t, func() bool {
		evs, err := st.ListEvents(context.Background(), "", 100)
		require.NoError(t, err)
		types = nil
		for _, ev := range evs {
			types = append(types, ev.Type)
			require.NotEmpty(t, ev.ID)
			require.Equal(t, "wh", ev.Source)
		}
		return len(types) == 2
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{core.EventRotationSucceeded, core.EventCredentialRetired}, types)
}

// A rotation that stages the user whose retire is pending replaces that user's old password
// only once its staging succeeds: if staging fails, the retire still runs at retire_at, and the
// rotation that scheduled it does not claim a retire that did not happen.
func TestStagingFailureKeepsThePendingRetire(t *testing.T) {
	e := newSrcEnv(t, []string{"a", "b"}, 1, func(sr *core.SourceRotation) { sr.RetireAfter = time.Second }, memstore.New())
	first := e.rotate(t)
	require.Equal(t, core.PhaseRetiring, first.SourceRotation.Phase)
	e.db.mu.Lock()
	e.db.stageErr = errors.New("connection refused")
	e.db.mu.Unlock()
	second := e.rotate(t)
	require.Equal(t, core.RotationFailed, second.Status)
	require.Equal(t, "a", second.SourceRotation.User, "the second rotation stages the user being retired")

	got, err := e.eng.Get(context.Background(), first.ID)
	require.NoError(t, err)
	require.Equal(t, core.PhaseRetiring, got.SourceRotation.Phase, "a's old password still works: not retired")
	require.Nil(t, got.SourceRotation.RetiredAt)
	require.Equal(t, "initial-a", e.db.password("a"))
	srcs, err := e.eng.Sources(context.Background())
	require.NoError(t, err)
	require.Equal(t, "a", srcs[0].RetireUser, "the retire is still pending")

	done := e.waitPhase(t, first.ID, core.PhaseDone)
	require.NotNil(t, done.SourceRotation.RetiredAt)
	require.Equal(t, "retired-random", e.db.password("a"), "retired at retire_at all the same")
	require.Equal(t, []string{"a"}, e.db.retires)
}

// While a rotation stages the user whose retire is pending, the retire waits (retiring it then
// would race the new password); the staging replaces the old password, which ends that retire.
func TestStagingReplacesAPendingRetire(t *testing.T) {
	kr, err := keyring.Generate()
	require.NoError(t, err)
	db := newFakeDB("a", "b")
	st := memstore.New()
	e := newSrcEnvWith(t, db, kr, []string{"a", "b"}, 1, func(sr *core.SourceRotation) { sr.RetireAfter = 200 * time.Millisecond }, st)
	first := e.rotate(t)
	require.Equal(t, core.PhaseRetiring, first.SourceRotation.Phase)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // before the engine's shutdown, also when the test fails
	db.mu.Lock()
	db.hold = hold
	db.mu.Unlock()
	second, _, err := e.eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Generate: true})
	require.NoError(t, err)
	require.Equal(t, "a", second.SourceRotation.User)
	require.Eventually(t, func() bool { db.mu.Lock(); defer db.mu.Unlock(); return db.stages == 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // past retire_at, many ticks
	db.mu.Lock()
	require.Empty(t, db.retires, "a user being staged is not retired under its new password")
	db.mu.Unlock()
	got, err := e.eng.Get(context.Background(), first.ID)
	require.NoError(t, err)
	require.Equal(t, core.PhaseRetiring, got.SourceRotation.Phase, "not staged yet: a's old password still works")

	db.mu.Lock()
	db.hold = nil
	db.mu.Unlock()
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second, err = e.eng.Wait(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, second.Status)
	done := e.waitPhase(t, first.ID, core.PhaseDone)
	require.NotNil(t, done.SourceRotation.RetiredAt, "the staging replaced a's old password")
	require.Equal(t, e.targets[0].LastCredential().Password.Reveal(), db.password("a"))
	db.mu.Lock()
	require.Empty(t, db.retires)
	db.mu.Unlock()
	// The old password's end is announced and audited as any retire.
	evs, err := st.ListEvents(context.Background(), "", 100)
	require.NoError(t, err)
	retired := 0
	for _, ev := range evs {
		if ev.Type == core.EventCredentialRetired && ev.RotationID == first.ID {
			retired++
		}
	}
	require.Equal(t, 1, retired, "credential.retired for the first rotation, once")
	aud, err := st.ListAudit(context.Background(), core.AuditFilter{RotationID: first.ID})
	require.NoError(t, err)
	var actions []string
	for _, a := range aud {
		actions = append(actions, a.Action)
	}
	require.Contains(t, actions, "credential.retired")
}

// A key-pair source (Snowflake): the slots are one user's key slots, the first rotation stages
// the slot the database says is free, every target receives the private key without a username
// (the user does not change), and the retire empties the previous slot.
func TestKeyPairSourceAlternatesKeySlots(t *testing.T) {
	slots := []string{"RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_2"}
	n := 0
	e := newSrcEnv(t, slots, 2, func(sr *core.SourceRotation) {
		sr.Engine, sr.KeyUser, sr.RetireAfter = "snowflake", "ANALYTICS", 50*time.Millisecond
		sr.Initial = func(context.Context) (string, error) { return "RSA_PUBLIC_KEY_2", nil }
		sr.Generate = func() (core.Secret, error) {
			n++
			return core.NewSecret(fmt.Sprintf("-----BEGIN PRIVATE KEY-----\nkey-%d\n-----END PRIVATE KEY-----\n", n)), nil
		}
	}, memstore.New())
	rot := e.rotate(t)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, "RSA_PUBLIC_KEY", rot.SourceRotation.User, "the database said RSA_PUBLIC_KEY_2 is held: the other slot is staged")
	require.Equal(t, "RSA_PUBLIC_KEY_2", rot.SourceRotation.PreviousUser)
	require.Equal(t, "ANALYTICS", rot.SourceRotation.KeyUser)
	for i, a := range e.targets {
		c := a.LastCredential()
		require.Equal(t, core.TypeKeyPair, c.Type, "target %d", i)
		require.Empty(t, c.Username, "the user does not change: only its key")
		require.True(t, c.Password.IsZero())
		require.Equal(t, e.db.password("RSA_PUBLIC_KEY"), c.PrivateKey.Reveal(), "the slot holds the key the targets received")
	}
	require.Equal(t, "initial-RSA_PUBLIC_KEY_2", e.db.password("RSA_PUBLIC_KEY_2"), "the previous key works until the retire")
	e.waitPhase(t, rot.ID, core.PhaseDone)
	require.Equal(t, []string{"RSA_PUBLIC_KEY_2"}, e.db.retires)

	srcs, err := e.eng.Sources(context.Background())
	require.NoError(t, err)
	require.Equal(t, "RSA_PUBLIC_KEY", srcs[0].ActiveUser)
	require.Equal(t, "ANALYTICS", srcs[0].KeyUser)

	evs, err := e.eng.Audit(context.Background(), core.AuditFilter{RotationID: rot.ID})
	require.NoError(t, err)
	var details []string
	for _, ev := range evs {
		details = append(details, ev.Action+": "+ev.Detail)
	}
	require.Contains(t, details, "credential.staged: key slot RSA_PUBLIC_KEY of user ANALYTICS")
	require.Contains(t, details, "credential.retired: key slot RSA_PUBLIC_KEY_2 of user ANALYTICS")

	next := e.rotate(t)
	require.Equal(t, "RSA_PUBLIC_KEY_2", next.SourceRotation.User, "later rotations follow the store, not the database")
	require.Equal(t, e.db.password("RSA_PUBLIC_KEY_2"), e.targets[0].LastCredential().PrivateKey.Reveal())
}

// A source that cannot tell which slot is held before its first rotation (both Snowflake key
// slots hold a key) refuses the rotation with what to do, and stages nothing.
func TestKeyPairSourceRefusesWhenTheHeldSlotIsUnknown(t *testing.T) {
	e := newSrcEnv(t, []string{"RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_2"}, 1, func(sr *core.SourceRotation) {
		sr.KeyUser = "ANALYTICS"
		sr.Initial = func(context.Context) (string, error) {
			return "", errors.New("both key slots hold a key: unset the one no consumer uses")
		}
	}, memstore.New())
	_, _, err := e.eng.Submit(context.Background(), core.SubmitRequest{Source: "wh", Generate: true})
	var ce *core.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Message, "unset the one no consumer uses")
	require.Zero(t, e.db.stages)
	require.Zero(t, e.targets[0].Sends())
}
