package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
)

// Kinds of single-rotation run.
const (
	KindRiverGen    = "rivergen"     // N RiverGen targets on one platform
	KindWarehousePG = "warehouse-pg" // the demo's three-vendor source
)

// RotationResult is one single-rotation measurement (the median of its repeats).
type RotationResult struct {
	Kind        string
	N           int
	Latency     time.Duration
	Verify      bool
	Concurrency int

	Walls []time.Duration // each repeat, from the POST to its answer
	Wall  time.Duration   // the median
	// Polled is set when ?wait ran out (the API caps it at 5m) and the end was observed by GET.
	Polled bool

	// Bound is the lower bound: ceil(N / Concurrency) × Chain × Latency for RiverGen; for
	// warehouse-pg the slowest target's own chain of calls (Chains).
	Bound  time.Duration
	Chain  int                      // calls one target needs (RiverGen)
	Chains map[string]time.Duration // warehouse-pg: each vendor's chain
	// FeltPolls is the Show Source calls per rotation the Felt target needed (warehouse-pg).
	FeltPolls float64

	Repeats    int           // rotations measured
	Ops        opStats       // the gateway's store operations and vendor calls (its /metrics) over all repeats
	Calls      Counts        // vendor calls over all repeats
	CPU        time.Duration // gateway utime+stime over all repeats
	HarnessCPU time.Duration // the harness (fake vendors + client) over the same time
	RSSIdle    int64         // gateway VmRSS after start, before the first rotation
	RSSPeak    int64         // gateway VmHWM after the last rotation
	// PeakSinceStart: VmHWM was reset after the start, so RSSPeak is the rotations' peak.
	PeakSinceStart bool

	// Engine is the last repeat's finished_at − created_at: the rotation inside the gateway,
	// without the POST's own work before created_at and the answer after finished_at.
	Engine              time.Duration
	Succeeded, Verified int            // of the last repeat
	Other               map[string]int // targets that did not succeed, by status/code
	Err                 string         // a failure of the run (not of a target)
	TimedOut            bool
	Skipped             string // why this run was not made

	Script  *ScriptResult
	Profile *Profile
	Command string // reproduces this row
}

// Ratio is Wall / Bound (0 when the bound is 0).
func (r *RotationResult) Ratio() float64 {
	if r.Bound <= 0 || r.Wall <= 0 {
		return 0
	}
	return float64(r.Wall) / float64(r.Bound)
}

// CallCount is the vendor calls over all repeats.
func (r *RotationResult) CallCount() int { return r.Calls.Total() }

// CPUPerCall is the gateway's CPU time per vendor call.
func (r *RotationResult) CPUPerCall() time.Duration {
	if n := r.CallCount(); n > 0 {
		return r.CPU / time.Duration(n)
	}
	return 0
}

// PerTarget is the wall time per target (the overhead per target at latency 0).
func (r *RotationResult) PerTarget() time.Duration {
	if r.N > 0 {
		return r.Wall / time.Duration(r.N)
	}
	return 0
}

// PerTargetTime is the time one target spent in operations of kind "store" or "vendor" (the
// gateway's own histograms), on average.
func (r *RotationResult) PerTargetTime(kind string) time.Duration {
	if r.N == 0 || r.Repeats == 0 || r.Ops == nil {
		return 0
	}
	return r.Ops.total(kind) / time.Duration(r.N*r.Repeats)
}

// Ok reports whether every repeat ran and every target succeeded (and was verified when
// verification is on).
func (r *RotationResult) Ok() bool {
	return r.Err == "" && !r.TimedOut && r.Skipped == "" && r.Succeeded == r.N && (!r.Verify || r.Verified == r.N)
}

// riverGenBound is ceil(n / conc) × chain × lat.
func riverGenBound(n, conc, chain int, lat time.Duration) time.Duration {
	waves := (n + conc - 1) / conc
	return time.Duration(waves*chain) * lat
}

// warehouseChains is each vendor's own chain of calls in the three-vendor source: Felt's update
// plus its polls (with a poll_interval between two polls), Databrain's one PUT (it tests the
// connection itself), RiverGen's PATCH plus Test Connection.
func warehouseChains(lat, poll time.Duration, verify bool, feltPolls float64) map[string]time.Duration {
	c := map[string]time.Duration{databrain.Vendor: lat, rivergen.Vendor: lat, felt.Vendor: lat}
	if verify {
		c[rivergen.Vendor] = 2 * lat
		c[felt.Vendor] = lat + time.Duration(feltPolls*float64(lat)) + time.Duration(max(feltPolls-1, 0)*float64(poll))
	}
	return c
}

// rotationRun is the environment a single-rotation run needs.
type rotationRun struct {
	o       *Options
	bin     string
	tmp     string
	vendors *vendors
}

