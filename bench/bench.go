package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/pgtest"
)

// Report is everything one run measured.
type Report struct {
	Options    Options
	Machine    Machine
	Code       string // git describe of the checkout the gateway was built from
	Rotations  []*RotationResult
	Warehouse  []*RotationResult
	Throughput []*ThroughputResult
	Memory     []*MemSnapshot
	Views      []*ViewsResult
	Took       time.Duration
}

// Run measures what o selects and returns the report. It fails only when the harness itself
// cannot run (build, fake vendors); a measurement that fails is recorded in the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	started := time.Now()
	rep := &Report{Options: o, Machine: DescribeMachine(ctx), Code: describeCode(ctx)}

	tmp, err := os.MkdirTemp("", "credsync-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := o.Binary
	if bin == "" {
		fmt.Fprintln(progress, "building ./cmd/credsync ...")
		if bin, err = BuildGateway(ctx, tmp); err != nil {
			return nil, err
		}
	}
	v, err := startVendors()
	if err != nil {
		return nil, err
	}
	defer v.Close()
	rr := &rotationRun{o: &o, bin: bin, tmp: tmp, vendors: v}

	ns := slices.Clone(o.Ns)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	maxN := 0
	if len(ns) > 0 {
		maxN = ns[len(ns)-1]
	}
	maxLat := slices.Max(append([]time.Duration{0}, o.Latencies...))
	for _, lat := range o.Latencies {
		for vi, verify := range o.Verify {
			var timedOut *RotationResult
			for _, n := range ns {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("benchmark interrupted: %w", ctx.Err())
				}
				if timedOut != nil {
					rep.Rotations = append(rep.Rotations, &RotationResult{Kind: KindRiverGen, N: n, Latency: lat, Verify: verify,
						Concurrency: o.Concurrency, Command: rotationCommand(&o, n, lat, verify),
						Skipped: fmt.Sprintf("not run: N=%d did not finish within %s", timedOut.N, o.RunTimeout)})
					continue
				}
				// Profiled: the largest N at latency 0 (the gateway's own cost, first verify mode) and
				// at the largest latency (last verify mode: the least latency to hide the cost behind).
				profile := o.Profile && n == maxN && ((lat == 0 && vi == 0) || (lat == maxLat && lat > 0 && vi == len(o.Verify)-1))
				r := rr.measure(ctx, KindRiverGen, n, lat, verify, profile)
				if r.TimedOut {
					timedOut = r
				}
				if o.Sequential && r.Skipped == "" && seqRuns(&o, n, lat) {
					r.Script = rr.script(ctx, riverGenScript(n, verify), n, lat)
				}
				rep.Rotations = append(rep.Rotations, r)
				fmt.Fprintln(progress, r.progressLine())
				if n == 3 {
					w := rr.measure(ctx, KindWarehousePG, 3, lat, verify, false)
					if o.Sequential {
						w.Script = rr.script(ctx, warehouseScript(verify, o.PollInterval), 3, lat)
					}
					rep.Warehouse = append(rep.Warehouse, w)
					fmt.Fprintln(progress, w.progressLine())
				}
			}
		}
	}
	extrapolateScripts(rep.Rotations)

	if o.InProc > 0 {
		lat := slices.Max(o.Latencies)
		m := rr.snapshotMemory(ctx, o.InProc, lat, true)
		rep.Memory = append(rep.Memory, m)
		fmt.Fprintf(progress, "in-process snapshot, %d targets at %s: %d goroutines, stacks %.1f MiB, heap in use %.1f MiB, live heap %.1f MiB %s\n",
			m.N, fmtLatency(lat), m.Goroutines, mib(int64(m.StackInuse)), mib(int64(m.HeapInuse)), mib(int64(m.LiveHeap)), m.Err)
	}

	if o.Throughput {
		for _, s := range o.Stores {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("benchmark interrupted: %w", ctx.Err())
			}
			st := store{Driver: s}
			var stopPG func()
			if s == "postgres" {
				if st, stopPG, err = startPostgres(o.PGDurable); err != nil {
					rep.Throughput = append(rep.Throughput, &ThroughputResult{Store: s, Err: err.Error(), Command: throughputCommand(&o, s)})
					continue
				}
			}
			t := rr.measureThroughput(ctx, st, o.Profile)
			if stopPG != nil {
				stopPG()
			}
			rep.Throughput = append(rep.Throughput, t)
			fmt.Fprintln(progress, t.progressLine())
		}
	}
	if o.Views {
		for _, s := range o.Stores {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("benchmark interrupted: %w", ctx.Err())
			}
			rep.Views = append(rep.Views, rr.viewsOn(ctx, s))
		}
	}
	rep.Machine.LoadEnd = LoadAvg()
	rep.Took = time.Since(started)
	return rep, nil
}

