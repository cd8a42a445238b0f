package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/store/memstore"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// step is one scripted answer of the fake adapter's Send.
type step struct {
	retry bool
	err   error
	wait  time.Duration // hold the call this long (or until ctx ends)
}

// fakeAdapter stands in for an adapter and its vendorhttp client: each call passes the
// platform's admission and is cut at the platform's timeout (both set by newHarness).
type fakeAdapter struct {
	accepts []core.CredentialType
	adm     *core.Admission
	timeout time.Duration
	started func() // called when a call starts, once admitted
	script  []step // consumed in order; success once exhausted
	verify  func() (core.Verification, bool, error)

	mu       sync.Mutex
	sends    int
	inflight int32
	maxSeen  int32
	got      []string
}

func (f *fakeAdapter) Accepts() []core.CredentialType { return f.accepts }

func (f *fakeAdapter) Build(c core.Credential) (core.Request, error) {
	for _, t := range f.accepts {
		if t == c.Type {
			return core.Request{Method: "POST", Path: "/update", Body: map[string]any{"password": c.Password}}, nil
		}
	}
	return core.Request{}, &core.InputError{Message: "unsupported", Problems: []core.Problem{{Field: "credential.type", Message: "not accepted"}}}
}

func (f *fakeAdapter) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	retry, err := f.send(ctx, req)
	return core.SendResult{Check: err == nil}, retry, err
}

func (f *fakeAdapter) send(ctx context.Context, req core.Request) (bool, error) {
	if f.adm != nil {
		release, err := f.adm.Admit(ctx)
		if err != nil {
			return true, &core.Error{Code: core.CodeCanceled, Message: err.Error(), NotSent: true}
		}
		var pause time.Duration
		defer func() { release(pause) }()
		defer func() {
			if ce, ok := f.lastErr().(*core.Error); ok && ce.Code == core.CodeRateLimited {
				pause = ce.RetryAfter // what vendorhttp does with a 429
			}
		}()
	}
	if ctx.Err() != nil {
		return true, &core.Error{Code: core.CodeCanceled, Message: "canceled before sending", NotSent: true}
	}
	if f.started != nil {
		f.started()
	}
	n := atomic.AddInt32(&f.inflight, 1)
	defer atomic.AddInt32(&f.inflight, -1)
	for {
		m := atomic.LoadInt32(&f.maxSeen)
		if n <= m || atomic.CompareAndSwapInt32(&f.maxSeen, m, n) {
			break
		}
	}
	f.mu.Lock()
	i := f.sends
	f.sends++
	body, _ := req.WireBody()
	f.got = append(f.got, string(body))
	f.mu.Unlock()
	var s step
	if i < len(f.script) {
		s = f.script[i]
	}
	if s.wait > 0 {
		start := time.Now()
		wait, cut := s.wait, time.Duration(0)
		if f.timeout > 0 && f.timeout < wait {
			wait, cut = f.timeout, f.timeout
		}
		select {
		case <-time.After(wait):
			if cut > 0 {
				return true, &core.Error{Code: core.CodeTimeout, Message: "no answer in time", InFlightUntil: start.Add(cut)}
			}
		case <-ctx.Done():
			return true, &core.Error{Code: core.CodeTimeout, Message: "no answer in time"}
		}
	}
	return s.retry, s.err
}

func (f *fakeAdapter) Verify(ctx context.Context, _ core.VerifyRequest) (core.Verification, bool, error) {
	return f.check(ctx)
}

func (f *fakeAdapter) check(ctx context.Context) (core.Verification, bool, error) {
	if f.verify != nil {
		return f.verify()
	}
	return core.Verification{Verified: true}, false, nil
}

// lastErr is the scripted error of the latest send.
func (f *fakeAdapter) lastErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.sends - 1; i >= 0 && i < len(f.script) {
		return f.script[i].err
	}
	return nil
}

func (f *fakeAdapter) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sends
}

