package bench

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a ')': fields are counted after the last ')'.
	line := "4242 (cred sync) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 1000 200 0\n"
	d, err := parseStatCPU([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, 175*clockTick, d)

	_, err = parseStatCPU([]byte("4242 no-paren S 1"))
	assert.Error(t, err)
	_, err = parseStatCPU([]byte("4242 (x) S 1 2"))
	assert.Error(t, err)
}

func TestParseStatusMem(t *testing.T) {
	status := "Name:\tcredsync\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	rss, hwm, err := parseStatusMem([]byte(status))
	require.NoError(t, err)
	assert.Equal(t, int64(20<<20), rss)
	assert.Equal(t, int64(40<<20), hwm)

	_, _, err = parseStatusMem([]byte("Name:\tx\nVmRSS:\t 1 kB\n"))
	assert.Error(t, err, "VmHWM missing")
}

func TestOwnProcessStats(t *testing.T) {
	_, err := CPUTime(1) // pid 1 exists on Linux
	require.NoError(t, err)
	_, hwm, err := MemStatus(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, hwm)
}

func TestRiverGenBound(t *testing.T) {
	ms := time.Millisecond
	assert.Equal(t, 100*ms, riverGenBound(1, 64, 2, 50*ms))
	assert.Equal(t, 100*ms, riverGenBound(64, 64, 2, 50*ms))
	assert.Equal(t, 200*ms, riverGenBound(65, 64, 2, 50*ms))
	assert.Equal(t, 157*2*50*ms, riverGenBound(10000, 64, 2, 50*ms)) // 15.7 s
	assert.Equal(t, 157*50*ms, riverGenBound(10000, 64, 1, 50*ms))
	assert.Zero(t, riverGenBound(10000, 64, 2, 0))
}

func TestWarehouseChains(t *testing.T) {
	ms := time.Millisecond
	c := warehouseChains(50*ms, 10*ms, true, 2)
	assert.Equal(t, 50*ms+100*ms+10*ms, c[felt.Vendor], "update + 2 polls + 1 interval")
	assert.Equal(t, 50*ms, c[databrain.Vendor])
	assert.Equal(t, 100*ms, c[rivergen.Vendor])

	c = warehouseChains(50*ms, 10*ms, false, 0)
	assert.Equal(t, 50*ms, c[felt.Vendor])
	assert.Equal(t, 50*ms, c[rivergen.Vendor])
}

func TestPercentileAndMedian(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), percentile(s, 0.5))
	assert.Equal(t, time.Duration(99), percentile(s, 0.99))
	assert.Equal(t, time.Duration(1), percentile(s[:1], 0.99))
	assert.Equal(t, time.Duration(2), median([]time.Duration{3, 1, 2}))
	assert.Zero(t, median(nil))
}

func TestParseFlags(t *testing.T) {
	ns, err := ParseInts("1, 3,10000")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3, 10000}, ns)
	ns, err = ParseInts("none")
	require.NoError(t, err)
	assert.Empty(t, ns)
	_, err = ParseInts("10k")
	assert.Error(t, err)

	ds, err := ParseDurations("0,50ms,5")
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{0, 50 * time.Millisecond, 5 * time.Millisecond}, ds)
	_, err = ParseDurations("fast")
	assert.Error(t, err)

	v, err := ParseVerify("both")
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false}, v)
	_, err = ParseVerify("maybe")
	assert.Error(t, err)
}

func TestApplyQuick(t *testing.T) {
	o := Defaults()
	o.Throughput = true
	o.ApplyQuick()
	assert.Equal(t, []int{1, 3, 10}, o.Ns)
	assert.Equal(t, []time.Duration{0, 20 * time.Millisecond}, o.Latencies)
	assert.Equal(t, 1, o.Repeat)
	assert.LessOrEqual(t, o.Count, 40)
	assert.Equal(t, 1000, o.ViewsTargets, "the views' smoke run is tiny")
	assert.Equal(t, 2000, o.History)
	assert.Equal(t, 100, o.HistorySources)
	assert.Equal(t, 20, o.ViewsSamples)
	require.NoError(t, o.Validate())
}

