package core_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

func noJitter(d time.Duration) time.Duration { return d }

func TestRetryPolicyDelayDoublesToItsCap(t *testing.T) {
	p := core.RetryPolicy{MaxAttempts: 10, Base: 100 * time.Millisecond, Max: time.Second, Jitter: noJitter}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, p.Delay(n, errors.New("x")))
	}
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second}, got)
}

func TestRetryPolicyHonoursLongerRetryAfter(t *testing.T) {
	p := core.RetryPolicy{MaxAttempts: 10, Base: 100 * time.Millisecond, Max: time.Second, Jitter: noJitter}
	require.Equal(t, 7*time.Second, p.Delay(1, &core.Error{Code: core.CodeRateLimited, RetryAfter: 7 * time.Second}))
	require.Equal(t, 100*time.Millisecond, p.Delay(1, &core.Error{Code: core.CodeRateLimited, RetryAfter: time.Millisecond}),
		"a shorter Retry-After does not shorten the backoff")
}

func TestRetryPolicyJitterStaysInItsHalf(t *testing.T) {
	p := core.RetryPolicy{MaxAttempts: 10, Base: time.Second, Max: time.Minute}
	for i := 0; i < 200; i++ {
		d := p.Delay(3, errors.New("x"))
		require.GreaterOrEqual(t, d, 2*time.Second)
		require.LessOrEqual(t, d, 4*time.Second)
	}
}

func TestRetryPolicyNext(t *testing.T) {
	p := core.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute, Jitter: noJitter}
	err := errors.New("x")
	d, ok := p.Next(1, err, true, -1)
	require.True(t, ok)
	require.Equal(t, time.Second, d)
	_, ok = p.Next(1, err, false, -1)
	require.False(t, ok, "the adapter said a retry would not help")
	_, ok = p.Next(3, err, true, -1)
	require.False(t, ok, "max attempts reached")
	_, ok = p.Next(1, err, true, 500*time.Millisecond)
	require.False(t, ok, "the wait would not leave room before the deadline")
	_, ok = p.Next(1, err, true, 2*time.Second)
	require.True(t, ok)
}

// overridingAdapter gives its target one attempt only, whatever the platform says.
type overridingAdapter struct{ fakeAdapter }

func (*overridingAdapter) RetryPolicy(p core.RetryPolicy) core.RetryPolicy {
	p.MaxAttempts = 1
	return p
}

func TestAdapterOverridesRetryPolicy(t *testing.T) {
	e := &core.Error{Code: core.CodeVendorError, Message: "HTTP 503", VendorStatus: 503}
	a := &overridingAdapter{fakeAdapter{accepts: types, script: []step{{retry: true, err: e}}}}
	src := &core.Source{Name: "db", Targets: []*core.Target{{Name: "t", Platform: "p", Vendor: "fake", Adapter: a}}}
	eng, err := core.NewEngine(core.EngineConfig{Platforms: []core.Platform{plat}, Sources: []*core.Source{src}, Store: newMemStore()})
	require.NoError(t, err)
	defer func() { _ = eng.Shutdown(t.Context()) }()
	rot, _, err := eng.Submit(t.Context(), core.SubmitRequest{Source: "db", Credential: pw("x")})
	require.NoError(t, err)
	rot, err = eng.Wait(t.Context(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.TargetFailed, rot.Targets[0].Status)
	require.Equal(t, 1, a.calls(), "the adapter's policy (one attempt) wins over the platform's four")
}