// fakeClock records the waits the engine asks for and returns at once, moving its time forward
// by each wait.
type fakeClock struct {
	mu      sync.Mutex
	sleeps  []time.Duration
	skipped time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skipped)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.skipped += d
	c.mu.Unlock()
	return ctx.Err()
}
func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

type harness struct {
	eng   *core.Engine
	clock *fakeClock
	logs  *observer.ObservedLogs
}

func newHarness(t *testing.T, platforms []core.Platform, targets map[string]*fakeAdapter, opts ...func(*core.EngineConfig)) *harness {
	t.Helper()
	src := &core.Source{Name: "db"}
	platforms = append([]core.Platform(nil), platforms...)
	for i := range platforms {
		platforms[i] = platforms[i].WithDefaults()
		platforms[i].Admission = core.NewAdmission(platforms[i], nil)
	}
	for name, a := range targets {
		pl := platforms[0]
		for _, p := range platforms {
			if len(name) >= len(p.Name) && name[:len(p.Name)] == p.Name {
				pl = p
			}
		}
		a.adm, a.timeout = pl.Admission, pl.Timeout
		platform := pl.Name
		src.Targets = append(src.Targets, &core.Target{Name: name, Platform: platform, Vendor: "fake", Adapter: a})
	}
	obs, logs := observer.New(zap.DebugLevel)
	clock := &fakeClock{}
	kr, err := keyring.Generate()
	require.NoError(t, err)
	cfg := core.EngineConfig{Platforms: platforms, Sources: []*core.Source{src}, Store: memstore.New(), Sealer: kr,
		Logger: zap.New(obs), Clock: clock, Jitter: func(d time.Duration) time.Duration { return d },
		Backoff: core.Backoff{Base: 100 * time.Millisecond, Max: time.Second}}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := core.NewEngine(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return &harness{eng: eng, clock: clock, logs: logs}
}

func pw(v string) core.Credential {
	return core.Credential{Type: core.TypePassword, Password: core.NewSecret(v)}
}

func (h *harness) rotate(t *testing.T, cred core.Credential) *core.Rotation {
	t.Helper()
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: cred})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rot, err = h.eng.Wait(ctx, rot.ID)
	require.NoError(t, err)
	require.True(t, rot.Status.Finished(), "rotation did not finish: %+v", rot)
	return rot
}

func target(rot *core.Rotation, name string) core.TargetResult {
	for _, t := range rot.Targets {
		if t.Name == name {
			return t
		}
	}
	return core.TargetResult{}
}

var plat = core.Platform{Name: "p", Vendor: "fake", Timeout: time.Second, MaxAttempts: 4, MaxConcurrency: 4}
var types = []core.CredentialType{core.TypePassword}

func TestFanOutAllSucceed(t *testing.T) {
	a, b := &fakeAdapter{accepts: types}, &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a, "p-b": b})
	rot := h.rotate(t, pw("new-pw"))
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.NotNil(t, rot.FinishedAt)
	for _, tr := range rot.Targets {
		require.Equal(t, core.TargetSucceeded, tr.Status)
		require.True(t, tr.Verified)
		require.Equal(t, 1, tr.Attempts)
		require.Nil(t, tr.Error)
	}
	require.Equal(t, []string{`{"password":"new-pw"}`}, a.got, "the adapter receives the clear value on the wire")
	require.Equal(t, 2, h.logs.FilterMessage("target succeeded").Len(), "one log line per target outcome")
}