// measure starts a gateway for one source, rotates it Repeat times (N <= RepeatUpTo) and
// returns the measurement.
func (rr *rotationRun) measure(ctx context.Context, kind string, n int, lat time.Duration, verify bool, profile bool) *RotationResult {
	o := rr.o
	res := &RotationResult{Kind: kind, N: n, Latency: lat, Verify: verify, Concurrency: o.Concurrency, Command: rotationCommand(o, n, lat, verify)}
	var source src
	switch kind {
	case KindRiverGen:
		source = riverGenSource("bench", 1, n, verify)
		res.Chain = 1
		if verify {
			res.Chain = 2
		}
		res.Bound = riverGenBound(n, o.Concurrency, res.Chain, lat)
	case KindWarehousePG:
		source = warehousePG(verify)
	}
	rr.vendors.seedRiverGen(n)
	rr.vendors.setLatency(lat)
	defer rr.vendors.setLatency(0)
	defer rr.vendors.forget()

	spec := configSpec{Store: store{Driver: "sqlite"}, Concurrency: o.Concurrency, Sources: []src{source}, Poll: o.PollInterval.String()}
	g, err := startGateway(ctx, rr.bin, rr.tmp, spec, rr.vendors,
		logName(o, fmt.Sprintf("%s-n%d-lat%s-verify-%s", kind, n, fmtLatency(lat), onOff(verify))))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer g.stop()
	if rss, _, err := MemStatus(g.pid()); err == nil {
		res.RSSIdle = rss
	}
	// The peak is the rotations' own, not the start's (parsing a big config peaks higher than
	// what it keeps): VmHWM is reset to the current RSS now.
	res.PeakSinceStart = ResetPeakRSS(g.pid()) == nil

	repeats := 1
	if n <= o.RepeatUpTo {
		repeats = o.Repeat
	}
	var perf *perfRecorder
	if profile {
		if perf, err = startPerf(ctx, g.pid(), rr.tmp); err != nil {
			res.Profile = &Profile{Title: res.title(), Err: err.Error()}
		}
		defer perf.discard() // a run that fails leaves no perf behind
	}
	cpu0, err := CPUTime(g.pid())
	if err != nil {
		res.Err = err.Error()
		return res
	}
	self0, _ := CPUTime(os.Getpid())
	calls0 := rr.vendors.snapshot()
	ops0, opsErr := g.scrapeMetrics(ctx)
	var lastID string
	for i := 0; i < repeats; i++ {
		wall, rot, polled, err := rr.rotateOnce(ctx, g, source.Name)
		if err != nil {
			res.Err = err.Error()
			if errors.Is(err, errTimedOut) {
				res.TimedOut = true
				res.Err = ""
				res.Wall = wall
				g.kill()
			}
			return res
		}
		res.Walls = append(res.Walls, wall)
		res.Polled = res.Polled || polled
		lastID = rot.ID
		if rot.FinishedAt != nil {
			res.Engine = rot.FinishedAt.Sub(rot.CreatedAt)
		}
	}
	cpu1, err := CPUTime(g.pid())
	if err != nil {
		res.Err = err.Error()
		return res
	}
	self1, _ := CPUTime(os.Getpid())
	res.Calls = rr.vendors.snapshot().Sub(calls0)
	res.CPU, res.HarnessCPU = cpu1-cpu0, self1-self0
	res.Repeats = len(res.Walls)
	if ops1, err := g.scrapeMetrics(ctx); err == nil && opsErr == nil {
		res.Ops = ops1.sub(ops0)
	}
	if _, hwm, err := MemStatus(g.pid()); err == nil {
		res.RSSPeak = hwm
	}
	if perf != nil {
		res.Profile = perf.stop(ctx, res.title())
	}
	// The outcome of every target of the last repeat, read page by page once the measurement is
	// over (an answer holds one page of targets).
	if lastID != "" {
		rot, err := g.getRotationAll(ctx, lastID)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		res.Succeeded, res.Verified, res.Other = rot.tally()
	}
	res.Wall = median(res.Walls)
	if kind == KindWarehousePG {
		res.FeltPolls = float64(res.Calls[callFeltPoll]) / float64(repeats)
		res.Chains = warehouseChains(lat, o.PollInterval, verify, res.FeltPolls)
		for _, c := range res.Chains {
			res.Bound = max(res.Bound, c)
		}
	}
	return res
}

// rotateOnce posts one rotation with ?wait=10m and times it to the answer; when the wait runs
// out first (the API caps it at 5m) it polls until the rotation has finished.
func (rr *rotationRun) rotateOnce(ctx context.Context, g *gatewayProc, source string) (time.Duration, *rotationView, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, rr.o.RunTimeout)
	defer cancel()
	body := rotationBody(source)
	start := time.Now()
	st, b, err := g.call(ctx, http.MethodPost, "/v1/rotations?wait=10m", body)
	if err != nil {
		if ctx.Err() != nil {
			return time.Since(start), nil, false, errTimedOut
		}
		return 0, nil, false, err
	}
	wall := time.Since(start)
	if st != http.StatusOK && st != http.StatusAccepted {
		return 0, nil, false, fmt.Errorf("POST /v1/rotations: HTTP %d: %s", st, snippet(b))
	}
	var rot rotationView
	if err := json.Unmarshal(b, &rot); err != nil {
		return 0, nil, false, fmt.Errorf("POST /v1/rotations: decode: %w", err)
	}
	if rot.finished() {
		return wall, &rot, false, nil
	}
	done, err := g.waitRotation(ctx, rot.ID)
	if err != nil {
		if ctx.Err() != nil {
			return time.Since(start), nil, true, errTimedOut
		}
		return 0, nil, true, err
	}
	return time.Since(start), done, true, nil
}

func (r *RotationResult) title() string {
	if r.Kind == KindWarehousePG {
		return fmt.Sprintf("warehouse-pg (3 vendors), latency %s, verify %s", fmtLatency(r.Latency), onOff(r.Verify))
	}
	return fmt.Sprintf("%d RiverGen targets, latency %s, verify %s", r.N, fmtLatency(r.Latency), onOff(r.Verify))
}

// rotationCommand is the command line that reproduces one row.
func rotationCommand(o *Options, n int, lat time.Duration, verify bool) string {
	cmd := fmt.Sprintf("go run ./bench/cmd/credsync-bench -n %d -latency %s -verify %s", n, fmtLatency(lat), onOff(verify))
	if o.Concurrency != 64 {
		cmd += fmt.Sprintf(" -concurrency %d", o.Concurrency)
	}
	if o.Sequential {
		cmd += " -sequential"
	}
	if n <= o.RepeatUpTo && o.Repeat != 3 {
		cmd += fmt.Sprintf(" -repeat %d", o.Repeat)
	}
	return cmd
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