func TestValidate(t *testing.T) {
	o := Defaults()
	o.Ns = []int{0}
	assert.Error(t, o.Validate())
	o = Defaults()
	o.Throughput, o.Stores = true, []string{"mysql"}
	assert.Error(t, o.Validate())
	o = Defaults()
	o.Views, o.History = true, -1
	assert.Error(t, o.Validate())
	o = Defaults()
	o.Views, o.ViewsTargets = true, 0
	assert.Error(t, o.Validate())
	o = Defaults()
	o.Views, o.Stores = true, []string{"mysql"}
	assert.Error(t, o.Validate())
}

func TestScriptsHoldNoSecret(t *testing.T) {
	for _, s := range []string{riverGenScript(3, true), riverGenScript(3, false), warehouseScript(true, 10*time.Millisecond)} {
		assert.Contains(t, s, "$NEW_PASSWORD")
		assert.Contains(t, s, "set -euo pipefail")
		assert.NotContains(t, s, "pw-")
	}
	assert.Equal(t, 3, strings.Count(riverGenScript(3, false), "curl "))
	assert.Equal(t, 6, strings.Count(riverGenScript(3, true), "curl "))
}

func TestParsePerfReport(t *testing.T) {
	text := `# Samples: 1K of event 'cpu-clock:ppp'
#
# Overhead  Symbol
# ........  ......
#
    12.50%  [.] runtime.scanobject - -
     3.10%  [k] _raw_spin_unlock_irqrestore
`
	lines, samples, err := parsePerfReport(text)
	require.NoError(t, err)
	assert.Equal(t, "Samples: 1K of event 'cpu-clock:ppp'", samples)
	assert.Equal(t, []string{" 12.50%  runtime.scanobject", "  3.10%  _raw_spin_unlock_irqrestore"}, lines)

	children := "    40.00%     1.00%  [.] github.com/credsync/credsync/core.(*Engine).runTarget\n"
	lines, _, err = parsePerfReport(children)
	require.NoError(t, err)
	assert.Equal(t, []string{" 40.00%  github.com/credsync/credsync/core.(*Engine).runTarget"}, lines)

	_, _, err = parsePerfReport("# nothing\n")
	assert.Error(t, err)
}

func TestVerdictsWithoutMeasurements(t *testing.T) {
	rep := &Report{}
	for _, v := range rep.Verdicts() {
		assert.False(t, v.Known, v.Target)
		assert.Contains(t, v.Measured, "not measured")
	}
	rep.Throughput = []*ThroughputResult{{Store: "sqlite", Accepted: 1000, Submit: time.Second, Callers: 64}}
	var sqlite Verdict
	for _, v := range rep.Verdicts() {
		if strings.Contains(v.Target, "SQLite") {
			sqlite = v
		}
	}
	assert.True(t, sqlite.Known)
	assert.True(t, sqlite.Met, "1000/s >= 500/s")
}

