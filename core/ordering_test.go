package core_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/store/memstore"
)

// vendorLog is what a fake vendor applied, in the order it applied it, and whether two writes
// were ever in progress at once. It is the checker's view: what the vendor did, not what the
// engine says.
type vendorLog struct {
	mu       sync.Mutex
	applied  []string
	inflight int32
	overlap  bool
}

func (v *vendorLog) begin() {
	if atomic.AddInt32(&v.inflight, 1) > 1 {
		v.mu.Lock()
		v.overlap = true
		v.mu.Unlock()
	}
}

func (v *vendorLog) apply(body string) {
	v.mu.Lock()
	v.applied = append(v.applied, body)
	v.mu.Unlock()
	atomic.AddInt32(&v.inflight, -1)
}

func (v *vendorLog) snapshot() ([]string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.applied...), v.overlap
}

// slowVendor applies each write after delay, whatever happens to the caller meanwhile (a
// canceled HTTP call may still be applied), and passes the platform's admission first.
type slowVendor struct {
	fakeAdapter
	log   *vendorLog
	delay func(n int) time.Duration
	calls int32
}

func (s *slowVendor) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	release, err := s.adm.Admit(ctx)
	if err != nil {
		return core.SendResult{}, true, &core.Error{Code: core.CodeCanceled, Message: err.Error(), NotSent: true}
	}
	defer release(0)
	if ctx.Err() != nil {
		return core.SendResult{}, true, &core.Error{Code: core.CodeCanceled, Message: "canceled", NotSent: true}
	}
	n := int(atomic.AddInt32(&s.calls, 1))
	body, _ := req.WireBody()
	s.log.begin()
	done := make(chan struct{})
	go func() {
		time.Sleep(s.delay(n))
		s.log.apply(string(body))
		close(done)
	}()
	select {
	case <-done:
		return core.SendResult{Check: true}, false, nil
	case <-ctx.Done():
		return core.SendResult{}, true, &core.Error{Code: core.CodeCanceled, Message: "canceled in flight"}
	}
}

// TestOlderCallInFlightIsNeverCutShort is the reproduction: an older rotation's slow
// call is in flight when a newer rotation takes the target. The older call is not canceled (it
// would still be applied), the newer one is sent after it, and the vendor ends with the newer
// credential.
func TestOlderCallInFlightIsNeverCutShort(t *testing.T) {
	log := &vendorLog{}
	p := plat
	p.Timeout = 3 * time.Second
	p.Admission = core.NewAdmission(p, nil)
	v := &slowVendor{fakeAdapter: fakeAdapter{accepts: types, adm: p.Admission}, log: log,
		delay: func(n int) time.Duration {
			if n == 1 {
				return 1500 * time.Millisecond
			}
			return 0
		}}
	src := &core.Source{Name: "db", Targets: []*core.Target{{Name: "rivergen", Platform: "p", Vendor: "fake", Adapter: v}}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{p}, Sources: []*core.Source{src}, Store: memstore.New()})
	require.NoError(t, err)
	defer func() { _ = eng.Shutdown(context.Background()) }()

	a, _, err := eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("A")})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	b, _, err := eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("B")})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err = eng.Wait(ctx, b.ID)
	require.NoError(t, err)
	a, err = eng.Wait(ctx, a.ID)
	require.NoError(t, err)

	applied, overlap := log.snapshot()
	require.Equal(t, []string{`{"password":"A"}`, `{"password":"B"}`}, applied, "the vendor applied the newer credential last")
	require.False(t, overlap, "the newer write started only after the older one was applied")
	require.Equal(t, core.RotationSucceeded, b.Status)
	require.True(t, b.Targets[0].Verified)
	// A's write landed (the vendor held A until B replaced it), but it was not verified.
	require.Equal(t, core.TargetSucceeded, a.Targets[0].Status)
	require.False(t, a.Targets[0].Verified)
	require.Contains(t, a.Targets[0].Warning, "newer rotation took this target over")
}

// TestClaimOutlivesWaitForSlotAcrossReplicas: replica 1 holds a target's claim while its call
// waits for a concurrency slot far longer than the claim's ttl; replica 2's newer rotation must
// not send until replica 1's call has been applied.
func TestClaimOutlivesWaitForSlotAcrossReplicas(t *testing.T) {
	log := &vendorLog{}
	st := memstore.New()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	newReplica := func(owner string) (*core.Engine, *core.Admission) {
		p := plat
		p.Timeout = 200 * time.Millisecond // claim ttl 1.4 s; the slot stays taken for 3 s
		p.MaxConcurrency = 1
		p.Admission = core.NewAdmission(p, nil)
		v := &slowVendor{fakeAdapter: fakeAdapter{accepts: types, adm: p.Admission}, log: log,
			delay: func(int) time.Duration { return 50 * time.Millisecond }}
		src := &core.Source{Name: "db", Targets: []*core.Target{{Name: "t", Platform: "p", Vendor: "fake", Adapter: v}}}
		eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{p}, Sources: []*core.Source{src},
			Store: st, Sealer: kr, Owner: owner, Logger: zap.NewNop()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
		return eng, p.Admission
	}
	r1, adm1 := newReplica("replica-1")
	r2, _ := newReplica("replica-2")

	// Another call of replica 1 holds platform p's only slot for 3 s.
	release, err := adm1.Admit(context.Background())
	require.NoError(t, err)
	go func() {
		time.Sleep(3 * time.Second)
		release(0)
	}()
	a, _, err := r1.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("A")})
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // A holds the claim and waits for the slot
	b, _, err := r2.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("B")})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err = r2.Wait(ctx, b.ID)
	require.NoError(t, err)
	a, err = r1.Wait(ctx, a.ID)
	require.NoError(t, err)
	applied, overlap := log.snapshot()
	require.Equal(t, []string{`{"password":"A"}`, `{"password":"B"}`}, applied,
		"the claim was kept alive while A waited for its slot: B waited for A")
	require.False(t, overlap)
	require.Equal(t, core.TargetSucceeded, b.Targets[0].Status)
	require.Equal(t, core.TargetSucceeded, a.Targets[0].Status)
}
