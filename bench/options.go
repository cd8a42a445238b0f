// Package bench is credsync's benchmark harness. It builds the real gateway binary, runs it as a
// separate process against the fake Felt, Databrain and RiverGen servers (served by the harness
// on loopback with a configurable per-request latency), and measures what an operator would judge
// credsync by:
//
//  1. one rotation's wall time for N targets against its lower bound
//     ceil(N / max_concurrency) × chain × latency, with verification on and off;
//  2. the gateway's CPU time per vendor call (utime+stime from /proc/<pid>/stat) and its peak RSS
//     (VmHWM from /proc/<pid>/status);
//  3. the throughput of POST /v1/rotations with concurrent callers, on SQLite and PostgreSQL;
//  4. side by side, the generated bash script an operator would otherwise write (curl, one call
//     after another) for the same targets and latency.
//
// Run renders a Markdown report. The command bench/cmd/credsync-bench is the CLI; `go test
// ./bench/` runs only the smoke mode (Quick), which checks that the harness works, never how fast.
package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options select what a run measures.
type Options struct {
	// Ns are the target counts of the single-rotation runs (empty: none).
	Ns []int
	// Latencies are the fake vendors' per-request latencies.
	Latencies []time.Duration
	// Verify lists the verification modes to run (true: verify on).
	Verify []bool
	// Concurrency is the RiverGen platform's max_concurrency in the single-rotation runs.
	Concurrency int
	// Repeat runs each single rotation with N <= RepeatUpTo this many times and reports the median.
	Repeat     int
	RepeatUpTo int
	// PollInterval is the Felt targets' poll_interval in the three-vendor run.
	PollInterval time.Duration

	// Throughput runs the concurrent POST /v1/rotations measurement on each of Stores.
	Throughput bool
	Stores     []string // "sqlite", "postgres"
	Count      int      // rotations submitted per store
	Callers    int      // concurrent callers
	Sources    int      // sources in the throughput config
	PerSource  int      // RiverGen targets per source
	TPConc     int      // RiverGen max_concurrency in the throughput config
	// TPWait makes each caller wait for its own rotation (?wait) on sources of its own, so
	// nothing is superseded and every rotation is real work: completed/s, not accepted/s.
	TPWait bool
	// PGDurable runs the throughput PostgreSQL with fsync and synchronous commit on.
	PGDurable bool

	// Sequential runs the generated curl script beside each single-rotation run, for N up to
	// SeqMaxSlow at a latency > 0 and up to SeqMaxFast at latency 0.
	Sequential bool
	SeqMaxSlow int
	SeqMaxFast int

	// Profile records the gateway with perf during the largest single rotation at latency 0 (first
	// verify mode) and at the largest latency (last verify mode), and during the throughput runs,
	// and adds the top of each profile to the report; with Views also while the gateway answers
	// GET /v1/sources and the status page of the big rotation.
	Profile bool

	// Views runs issue 14's measurements on each of Stores: the views of one finished rotation
	// of ViewsTargets targets in one source, and History finished rotations over HistorySources
	// sources of HistoryPerSource RiverGen targets against an empty store (ViewsSamples
	// requests per endpoint and store, interleaved).
	Views            bool
	ViewsTargets     int
	History          int
	HistorySources   int
	HistoryPerSource int
	ViewsSamples     int

	// InProc, when > 0, runs one rotation of InProc RiverGen targets (verify on, at the largest
	// latency) in this process through gateway.New and snapshots its memory half way.
	InProc int

	// Quick is the smoke mode: it keeps N <= 10, tiny counts and one repeat.
	Quick bool
	// RunTimeout bounds each single rotation and each throughput run.
	RunTimeout time.Duration
	// LogDir, when set, keeps each gateway's log there (named after its run) instead of deleting it.
	LogDir string
	// Binary is a prebuilt gateway binary; empty builds ./cmd/credsync into a temp dir.
	Binary string
	// Command is the command line that produced the run, shown in the report.
	Command string
	// Progress receives one line per measurement (nil: discarded).
	Progress io.Writer
}

// Defaults are the full `make bench` run (without -throughput/-sequential/-profile).
func Defaults() Options {
	return Options{
		Ns:               []int{1, 3, 10, 100, 1000, 10000},
		Latencies:        []time.Duration{0, 50 * time.Millisecond},
		Verify:           []bool{true, false},
		Concurrency:      64,
		Repeat:           3,
		RepeatUpTo:       100,
		PollInterval:     10 * time.Millisecond,
		Stores:           []string{"sqlite", "postgres"},
		Count:            2000,
		Callers:          64,
		Sources:          100,
		PerSource:        3,
		TPConc:           64,
		ViewsTargets:     100000,
		History:          1000000,
		HistorySources:   10000,
		HistoryPerSource: 3,
		ViewsSamples:     100,
		SeqMaxSlow:       100,
		SeqMaxFast:       1000,
		RunTimeout:       4 * time.Minute,
		Command:          "go run ./bench/cmd/credsync-bench",
	}
}

