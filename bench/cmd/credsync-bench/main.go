// Command credsync-bench runs credsync's benchmark harness (package bench): the real gateway
// binary against fake vendors with a per-request latency. It prints a Markdown report on stdout
// and, with -out, writes it into a file (between the report markers when the file has them).
//
//	go run ./bench/cmd/credsync-bench -throughput -sequential -out BENCHMARKS.md   # make bench
//	go run ./bench/cmd/credsync-bench -quick -throughput -sequential               # make bench-smoke
//	go run ./bench/cmd/credsync-bench -n none -views                                # issue 14 alone
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/credsync/credsync/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	d := bench.Defaults()
	fs := flag.NewFlagSet("credsync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: credsync-bench [flags]\n\nRuns the real credsync binary against fake vendors and prints a Markdown report.\n\n")
		fs.PrintDefaults()
	}
	var (
		ns         = fs.String("n", "1,3,10,100,1000,10000", `target counts of the single-rotation runs ("none": skip them); N=3 also runs the three-vendor warehouse-pg source`)
		latency    = fs.String("latency", "0,50ms", "per-request latency of the fake vendors (a bare number is ms)")
		verify     = fs.String("verify", "both", "verification: on, off or both")
		conc       = fs.Int("concurrency", d.Concurrency, "RiverGen max_concurrency of the single-rotation runs")
		repeat     = fs.Int("repeat", d.Repeat, "rotations per row for N <= -repeat-up-to (the median is reported)")
		repeatUpTo = fs.Int("repeat-up-to", d.RepeatUpTo, "largest N that is repeated")
		poll       = fs.Duration("poll-interval", d.PollInterval, "Felt poll_interval in the warehouse-pg run")
		throughput = fs.Bool("throughput", false, "measure POST /v1/rotations throughput with concurrent callers")
		stores     = fs.String("stores", "sqlite,postgres", "stores of the throughput and -views runs")
		count      = fs.Int("count", d.Count, "rotations per throughput run")
		callers    = fs.Int("callers", d.Callers, "concurrent callers of the throughput runs")
		sources    = fs.Int("sources", d.Sources, "sources in the throughput config")
		perSource  = fs.Int("per-source", d.PerSource, "RiverGen targets per source in the throughput config")
		tpConc     = fs.Int("tp-concurrency", d.TPConc, "RiverGen max_concurrency of the throughput runs")
		tpWait     = fs.Bool("tp-wait", false, "throughput: each caller waits (?wait) for its own rotation on sources of its own; nothing is superseded")
		pgFsync    = fs.Bool("pg-fsync", false, "throughput: run PostgreSQL with fsync and synchronous commit on")
		sequential = fs.Bool("sequential", false, "also time the generated sequential curl script for the same targets")
		seqSlow    = fs.Int("seq-max-slow", d.SeqMaxSlow, "largest N the script runs at a latency > 0 (beyond: extrapolated)")
		seqFast    = fs.Int("seq-max-fast", d.SeqMaxFast, "largest N the script runs at latency 0 (beyond: extrapolated)")
		profile    = fs.Bool("profile", false, "record the gateway with perf in the largest rotation at latency 0 and at the largest latency, in the throughput runs, and while it answers the -views big views")
		inproc     = fs.Int("inproc", 0, "also run one rotation of this many targets in-process (gateway.New) at the largest -latency and snapshot its memory half way")
		views      = fs.Bool("views", false, "issue 14: the views of one big finished rotation, and history against an empty store, on each of -stores")
		viewsN     = fs.Int("views-targets", d.ViewsTargets, "targets of the one source whose finished rotation the views show")
		history    = fs.Int("history", d.History, "finished rotations seeded into the history store")
		histSrc    = fs.Int("history-sources", d.HistorySources, "sources of the history config (the rotations go to them in turn)")
		histPer    = fs.Int("history-per-source", d.HistoryPerSource, "RiverGen targets per source of the history config")
		viewsSamp  = fs.Int("views-samples", d.ViewsSamples, "requests per endpoint and store in the history comparison")
		quick      = fs.Bool("quick", false, "smoke mode: N <= 10, latencies <= 20ms, tiny counts; finishes in well under 30 s")
		timeout    = fs.Duration("timeout", d.RunTimeout, "bound of each rotation and each throughput run")
		logs       = fs.String("logs", "", "keep each gateway's log in this directory")
		bin        = fs.String("bin", "", "use this gateway binary instead of building ./cmd/credsync")
		out        = fs.String("out", "", "also write the report into this file (e.g. BENCHMARKS.md)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "credsync-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o := d
	var err error
	if o.Ns, err = bench.ParseInts(*ns); err != nil {
		return usage(stderr, "-n", err)
	}
	if o.Latencies, err = bench.ParseDurations(*latency); err != nil {
		return usage(stderr, "-latency", err)
	}
	if o.Verify, err = bench.ParseVerify(*verify); err != nil {
		return usage(stderr, "-verify", err)
	}
	o.Concurrency, o.Repeat, o.RepeatUpTo, o.PollInterval = *conc, *repeat, *repeatUpTo, *poll
	o.Throughput, o.Stores, o.Count, o.Callers, o.Sources, o.PerSource, o.TPConc = *throughput, bench.ParseStores(*stores), *count, *callers, *sources, *perSource, *tpConc
	o.TPWait, o.PGDurable = *tpWait, *pgFsync
	o.Sequential, o.SeqMaxSlow, o.SeqMaxFast = *sequential, *seqSlow, *seqFast
	o.Views, o.ViewsTargets, o.History, o.HistorySources, o.HistoryPerSource, o.ViewsSamples = *views, *viewsN, *history, *histSrc, *histPer, *viewsSamp
	o.Profile, o.RunTimeout, o.Binary, o.InProc, o.LogDir = *profile, *timeout, *bin, *inproc, *logs
	o.Command = "go run ./bench/cmd/credsync-bench " + strings.Join(args, " ")
	o.Command = strings.TrimSpace(o.Command)
	if *quick {
		o.ApplyQuick()
	}
	o.Progress = stderr
	if err := o.Validate(); err != nil {
		fmt.Fprintln(stderr, "credsync-bench:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "credsync-bench:", err)
		return 1
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := bench.WriteReport(*out, md); err != nil {
			fmt.Fprintln(stderr, "credsync-bench:", err)
			return 1
		}
		fmt.Fprintf(stderr, "report written to %s\n", *out)
	}
	fmt.Fprintf(stderr, "done in %s\n", time.Since(start).Round(time.Second))
	return 0
}

func usage(stderr io.Writer, flagName string, err error) int {
	fmt.Fprintf(stderr, "credsync-bench: %s: %v\n", flagName, err)
	return 2
}
