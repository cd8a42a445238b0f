package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // every test binary of the module accepts -update
)

// TestSmoke runs the harness in its smoke mode (what `make bench-smoke` runs): every section,
// both stores, tiny sizes. It checks the harness works and measures what it says — the calls the
// fakes saw, every target's outcome, a report with every section — never how fast anything is.
func TestSmoke(t *testing.T) {
	o := Defaults()
	o.Throughput, o.Sequential, o.Views = true, true, true
	o.ApplyQuick()
	o.Command = "go test ./bench/ -run TestSmoke"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	require.NoError(t, err)

	// 3 Ns × 2 latencies × 2 verify modes, plus warehouse-pg at N=3 for each latency and mode.
	require.Len(t, rep.Rotations, 12)
	require.Len(t, rep.Warehouse, 4)
	for _, r := range rep.Rotations {
		require.True(t, r.Ok(), "%s: %+v", r.title(), r)
		assert.Positive(t, r.Wall, r.title())
		assert.Positive(t, r.RSSPeak, r.title())
		assert.Equal(t, r.N, r.Calls[callRiverGenPatch], "%s: one PATCH per target", r.title())
		if r.Verify {
			assert.Equal(t, r.N, r.Calls[callRiverGenTest], "%s: one Test Connection per target", r.title())
			assert.Equal(t, 2*r.N, r.CallCount(), r.title())
		} else {
			assert.Equal(t, r.N, r.CallCount(), r.title())
		}
		assert.Equal(t, riverGenBound(r.N, 64, r.Chain, r.Latency), r.Bound, r.title())
		require.NotNil(t, r.Script, r.title())
		require.Empty(t, r.Script.Err, r.title())
		assert.Equal(t, r.CallCount(), r.Script.Calls.Total(), "%s: the script makes the same calls", r.title())
	}
	for _, w := range rep.Warehouse {
		require.True(t, w.Ok(), "%s: %+v", w.title(), w)
		assert.Equal(t, 1, w.Calls[callFeltUpdate], w.title())
		assert.Equal(t, 1, w.Calls[callDatabrainPut], w.title())
		assert.Equal(t, 1, w.Calls[callRiverGenPatch], w.title())
		if w.Verify {
			assert.GreaterOrEqual(t, w.FeltPolls, 2.0, "%s: the fake answers syncing once, so Felt needs two polls", w.title())
			assert.Equal(t, 1, w.Calls[callRiverGenTest], w.title())
		} else {
			assert.Zero(t, w.Calls[callFeltPoll], w.title())
		}
		if w.Latency > 0 {
			assert.Positive(t, w.Bound, w.title())
		}
		require.NotNil(t, w.Script, w.title())
		require.Empty(t, w.Script.Err, w.title())
		assert.Equal(t, w.Calls[callFeltUpdate]+w.Calls[callDatabrainPut]+w.Calls[callRiverGenPatch]+w.Calls[callRiverGenTest],
			w.Script.Calls.Total()-w.Script.Calls[callFeltPoll], "%s: the script makes the same updates", w.title())
	}

	require.Len(t, rep.Throughput, 2)
	for _, tp := range rep.Throughput {
		require.Empty(t, tp.Err, tp.Store)
		assert.Equal(t, o.Count, tp.Accepted, tp.Store)
		assert.Empty(t, tp.Refused, tp.Store)
		assert.Positive(t, tp.PerSecond(), tp.Store)
		assert.LessOrEqual(t, tp.P50, tp.P99, tp.Store)
		n := 0
		for _, c := range tp.Outcomes {
			n += c
		}
		assert.Equal(t, o.Count, n, "%s: every rotation finished: %v", tp.Store, tp.Outcomes)
		assert.Positive(t, tp.Calls[callRiverGenPatch], tp.Store)
	}

	// Issue 14: on each store the views of the big rotation answered 200, the rotation's default
	// answer is bounded (its first page of targets and a cursor), and every request of the
	// history comparison was answered as expected on both stores.
	require.Len(t, rep.Views, 2)
	for _, v := range rep.Views {
		require.Empty(t, v.ViewsErr, v.Store)
		require.Empty(t, v.HistoryErr, v.Store)
		require.Len(t, v.Views, 3, v.Store)
		for _, c := range v.Views {
			assert.True(t, c.Ok(), "%s %s: %+v", v.Store, c.Name, c)
			assert.Positive(t, c.Bytes, "%s %s", v.Store, c.Name)
		}
		assert.Equal(t, core.DefaultTargetPage, v.RotationTargets, "%s: the default answer lists the first page", v.Store)
		assert.True(t, v.RotationNext, "%s: and says where the next page is", v.Store)
		assert.Less(t, v.View(viewRotation).Bytes, 64<<10, "%s: bounded, whatever the rotation's size", v.Store)
		assert.Greater(t, v.View(viewSources).Bytes, o.ViewsTargets*50, "%s: GET /v1/sources lists every target", v.Store)
		require.Len(t, v.Endpoints, 4, v.Store)
		for _, e := range v.Endpoints {
			assert.True(t, e.Ok(), "%s %s: %+v", v.Store, e.Name, e)
			assert.Equal(t, o.ViewsSamples, e.Empty.N, "%s %s", v.Store, e.Name)
			assert.Equal(t, o.ViewsSamples, e.History.N, "%s %s", v.Store, e.Name)
			assert.Equal(t, o.ViewsSamples, e.Latest.N, "%s %s", v.Store, e.Name)
			assert.LessOrEqual(t, e.History.P50, e.History.P99, "%s %s", v.Store, e.Name)
		}
		assert.Positive(t, v.BytesPerRotation(), v.Store)
	}

	md := rep.Markdown()
	for _, want := range []string{BeginMarker, EndMarker, "### Targets of issue 7", "### 5. Views and history (issue 14)", "### 1. One rotation", "warehouse-pg",
		"### 2. Gateway CPU", "### 3. Throughput", "### 4. Side by side", "| CPU model |", "go run ./bench/cmd/credsync-bench -n 10 -latency 20ms -verify on"} {
		assert.Contains(t, md, want)
	}
	assert.NotContains(t, md, "run failed")
}