func TestConcurrencyBoundPerPlatform(t *testing.T) {
	p := plat
	p.MaxConcurrency = 2
	q := core.Platform{Name: "q", Vendor: "fake", Timeout: time.Second, MaxAttempts: 1, MaxConcurrency: 10}
	targets := map[string]*fakeAdapter{}
	shared := &fakeAdapter{accepts: types, script: make([]step, 12)}
	for i := range shared.script {
		shared.script[i] = step{wait: 20 * time.Millisecond}
	}
	other := &fakeAdapter{accepts: types, script: make([]step, 6)}
	for i := range other.script {
		other.script[i] = step{wait: 20 * time.Millisecond}
	}
	for i := 0; i < 12; i++ {
		targets[fmt.Sprintf("p-%02d", i)] = shared
	}
	for i := 0; i < 6; i++ {
		targets[fmt.Sprintf("q-%02d", i)] = other
	}
	h := newHarness(t, []core.Platform{p, q}, targets)
	rot := h.rotate(t, pw("x"))
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, 12, shared.calls())
	require.LessOrEqual(t, atomic.LoadInt32(&shared.maxSeen), int32(2), "platform p must never exceed max_concurrency 2")
	require.Greater(t, atomic.LoadInt32(&other.maxSeen), int32(2), "platform q is not held back by p's bound")
}

func TestRetryableThenSuccess(t *testing.T) {
	a := &fakeAdapter{accepts: types, script: []step{
		{retry: true, err: &core.Error{Code: core.CodeVendorError, Message: "HTTP 503", VendorStatus: 503}},
		{retry: true, err: &core.Error{Code: core.CodeNetwork, Message: "connection refused"}},
	}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	rot := h.rotate(t, pw("x"))
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetSucceeded, tr.Status)
	require.Equal(t, 3, tr.Attempts)
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, h.clock.waits(), "exponential backoff")
}

func TestBackoffIsCappedAndAttemptsBounded(t *testing.T) {
	e := &core.Error{Code: core.CodeVendorError, Message: "HTTP 500", VendorStatus: 500}
	a := &fakeAdapter{accepts: types, script: []step{{retry: true, err: e}, {retry: true, err: e}, {retry: true, err: e}, {retry: true, err: e}, {retry: true, err: e}}}
	p := plat
	p.MaxAttempts = 5
	h := newHarness(t, []core.Platform{p}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) {
		c.Backoff = core.Backoff{Base: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	})
	rot := h.rotate(t, pw("x"))
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetFailed, tr.Status)
	require.Equal(t, 5, tr.Attempts)
	require.Equal(t, 5, a.calls())
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}, h.clock.waits())
	require.Equal(t, core.CodeVendorError, tr.Error.Code)
	require.True(t, tr.Error.Retryable, "a vendor 5xx stays retryable: POST retry may help")
	require.Equal(t, 500, tr.Error.VendorStatus)
	require.Equal(t, core.RotationFailed, rot.Status)
}

func TestRetryAfterHonoured(t *testing.T) {
	a := &fakeAdapter{accepts: types, script: []step{
		{retry: true, err: &core.Error{Code: core.CodeRateLimited, Message: "HTTP 429", VendorStatus: 429, RetryAfter: 7 * time.Second}},
	}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	rot := h.rotate(t, pw("x"))
	require.Equal(t, core.TargetSucceeded, target(rot, "p-a").Status)
	require.Equal(t, []time.Duration{7 * time.Second}, h.clock.waits(), "Retry-After longer than the backoff wins")
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	a := &fakeAdapter{accepts: types, script: []step{
		{retry: true, err: &core.Error{Code: core.CodeRateLimited, Message: "HTTP 429", VendorStatus: 429, RetryAfter: time.Hour}},
	}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) { c.Deadline = time.Minute })
	rot := h.rotate(t, pw("x"))
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetFailed, tr.Status)
	require.Equal(t, 1, tr.Attempts)
	require.Empty(t, h.clock.waits(), "no wait that would outlive the rotation's deadline")
	require.Equal(t, core.CodeRateLimited, tr.Error.Code)
	require.True(t, tr.Error.Retryable)
}

func TestFinalErrorIsNotRetried(t *testing.T) {
	a := &fakeAdapter{accepts: types, script: []step{{retry: false, err: &core.Error{Code: core.CodeUnauthorized, Message: "HTTP 401: bad token", VendorStatus: 401}}}}
	b := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a, "p-b": b})
	rot := h.rotate(t, pw("x"))
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetFailed, tr.Status)
	require.Equal(t, 1, tr.Attempts)
	require.Equal(t, 1, a.calls())
	require.False(t, tr.Error.Retryable)
	require.Equal(t, core.RotationPartial, rot.Status)
	require.Equal(t, core.TargetSucceeded, target(rot, "p-b").Status)
}

