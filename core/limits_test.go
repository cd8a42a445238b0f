package core_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/memstore"
)

// stampAdapter records when each Send started, in real time.
type stampAdapter struct {
	fakeAdapter
	mu     sync.Mutex
	stamps []time.Time
}

func newStampAdapter(adm *core.Admission, script []step) *stampAdapter {
	s := &stampAdapter{fakeAdapter: fakeAdapter{accepts: types, adm: adm, script: script}}
	s.fakeAdapter.started = func() {
		s.mu.Lock()
		s.stamps = append(s.stamps, time.Now())
		s.mu.Unlock()
	}
	return s
}

func (s *stampAdapter) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]time.Time(nil), s.stamps...)
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// TestThousandTargetsRespectConcurrencyAndRate fans one rotation out to 1,000 targets of one
// platform and checks neither bound is ever exceeded: at most max_concurrency calls in flight,
// and in any window at most burst + rate × window calls started.
func TestThousandTargetsRespectConcurrencyAndRate(t *testing.T) {
	p := core.Platform{Name: "p", Vendor: "fake", Timeout: 5 * time.Second, MaxAttempts: 1, MaxConcurrency: 8, RateLimit: 4000, Burst: 20}
	p.Admission = core.NewAdmission(p, nil)
	shared := newStampAdapter(p.Admission, nil)
	src := &core.Source{Name: "db"}
	for i := 0; i < 1000; i++ {
		src.Targets = append(src.Targets, &core.Target{Name: fmt.Sprintf("t%04d", i), Platform: "p", Vendor: "fake", Adapter: shared})
	}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{p}, Sources: []*core.Source{src}, Store: newMemStore()})
	require.NoError(t, err)
	defer func() { _ = eng.Shutdown(context.Background()) }()
	rot, _, err := eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x")})
	require.NoError(t, err)
	rot, err = eng.Wait(context.Background(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, 1000, shared.calls())
	require.LessOrEqual(t, atomic.LoadInt32(&shared.maxSeen), int32(8), "max_concurrency")
	st := shared.times()
	const slack = 5 * time.Millisecond // timer and scheduling granularity (20 calls at 4,000/s)
	for i := range st {
		for j := i + 1; j < len(st) && j < i+200; j++ {
			window := st[j].Sub(st[i]) + slack
			allowed := float64(p.Burst) + p.RateLimit*window.Seconds()
			require.LessOrEqual(t, float64(j-i+1), allowed+1, "calls %d..%d started within %s", i, j, window)
		}
	}
}

// TestRateLimitedPlatformSlowsOnlyItself: a 429 with Retry-After pauses every call to that
// platform, while another platform goes on at once.
func TestRateLimitedPlatformSlowsOnlyItself(t *testing.T) {
	const pause = 1500 * time.Millisecond
	p := core.Platform{Name: "p", Vendor: "fake", Timeout: 5 * time.Second, MaxAttempts: 3, MaxConcurrency: 1}
	q := core.Platform{Name: "q", Vendor: "fake", Timeout: 5 * time.Second, MaxAttempts: 1, MaxConcurrency: 1}
	p.Admission, q.Admission = core.NewAdmission(p, nil), core.NewAdmission(q, nil)
	limited := newStampAdapter(p.Admission, []step{
		{retry: true, err: &core.Error{Code: core.CodeRateLimited, Message: "HTTP 429", VendorStatus: 429, RetryAfter: pause}},
	})
	free := newStampAdapter(q.Admission, nil)
	src := &core.Source{Name: "db", Targets: []*core.Target{
		{Name: "p-1", Platform: "p", Vendor: "fake", Adapter: limited},
		{Name: "p-2", Platform: "p", Vendor: "fake", Adapter: limited},
		{Name: "q-1", Platform: "q", Vendor: "fake", Adapter: free},
	}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{p, q}, Sources: []*core.Source{src}, Store: newMemStore()})
	require.NoError(t, err)
	defer func() { _ = eng.Shutdown(context.Background()) }()
	start := time.Now()
	rot, _, err := eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x")})
	require.NoError(t, err)
	rot, err = eng.Wait(context.Background(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status)

	ps := limited.times()
	require.Len(t, ps, 3, "one 429, then both targets")
	require.GreaterOrEqual(t, ps[1].Sub(ps[0]), pause-50*time.Millisecond, "after the 429 no call to p starts before Retry-After")
	require.GreaterOrEqual(t, ps[2].Sub(ps[0]), pause-50*time.Millisecond)
	qs := free.times()
	require.Len(t, qs, 1)
	require.Less(t, qs[0].Sub(start), pause, "platform q is not held back by p's 429")
}

func newMemStore() core.Store { return memstore.New() }

// Submit answers as GET does by default, whatever the fan-out: the per-status counts and the
// first page of targets, not a copy of every one.
func TestSubmitAnswerIsBounded(t *testing.T) {
	targets := map[string]*fakeAdapter{}
	for i := 0; i < 250; i++ {
		targets[fmt.Sprintf("p-%03d", i)] = &fakeAdapter{accepts: types}
	}
	h := newHarness(t, []core.Platform{plat}, targets)
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("bounded-pw")})
	require.NoError(t, err)
	require.Len(t, rot.Targets, core.DefaultTargetPage)
	require.Equal(t, 250, rot.TargetCounts[core.TargetPending], "the counts cover every target")
	require.NotEmpty(t, rot.NextTargets, "a cursor to the rest")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	final, err := h.eng.Wait(ctx, rot.ID)
	require.NoError(t, err)
	require.Len(t, final.Targets, 250, "Wait still reads every target")
}

// The "rotation finished" line of a rotation with many failures carries the first 20 errors and
// says how many more there were, rather than one line of every error.
func TestFinishedLineBoundsItsErrors(t *testing.T) {
	targets := map[string]*fakeAdapter{}
	for i := 0; i < 30; i++ {
		targets[fmt.Sprintf("p-%02d", i)] = &fakeAdapter{accepts: types, script: []step{{err: &core.Error{Code: core.CodeRejected, Message: "HTTP 400: refused"}}}}
	}
	h := newHarness(t, []core.Platform{plat}, targets)
	rot := h.rotate(t, pw("many-failures"))
	require.Equal(t, core.RotationFailed, rot.Status)
	lines := h.logs.FilterMessage("rotation finished").All()
	require.Len(t, lines, 1)
	errs := lines[0].ContextMap()["errors"].(string)
	require.Equal(t, 20, strings.Count(errs, "HTTP 400: refused"), errs)
	require.Contains(t, errs, "and 10 more target errors")
}