// ApplyQuick turns o into the smoke mode: N <= 10, at most two latencies of at most 20 ms, one
// repeat, a few dozen rotations for the throughput.
func (o *Options) ApplyQuick() {
	o.Quick = true
	var ns []int
	for _, n := range o.Ns {
		if n <= 10 {
			ns = append(ns, n)
		}
	}
	o.Ns = ns
	var lats []time.Duration
	for _, l := range o.Latencies {
		if l > 20*time.Millisecond {
			l = 20 * time.Millisecond
		}
		if !slices.Contains(lats, l) {
			lats = append(lats, l)
		}
	}
	o.Latencies = lats
	o.Repeat = 1
	o.Count = min(o.Count, 40)
	o.Callers = min(o.Callers, 8)
	o.Sources = min(o.Sources, 10)
	o.RunTimeout = min(o.RunTimeout, time.Minute)
	o.Profile = false
	o.InProc = min(o.InProc, 10)
	o.ViewsTargets = min(o.ViewsTargets, 1000)
	o.History = min(o.History, 2000)
	o.HistorySources = min(o.HistorySources, 100)
	o.ViewsSamples = min(o.ViewsSamples, 20)
}

// Validate checks the options make sense.
func (o *Options) Validate() error {
	for _, n := range o.Ns {
		if n < 1 || n > 100000 {
			return fmt.Errorf("-n: %d targets: give 1 to 100000", n)
		}
	}
	for _, l := range o.Latencies {
		if l < 0 || l > 10*time.Second {
			return fmt.Errorf("-latency: %s: give 0 to 10s", l)
		}
	}
	if len(o.Ns) > 0 && (len(o.Latencies) == 0 || len(o.Verify) == 0) {
		return fmt.Errorf("give at least one -latency and a -verify mode")
	}
	if o.Concurrency < 1 || o.Concurrency > 10000 {
		return fmt.Errorf("-concurrency %d: give 1 to 10000", o.Concurrency)
	}
	if o.Repeat < 1 {
		o.Repeat = 1
	}
	if o.PollInterval <= 0 {
		return fmt.Errorf("-poll-interval must be positive")
	}
	if o.Throughput {
		if o.Count < 1 || o.Callers < 1 || o.Sources < 1 || o.PerSource < 1 || o.TPConc < 1 {
			return fmt.Errorf("-count, -callers, -sources, -per-source and -tp-concurrency must be positive")
		}
		if o.TPWait && o.Sources < o.Callers {
			return fmt.Errorf("-tp-wait: each caller needs sources of its own: give -sources (%d) at least -callers (%d)", o.Sources, o.Callers)
		}
		for _, s := range o.Stores {
			if s != "sqlite" && s != "postgres" {
				return fmt.Errorf("-stores: %q: sqlite or postgres", s)
			}
		}
	}
	if o.Views {
		if o.ViewsTargets < 1 || o.ViewsTargets > 1000000 {
			return fmt.Errorf("-views-targets %d: give 1 to 1000000", o.ViewsTargets)
		}
		if o.History < 0 || o.HistorySources < 1 || o.HistoryPerSource < 1 || o.ViewsSamples < 1 {
			return fmt.Errorf("-history must be 0 or more; -history-sources, -history-per-source and -views-samples positive")
		}
		for _, s := range o.Stores {
			if s != "sqlite" && s != "postgres" {
				return fmt.Errorf("-stores: %q: sqlite or postgres", s)
			}
		}
	}
	if o.InProc < 0 || o.InProc > 100000 {
		return fmt.Errorf("-inproc %d: give 0 to 100000", o.InProc)
	}
	if o.InProc > 0 && len(o.Latencies) == 0 {
		return fmt.Errorf("-inproc needs a -latency")
	}
	if o.RunTimeout <= 0 {
		return fmt.Errorf("-timeout must be positive")
	}
	return nil
}

// ParseInts parses "1,3,10" (or "none" / "" for an empty list); "10k" and "10,000" style
// thousands are not accepted, write 10000.
func ParseInts(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseDurations parses "0,50ms"; a bare number is milliseconds.
func ParseDurations(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, time.Duration(n)*time.Millisecond)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (e.g. 50ms)", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// ParseVerify parses on, off or both.
func ParseVerify(s string) ([]bool, error) {
	switch strings.TrimSpace(s) {
	case "on":
		return []bool{true}, nil
	case "off":
		return []bool{false}, nil
	case "both":
		return []bool{true, false}, nil
	}
	return nil, fmt.Errorf("%q: give on, off or both", s)
}

// ParseStores parses "sqlite,postgres".
func ParseStores(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// fmtLatency prints a latency as the -latency flag takes it.
func fmtLatency(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}