func TestParseProcStat(t *testing.T) {
	s, err := parseProcStat([]byte("77 (postgres) S 42 77 77 0 -1 4194560 1 0 0 0 10 5 3 2 20 0 1 0 100 1000 200\n"))
	require.NoError(t, err)
	assert.Equal(t, 77, s.pid)
	assert.Equal(t, 42, s.ppid)
	assert.Equal(t, "postgres", s.comm)
	assert.Equal(t, 15*clockTick, s.cpu)
	assert.Equal(t, 5*clockTick, s.children)
	assert.Zero(t, ChildCPU(os.Getpid(), "no-such-command"))
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP credsync_store_operation_duration_seconds Rotation store operations.
# TYPE credsync_store_operation_duration_seconds histogram
credsync_store_operation_duration_seconds_bucket{op="UpdateTarget",result="ok",le="0.001"} 3
credsync_store_operation_duration_seconds_sum{op="UpdateTarget",result="ok"} 0.5
credsync_store_operation_duration_seconds_count{op="UpdateTarget",result="ok"} 10
credsync_store_operation_duration_seconds_sum{op="UpdateTarget",result="error"} 0.5
credsync_store_operation_duration_seconds_count{op="UpdateTarget",result="error"} 10
credsync_store_operation_duration_seconds_sum{op="ClaimTarget",result="ok"} 0.1
credsync_store_operation_duration_seconds_count{op="ClaimTarget",result="ok"} 5
credsync_vendor_request_duration_seconds_sum{vendor="rivergen",platform="rivergen",op="update",class="2xx"} 2
credsync_vendor_request_duration_seconds_count{vendor="rivergen",platform="rivergen",op="update",class="2xx"} 40
credsync_api_requests_total{route="/v1/rotations",code="202"} 7
`
	m, err := parseMetrics(text)
	require.NoError(t, err)
	assert.Equal(t, OpStat{Op: "UpdateTarget", Count: 20, Sum: time.Second}, m["store UpdateTarget"])
	assert.Equal(t, 50*time.Millisecond, m["store UpdateTarget"].Mean())
	assert.Equal(t, OpStat{Op: "update", Count: 40, Sum: 2 * time.Second}, m["vendor update"])
	assert.Equal(t, []string{"UpdateTarget", "ClaimTarget"}, []string{m.list("store")[0].Op, m.list("store")[1].Op})
	assert.Equal(t, 1100*time.Millisecond, m.total("store"))

	base := opStats{"store UpdateTarget": {Op: "UpdateTarget", Count: 5, Sum: 250 * time.Millisecond}}
	d := m.sub(base)
	assert.Equal(t, 15.0, d["store UpdateTarget"].Count)
	assert.Equal(t, 750*time.Millisecond, d["store UpdateTarget"].Sum)

	_, err = parseMetrics("credsync_store_operation_duration_seconds_sum{op=\"x\"} notanumber\n")
	assert.Error(t, err)
}

// ResetPeakRSS makes VmHWM the peak from now: this process's peak after a big allocation was
// freed and returned falls back to about its current RSS.
func TestResetPeakRSS(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	_, before, err := MemStatus(os.Getpid())
	require.NoError(t, err)
	big = nil
	runtime.GC()
	debug.FreeOSMemory()
	require.NoError(t, ResetPeakRSS(os.Getpid()))
	rss, after, err := MemStatus(os.Getpid())
	require.NoError(t, err)
	assert.Less(t, after, before-32<<20, "the peak was reset (VmHWM %d before, %d after)", before, after)
	assert.LessOrEqual(t, rss, after+8<<20)
}

func TestLatencyStatsAndRatio(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	st := latencyStats(ds)
	assert.Equal(t, 100, st.N)
	assert.Equal(t, 50*time.Millisecond, st.P50)
	assert.Equal(t, 99*time.Millisecond, st.P99)
	assert.Equal(t, 100*time.Millisecond, st.Max)
	assert.Equal(t, 100*time.Millisecond, ds[0], "the caller's slice is not sorted in place")
	assert.Zero(t, latencyStats(nil).P99)

	e := EndpointCompare{Empty: LatencyStats{N: 1, P99: 20 * time.Millisecond}, History: LatencyStats{N: 1, P99: 30 * time.Millisecond}}
	assert.InDelta(t, 1.5, e.Ratio(), 1e-9)
	assert.True(t, e.Ok())
	e.History.Errors = 1
	assert.False(t, e.Ok(), "an error on either side fails the comparison")
	assert.Zero(t, (&EndpointCompare{}).Ratio(), "no empty-store figure: no ratio")
	e.History.Errors, e.Latest = 0, LatencyStats{N: 1, P99: 15 * time.Millisecond}
	assert.InDelta(t, 2.0, e.RatioLatest(), 1e-9)

	v := ViewsResult{History: 1000, EmptyBytes: 1 << 20, HistoryBytes: 1<<20 + 3_000_000}
	assert.InDelta(t, 3000, v.BytesPerRotation(), 1e-9)
	assert.Zero(t, (&ViewsResult{}).BytesPerRotation())
}

func TestThousandsAndBytes(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1000000: "1,000,000", -12345: "-12,345"} {
		assert.Equal(t, want, thousands(n), "%d", n)
	}
	assert.Equal(t, "512 B", fmtBytes(512))
	assert.Equal(t, "2.0 KiB", fmtBytes(2048))
	assert.Equal(t, "24.0 MiB", fmtBytes(24<<20))
	assert.Equal(t, "1.50 GiB", fmtBytes(3<<29))
}

// TestViewsReport renders a made-up views result: the goals of issue 14 met and missed as the
// figures say, the tables present, and nothing of it without -views.
func TestViewsReport(t *testing.T) {
	o := Defaults()
	o.Views = true
	ok := func(name string, d time.Duration, bytes int) *ViewCall {
		return &ViewCall{Name: name, Code: 200, Bytes: bytes, Median: d, Max: d, Samples: 5}
	}
	rep := &Report{Options: o, Views: []*ViewsResult{{
		Store: "sqlite", Targets: 100000, History: 1000000, HistorySources: 10000, PerSource: 3, Samples: 200,
		Views:           []*ViewCall{ok(viewSources, 1500*time.Millisecond, 24<<20), ok(viewStatus, 80*time.Millisecond, 40<<10), ok(viewRotation, 30*time.Millisecond, 21<<10)},
		RotationTargets: 100, RotationNext: true,
		EmptyBytes: 1 << 20, HistoryBytes: 1<<20 + 3_000_000_000,
		Endpoints: []*EndpointCompare{
			{Name: epList, Empty: LatencyStats{N: 200, P50: time.Millisecond, P99: 2 * time.Millisecond}, History: LatencyStats{N: 200, P50: time.Millisecond, P99: 2500 * time.Microsecond}},
			{Name: epPost, Empty: LatencyStats{N: 200, P99: 10 * time.Millisecond}, Latest: LatencyStats{N: 200, P99: 20 * time.Millisecond}, History: LatencyStats{N: 200, P99: 40 * time.Millisecond}},
		},
		Command: viewsCommand(&o, "sqlite"),
	}, {Store: "postgres", ViewsErr: "start postgres: no binaries", HistoryErr: "start postgres: no binaries", Command: viewsCommand(&o, "postgres")}}}

	vs := rep.ViewsVerdicts()
	byTarget := map[string]Verdict{}
	for _, v := range vs {
		byTarget[v.Target] = v
	}
	find := func(prefix string) Verdict {
		for k, v := range byTarget {
			if strings.HasPrefix(k, prefix) {
				return v
			}
		}
		t.Fatalf("no verdict %q in %v", prefix, vs)
		return Verdict{}
	}
	assert.False(t, find("GET /v1/sources on SQLite").Met, "1.5 s is over 0.5 s")
	assert.True(t, find("GET /v1/sources on SQLite").Known)
	assert.True(t, find("GET / (status page, status token) on SQLite").Met)
	assert.True(t, find("GET /v1/rotations?limit=50 on SQLite").Met, "1.25× is within 1.5×")
	assert.False(t, find("POST /v1/rotations?wait on SQLite").Met, "4× is not")
	assert.False(t, find("GET /v1/sources on PostgreSQL").Known, "a failed run is not measured")
	assert.Contains(t, find("history on PostgreSQL").Measured, "run failed: start postgres")

	md := rep.Markdown()
	for _, want := range []string{"### 5. Views and history (issue 14)", "| SQLite | GET /v1/sources | 200 | 24.0 MiB | 1.50 s | 1.50 s |",
		"21.0 KiB (100 targets listed, next page: true)", "| SQLite | POST /v1/rotations?wait | 0 | 10.0 ms | 0 | 20.0 ms | 0 | 40.0 ms | 4.00× | 2.00× |",
		"| SQLite | 1,000,000 |", "| 3000 |", "-views-targets 100000 -history 1000000", "**missed**"} {
		assert.Contains(t, md, want)
	}
	rep.Views = nil
	assert.NotContains(t, rep.Markdown(), "issue 14")
}