// TestSmokeWaitingCallers runs the throughput in its waiting mode (-tp-wait -pg-fsync), tiny:
// every rotation is real work, so each one ends succeeded, none is superseded and the fakes see
// every target's PATCH and Test Connection.
func TestSmokeWaitingCallers(t *testing.T) {
	o := Defaults()
	o.Ns = nil
	o.Throughput, o.TPWait, o.PGDurable = true, true, true
	o.ApplyQuick()
	require.NoError(t, o.Validate())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	require.NoError(t, err)
	require.Len(t, rep.Throughput, 2)
	for _, tp := range rep.Throughput {
		require.Empty(t, tp.Err, tp.Store)
		assert.True(t, tp.Wait, tp.Store)
		assert.Equal(t, tp.Store == "postgres", tp.Durable, tp.Store)
		assert.Equal(t, o.Count, tp.Accepted, "%s: every answer came with the rotation finished", tp.Store)
		assert.Equal(t, o.Count, tp.Completed, "%s: every rotation succeeded", tp.Store)
		assert.Equal(t, map[string]int{"succeeded": o.Count}, tp.Outcomes, "%s: nothing superseded", tp.Store)
		assert.Equal(t, o.Count*o.PerSource, tp.Calls[callRiverGenPatch], tp.Store)
		assert.Equal(t, o.Count*o.PerSource, tp.Calls[callRiverGenTest], tp.Store)
		assert.Positive(t, tp.CompletedPerSecond(), tp.Store)
	}
	md := rep.Markdown()
	assert.Contains(t, md, "*waiting*")
	assert.Contains(t, md, "PostgreSQL (fsync on)")
}

// TestRotationCountsEveryPage: a rotation of more targets than one answer holds (100) is
// counted on all of its pages.
func TestRotationCountsEveryPage(t *testing.T) {
	o := Defaults()
	o.Ns, o.Latencies, o.Verify, o.Repeat, o.RepeatUpTo = []int{150}, []time.Duration{0}, []bool{true}, 1, 1
	o.Sequential = false
	require.NoError(t, o.Validate())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	require.NoError(t, err)
	require.Len(t, rep.Rotations, 1)
	r := rep.Rotations[0]
	require.True(t, r.Ok(), "%+v", r)
	assert.Equal(t, 150, r.Succeeded)
	assert.Equal(t, 150, r.Verified)
}