func TestPerAttemptTimeout(t *testing.T) {
	p := plat
	p.Timeout = 30 * time.Millisecond
	p.MaxAttempts = 2
	a := &fakeAdapter{accepts: types, script: []step{{wait: time.Minute}}}
	h := newHarness(t, []core.Platform{p}, map[string]*fakeAdapter{"p-a": a})
	start := time.Now()
	rot := h.rotate(t, pw("x"))
	require.Less(t, time.Since(start), 5*time.Second, "a hung vendor call is cut by the attempt timeout")
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetSucceeded, tr.Status, "the second attempt answers")
	require.Equal(t, 2, tr.Attempts)
}

func TestRotationDeadline(t *testing.T) {
	p := plat
	p.Timeout = time.Minute
	a := &fakeAdapter{accepts: types, script: []step{{wait: time.Minute}}}
	h := newHarness(t, []core.Platform{p}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) { c.Deadline = 50 * time.Millisecond })
	rot := h.rotate(t, pw("x"))
	tr := target(rot, "p-a")
	require.Equal(t, core.TargetFailed, tr.Status)
	require.Equal(t, core.CodeDeadlineExceeded, tr.Error.Code)
	require.Equal(t, 1, tr.Attempts)
}

func TestVerificationFailureAndWarning(t *testing.T) {
	a := &fakeAdapter{accepts: types, verify: func() (core.Verification, bool, error) {
		return core.Verification{}, false, &core.Error{Code: core.CodeVerificationFailed, Message: "could not connect"}
	}}
	b := &fakeAdapter{accepts: types, verify: func() (core.Verification, bool, error) {
		return core.Verification{Verified: false, Warning: "not verified in time"}, false, nil
	}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a, "p-b": b})
	rot := h.rotate(t, pw("x"))
	require.Equal(t, core.CodeVerificationFailed, target(rot, "p-a").Error.Code)
	require.Equal(t, core.TargetFailed, target(rot, "p-a").Status)
	tb := target(rot, "p-b")
	require.Equal(t, core.TargetSucceeded, tb.Status)
	require.False(t, tb.Verified)
	require.Equal(t, "not verified in time", tb.Warning)
	require.Equal(t, core.RotationPartial, rot.Status)
}

func TestInputErrorSendsNothing(t *testing.T) {
	a := &fakeAdapter{accepts: types}
	b := &fakeAdapter{accepts: []core.CredentialType{core.TypeToken}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a, "p-b": b})
	_, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x")})
	var ie *core.InputError
	require.True(t, errors.As(err, &ie))
	require.Equal(t, "p-b", ie.Problems[0].Target)
	_, _, err = h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x"), Targets: []string{"p-a", "nope"}})
	require.True(t, errors.As(err, &ie))
	_, _, err = h.eng.Submit(context.Background(), core.SubmitRequest{Source: "nope", Credential: pw("x")})
	var nf *core.NotFoundError
	require.True(t, errors.As(err, &nf))
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, a.calls()+b.calls(), "a refused rotation reaches no vendor")

	// A subset that can take the credential goes through.
	rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x"), Targets: []string{"p-a"}})
	require.NoError(t, err)
	require.Len(t, rot.Targets, 1)
}

func TestSecretsScrubbedFromErrorsAndLogs(t *testing.T) {
	const sec = "echoed-Secret-9f8e"
	a := &fakeAdapter{accepts: types, script: []step{{err: &core.Error{Code: core.CodeRejected, Message: `HTTP 422: password "` + sec + `" is too weak`, VendorStatus: 422}}}}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	rot := h.rotate(t, pw(sec))
	tr := target(rot, "p-a")
	require.NotContains(t, tr.Error.Message, sec)
	require.Contains(t, tr.Error.Message, core.Redacted)
	j, _ := json.Marshal(rot)
	require.NotContains(t, string(j), sec)
	for _, e := range h.logs.All() {
		j, _ := json.Marshal(e.ContextMap())
		require.NotContains(t, string(j)+e.Message, sec)
	}
}

