package core_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// checkingAdapter answers Check after passing its platform's admission, counting how many
// checks ran at once.
type checkingAdapter struct {
	fakeAdapter
	block    bool
	now, max atomic.Int32
}

func (c *checkingAdapter) Check(ctx context.Context) core.CheckResult {
	release, err := c.adm.Admit(ctx)
	if err != nil {
		return core.CheckResult{Status: core.CheckUnreachable, Message: err.Error()}
	}
	defer release(0)
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	if c.block {
		<-ctx.Done()
	}
	time.Sleep(5 * time.Millisecond)
	return core.CheckResult{Status: core.CheckReady, Message: "ok"}
}

func TestCheckAll(t *testing.T) {
	p := core.Platform{Name: "p", Vendor: "fake", MaxConcurrency: 3}
	p.Admission = core.NewAdmission(p, nil)
	ready := &checkingAdapter{fakeAdapter: fakeAdapter{accepts: types, adm: p.Admission}}
	src := &core.Source{Name: "s"}
	for i := 0; i < 30; i++ {
		src.Targets = append(src.Targets, &core.Target{Name: "t" + string(rune('a'+i)), Platform: "p", Vendor: "fake", Adapter: ready})
	}
	src.Targets = append(src.Targets, &core.Target{Name: "no-check", Platform: "p", Vendor: "fake", Adapter: &fakeAdapter{accepts: types}})
	got := core.CheckAll(context.Background(), []*core.Source{src}, []core.Platform{p})
	require.Len(t, got, 31)
	for i, c := range got[:30] {
		require.Equal(t, src.Targets[i].Name, c.Target, "config order")
		require.Equal(t, core.CheckReady, c.Result.Status)
	}
	require.Equal(t, core.CheckUnknown, got[30].Result.Status, "an adapter without a check is unknown")
	require.LessOrEqual(t, ready.max.Load(), int32(3), "checks pass the platform's admission: at most max_concurrency at once")

	hang := &checkingAdapter{fakeAdapter: fakeAdapter{accepts: types, adm: p.Admission}, block: true}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got = core.CheckAll(ctx, []*core.Source{{Name: "h", Targets: []*core.Target{{Name: "h", Platform: "p", Vendor: "fake", Adapter: hang}}}}, []core.Platform{p})
	require.Equal(t, core.CheckUnreachable, got[0].Result.Status, "a check that does not answer in time is unreachable")
}