// TestCallerBodiesWaiting: with -tp-wait each caller posts to sources no other caller posts to.
func TestCallerBodiesWaiting(t *testing.T) {
	o := Defaults()
	o.Count, o.Callers, o.Sources, o.TPWait = 50, 4, 6, true
	sources := throughputSources(&o)
	owner := map[string]int{}
	total := 0
	for c, bodies := range callerBodies(&o, sources) {
		for _, b := range bodies {
			var v struct{ Source string }
			require.NoError(t, json.Unmarshal(b, &v))
			if prev, ok := owner[v.Source]; ok {
				require.Equal(t, prev, c, "source %s is posted by two callers", v.Source)
			}
			owner[v.Source] = c
			total++
		}
	}
	assert.Equal(t, 50, total)
	assert.Len(t, owner, 6, "every source is used")
}

func TestWriteReportKeepsTextAroundTheMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	gen := func(s string) string { return BeginMarker + "\n" + s + "\n" + EndMarker + "\n" }

	require.NoError(t, WriteReport(path, gen("first")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, gen("first"), string(b), "a new file is the report alone")

	require.NoError(t, os.WriteFile(path, []byte("# Title\n\nanalysis before\n\n"+gen("old")+"\nanalysis after\n"), 0o644))
	require.NoError(t, WriteReport(path, gen("new")))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Title\n\nanalysis before\n\n"+gen("new")+"\nanalysis after\n", string(b))
}

// TestInProcSnapshot checks the in-process memory snapshot: gateway.New in this process, one
// rotation, MemStats and the top of a heap profile half way.
func TestInProcSnapshot(t *testing.T) {
	o := Defaults()
	o.ApplyQuick()
	v, err := startVendors()
	require.NoError(t, err)
	defer v.Close()
	rr := &rotationRun{o: &o, tmp: t.TempDir(), vendors: v}
	m := rr.snapshotMemory(context.Background(), 20, 5*time.Millisecond, true)
	require.Empty(t, m.Err)
	assert.Positive(t, m.Goroutines)
	assert.Positive(t, m.StackInuse)
	assert.GreaterOrEqual(t, m.PeakStackInuse, m.StackInuse)
	assert.Positive(t, m.LiveHeap)
	assert.Positive(t, m.Wall)
	assert.NotEmpty(t, m.TopHeap, m.Note)
	assert.Equal(t, 20, v.snapshot()[callRiverGenTest], "the rotation ran to the end")
}

// BenchmarkRotation100 is one rotation of 100 RiverGen targets (verify on, zero-latency fakes)
// through the real gateway binary per iteration; it reports the gateway's CPU per vendor call.
// `go test ./bench/` does not run it; `go test -run '^$' -bench Rotation ./bench/` does.
func BenchmarkRotation100(b *testing.B) {
	o := Defaults()
	ctx := context.Background()
	tmp := b.TempDir()
	bin, err := BuildGateway(ctx, tmp)
	require.NoError(b, err)
	v, err := startVendors()
	require.NoError(b, err)
	defer v.Close()
	rr := &rotationRun{o: &o, bin: bin, tmp: tmp, vendors: v}
	v.seedRiverGen(100)
	g, err := startGateway(ctx, bin, tmp, configSpec{Store: store{Driver: "sqlite"}, Concurrency: 64,
		Sources: []src{riverGenSource("bench", 1, 100, true)}, Poll: o.PollInterval.String()}, v, "")
	require.NoError(b, err)
	defer g.stop()
	cpu0, err := CPUTime(g.pid())
	require.NoError(b, err)
	calls0 := v.snapshot()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, rot, _, err := rr.rotateOnce(ctx, g, "bench")
		require.NoError(b, err)
		require.Equal(b, "succeeded", rot.Status)
		v.forget()
	}
	b.StopTimer()
	cpu1, err := CPUTime(g.pid())
	require.NoError(b, err)
	calls := v.snapshot().Sub(calls0).Total()
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)/float64(calls), "gateway-cpu-ms/call")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
}