func TestPanicInAdapterIsContained(t *testing.T) {
	a := &fakeAdapter{accepts: types, verify: func() (core.Verification, bool, error) { panic("boom with secret-xyz") }}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	rot := h.rotate(t, pw("secret-xyz"))
	tr := target(rot, "p-a")
	// The panic came after the send landed: the vendor holds the credential, unproven.
	require.Equal(t, core.TargetSucceeded, tr.Status)
	require.False(t, tr.Verified)
	require.Contains(t, tr.Warning, "internal error in credsync")
	for _, e := range h.logs.All() {
		j, _ := json.Marshal(e.ContextMap())
		require.NotContains(t, string(j), "secret-xyz")
	}
}

func TestPlanRedacts(t *testing.T) {
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	plan, err := h.eng.Plan(core.SubmitRequest{Source: "db", Credential: pw("plan-secret")})
	require.NoError(t, err)
	j, _ := json.Marshal(plan)
	require.NotContains(t, string(j), "plan-secret")
	require.Contains(t, string(j), `"password":"[REDACTED]"`)
	require.Zero(t, a.calls())
}

func TestRetryEndpointResendsFailedOnly(t *testing.T) {
	a := &fakeAdapter{accepts: types, script: []step{{err: &core.Error{Code: core.CodeRejected, Message: "HTTP 400"}}}}
	b := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a, "p-b": b})
	rot := h.rotate(t, pw("x"))
	require.Equal(t, core.RotationPartial, rot.Status)
	_, err := h.eng.Retry(context.Background(), rot.ID, "job")
	require.NoError(t, err)
	rot, err = h.eng.Wait(context.Background(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Equal(t, 2, a.calls())
	require.Equal(t, 1, b.calls(), "a succeeded target is not sent again")
	_, err = h.eng.Retry(context.Background(), rot.ID, "job")
	var ce *core.ConflictError
	require.True(t, errors.As(err, &ce), "nothing left to retry: %v", err)

	srcs, err := h.eng.Sources(context.Background())
	require.NoError(t, err)
	require.Len(t, srcs, 1)
	for _, tv := range srcs[0].Targets {
		require.NotNil(t, tv.Last)
		require.Equal(t, core.TargetSucceeded, tv.Last.Status)
		require.Equal(t, rot.ID, tv.Last.RotationID)
	}
}

func TestIdempotencyKey(t *testing.T) {
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a})
	req := core.SubmitRequest{Source: "db", Credential: pw("x"), Actor: "job", IdempotencyKey: "k1", RequestHash: "h1"}
	first, replayed, err := h.eng.Submit(context.Background(), req)
	require.NoError(t, err)
	require.False(t, replayed)
	again, replayed, err := h.eng.Submit(context.Background(), req)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, first.ID, again.ID)
	req.RequestHash = "h2"
	_, _, err = h.eng.Submit(context.Background(), req)
	var ce *core.ConflictError
	require.True(t, errors.As(err, &ce))
	_, err = h.eng.Wait(context.Background(), first.ID)
	require.NoError(t, err)
	require.Equal(t, 1, a.calls(), "a replayed request sends nothing")
}

func TestRotationIDsSortByCreation(t *testing.T) {
	a := &fakeAdapter{accepts: types}
	h := newHarness(t, []core.Platform{plat}, map[string]*fakeAdapter{"p-a": a}, func(c *core.EngineConfig) { c.NewID = nil })
	var last string
	for i := 0; i < 200; i++ {
		rot, _, err := h.eng.Submit(context.Background(), core.SubmitRequest{Source: "db", Credential: pw("x")})
		require.NoError(t, err)
		require.Greater(t, rot.ID, last, "ids created in one millisecond still sort in order")
		last = rot.ID
	}
}