// viewsOn runs the views and history measurement on one store: SQLite files in the run's temp
// dir, or databases of one throwaway PostgreSQL server.
func (rr *rotationRun) viewsOn(ctx context.Context, driver string) *ViewsResult {
	if driver == "sqlite" {
		return rr.measureViews(ctx, driver, func(string) (store, error) { return store{Driver: "sqlite"}, nil })
	}
	pg, err := pgtest.Start()
	if err != nil {
		return &ViewsResult{Store: driver, Command: viewsCommand(rr.o, driver), ViewsErr: "start postgres: " + err.Error(), HistoryErr: "start postgres: " + err.Error()}
	}
	defer func() { _ = pg.Stop() }()
	return rr.measureViews(ctx, driver, func(name string) (store, error) {
		dsn, err := createDatabase(ctx, pg, name)
		return store{Driver: "postgres", DSN: dsn}, err
	})
}

// seqRuns says whether the sequential script runs at n targets and this latency.
func seqRuns(o *Options, n int, lat time.Duration) bool {
	if lat > 0 {
		return n <= o.SeqMaxSlow
	}
	return n <= o.SeqMaxFast
}

// script runs the sequential script against the fakes at latency lat (the median of Repeat
// runs for n <= 10).
func (rr *rotationRun) script(ctx context.Context, text string, n int, lat time.Duration) *ScriptResult {
	rr.vendors.setLatency(lat)
	defer rr.vendors.setLatency(0)
	defer rr.vendors.forget()
	repeats := 1
	if n <= 10 {
		repeats = rr.o.Repeat
	}
	var runs []*ScriptResult
	for i := 0; i < repeats; i++ {
		s := runScript(ctx, rr.tmp, text, rr.vendors, rr.o.RunTimeout)
		if s.Err != "" {
			return s
		}
		runs = append(runs, s)
	}
	slices.SortFunc(runs, func(a, b *ScriptResult) int { return int(a.Wall - b.Wall) })
	return runs[len(runs)/2]
}

// extrapolateScripts fills in the script time of rows beyond the script's limit: the per-target
// time at the largest N it ran at, same latency and verification, times N.
func extrapolateScripts(rows []*RotationResult) {
	for _, r := range rows {
		if r.Script != nil || r.Skipped != "" {
			continue
		}
		var from *RotationResult
		for _, q := range rows {
			if q.Latency == r.Latency && q.Verify == r.Verify && q.Script != nil && !q.Script.Extrapolated && q.Script.Err == "" && q.N < r.N {
				if from == nil || q.N > from.N {
					from = q
				}
			}
		}
		if from != nil {
			r.Script = &ScriptResult{Extrapolated: true, FromN: from.N, Wall: from.Script.Wall * time.Duration(r.N) / time.Duration(from.N)}
		}
	}
}

func (r *RotationResult) progressLine() string {
	s := r.title() + ": "
	switch {
	case r.Skipped != "":
		return s + r.Skipped
	case r.Err != "":
		return s + "ERROR " + firstLine(r.Err)
	case r.TimedOut:
		return s + fmt.Sprintf("did not finish within %s", r.Wall.Round(time.Second))
	}
	s += fmt.Sprintf("%s (bound %s), %d/%d succeeded, cpu/call %s, peak RSS %.1f MiB",
		r.Wall.Round(time.Millisecond), r.Bound, r.Succeeded, r.N, r.CPUPerCall().Round(time.Microsecond), mib(r.RSSPeak))
	if r.Script != nil && !r.Script.Extrapolated {
		if r.Script.Err != "" {
			s += "; script ERROR " + firstLine(r.Script.Err)
		} else {
			s += "; script " + r.Script.Wall.Round(time.Millisecond).String()
		}
	}
	return s
}

func (t *ThroughputResult) progressLine() string {
	if t.Err != "" {
		return fmt.Sprintf("throughput on %s: ERROR %s", t.Store, firstLine(t.Err))
	}
	if t.Wait {
		return fmt.Sprintf("throughput on %s, callers waiting: %d of %d completed succeeded in %s (%.0f/s), p50 %s p99 %s max %s, %d vendor calls",
			t.storeLabel(), t.Completed, t.Count, t.Submit.Round(time.Millisecond), t.CompletedPerSecond(), t.P50.Round(time.Microsecond),
			t.P99.Round(time.Microsecond), t.Max.Round(time.Microsecond), t.Calls.Total())
	}
	return fmt.Sprintf("throughput on %s: %d accepted in %s (%.0f/s), p50 %s p99 %s, all finished after %s",
		t.storeLabel(), t.Accepted, t.Submit.Round(time.Millisecond), t.PerSecond(), t.P50.Round(time.Microsecond), t.P99.Round(time.Microsecond), t.Drain.Round(time.Millisecond))
}

// storeLabel names the store, saying whether PostgreSQL ran with fsync on.
func (t *ThroughputResult) storeLabel() string {
	if t.Store == "postgres" && t.Durable {
		return storeName(t.Store) + " (fsync on)"
	}
	return storeName(t.Store)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// describeCode is the checkout's commit, and whether tracked files differ from it. It only reads:
// GIT_OPTIONAL_LOCKS=0 keeps git status from refreshing the index.
func describeCode(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	code := "commit " + strings.TrimSpace(string(out))
	st := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no")
	st.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	if b, err := st.Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		code += " plus uncommitted changes"
	}
	return code
}
