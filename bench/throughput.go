package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/pgtest"
)

// ThroughputResult is Count rotations POSTed (without ?wait) by Callers concurrent callers.
type ThroughputResult struct {
	Store                              string
	Count, Callers, Sources, PerSource int
	Concurrency                        int // RiverGen max_concurrency

	// Wait: each caller waited for its own rotation on sources of its own (Options.TPWait).
	Wait bool
	// Durable: PostgreSQL ran with fsync on (Options.PGDurable).
	Durable bool

	Accepted int // 202 answers (with Wait: 200 answers, the rotation finished)
	// Completed are the answers (with Wait) whose rotation ended succeeded on every target.
	Completed int
	Refused   map[int]int // other answers by status (0: transport error)
	Submit    time.Duration
	P50, P99  time.Duration
	Max       time.Duration
	// Drain is from the first POST until no rotation is pending or running.
	Drain    time.Duration
	Outcomes map[string]int // rotations by final status
	// Slowest is the longest rotation, from its created_at to its finished_at.
	Slowest time.Duration

	Calls Counts
	// Ops are the gateway's store and vendor histograms over the run (GET /metrics).
	Ops        opStats
	CPU        time.Duration // gateway, from the first POST to the end of the drain
	HarnessCPU time.Duration
	DBCPU      time.Duration // the PostgreSQL server's processes (0 for SQLite: it is in the gateway)
	RSSPeak    int64
	Err        string
	Profile    *Profile
	Command    string
}

// CompletedPerSecond is rotations that ended succeeded, per second of the submit phase (with
// Wait, every caller's answer came when its rotation had finished).
func (t *ThroughputResult) CompletedPerSecond() float64 {
	if t.Submit <= 0 {
		return 0
	}
	return float64(t.Completed) / t.Submit.Seconds()
}

// PerSecond is rotations accepted per second of the submit phase.
func (t *ThroughputResult) PerSecond() float64 {
	if t.Submit <= 0 {
		return 0
	}
	return float64(t.Accepted) / t.Submit.Seconds()
}

// CPUBusy is the share of the machine's CPUs the gateway, the database and the harness used
// together from the first POST to the end of the drain.
func (t *ThroughputResult) CPUBusy(cpus int) float64 {
	if t.Drain <= 0 || cpus <= 0 {
		return 0
	}
	return float64(t.CPU+t.DBCPU+t.HarnessCPU) / float64(t.Drain*time.Duration(cpus))
}

// CPUPerCall is the gateway CPU per vendor call, API handling included.
func (t *ThroughputResult) CPUPerCall() time.Duration {
	if n := t.Calls.Total(); n > 0 {
		return t.CPU / time.Duration(n)
	}
	return 0
}

// throughputTimeout is the platform timeout of the throughput config: generous for zero-latency
// fakes, and short enough that a target claim left behind (it lasts one timeout plus a second)
// delays the drain by seconds, not a minute.
const throughputTimeout = 10 * time.Second

// throughputSources are Sources sources of PerSource RiverGen targets each (verify on).
func throughputSources(o *Options) []src {
	var out []src
	for i := 0; i < o.Sources; i++ {
		out = append(out, riverGenSource(fmt.Sprintf("tp-%03d", i+1), i*o.PerSource+1, o.PerSource, true))
	}
	return out
}

func throughputCommand(o *Options, store string) string {
	c := fmt.Sprintf("go run ./bench/cmd/credsync-bench -n none -throughput -stores %s -count %d -callers %d -sources %d -per-source %d",
		store, o.Count, o.Callers, o.Sources, o.PerSource)
	if o.TPWait {
		c += " -tp-wait"
	}
	if o.PGDurable && store == "postgres" {
		c += " -pg-fsync"
	}
	return c
}

// callerBodies are the bodies caller c sends, in order. Without wait, rotations take the
// sources in turn, whoever sends them. With wait, caller c owns the sources c, c+callers, ...
// and sends one after another, so no two rotations of one source ever run together.
func callerBodies(o *Options, sources []src) [][][]byte {
	out := make([][][]byte, o.Callers)
	for i := 0; i < o.Count; i++ {
		c := i % o.Callers
		name := sources[i%len(sources)].Name
		if o.TPWait {
			k := i / o.Callers // the caller's k-th rotation
			owned := (len(sources) - c + o.Callers - 1) / o.Callers
			name = sources[c+(k%max(owned, 1))*o.Callers].Name
		}
		out[c] = append(out[c], rotationBody(name))
	}
	return out
}

// measureThroughput runs one throughput measurement on st (a postgres DSN is made by the caller).
func (rr *rotationRun) measureThroughput(ctx context.Context, st store, profile bool) *ThroughputResult {
	o := rr.o
	res := &ThroughputResult{Store: st.Driver, Wait: o.TPWait, Durable: st.Durable, Count: o.Count, Callers: o.Callers, Sources: o.Sources, PerSource: o.PerSource,
		Concurrency: o.TPConc, Refused: map[int]int{}, Outcomes: map[string]int{}, Command: throughputCommand(o, st.Driver)}
	rr.vendors.seedRiverGen(o.Sources * o.PerSource)
	rr.vendors.setLatency(0)
	defer rr.vendors.forget()
	sources := throughputSources(o)
	g, err := startGateway(ctx, rr.bin, rr.tmp, configSpec{Store: st, Concurrency: o.TPConc, Sources: sources, Poll: o.PollInterval.String(), Timeout: throughputTimeout},
		rr.vendors, logName(o, "throughput-"+st.Driver))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer g.stop()
	ctx, cancel := context.WithTimeout(ctx, o.RunTimeout)
	defer cancel()

	var perf *perfRecorder
	if profile {
		if perf, err = startPerf(ctx, g.pid(), rr.tmp); err != nil {
			res.Profile = &Profile{Title: "throughput on " + st.Driver, Err: err.Error()}
		}
		defer perf.discard() // a run that fails leaves no perf behind
	}
	cpu0, err := CPUTime(g.pid())
	if err != nil {
		res.Err = err.Error()
		return res
	}
	self0, _ := CPUTime(os.Getpid())
	db0 := ChildCPU(os.Getpid(), "postgres")
	calls0 := rr.vendors.snapshot()
	ops0, opsErr := g.scrapeMetrics(ctx)

	// Bodies are made before the clock starts: the callers only send.
	bodies := callerBodies(o, sources)
	path := "/v1/rotations"
	if o.TPWait {
		path += "?wait=" + o.RunTimeout.String()
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		codes = map[int]int{}
		done  int
	)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < o.Callers; c++ {
		wg.Add(1)
		go func(mine [][]byte) {
			defer wg.Done()
			var my []time.Duration
			myCodes, myDone := map[int]int{}, 0
			for _, body := range mine {
				t0 := time.Now()
				st, answer, err := g.call(ctx, http.MethodPost, path, body)
				my = append(my, time.Since(t0))
				if err != nil {
					st = 0
				}
				myCodes[st]++
				if o.TPWait && st == http.StatusOK && finishedSucceeded(answer) {
					myDone++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, my...)
			for k, v := range myCodes {
				codes[k] += v
			}
			done += myDone
		}(bodies[c])
	}
	wg.Wait()
	res.Submit = time.Since(start)
	ok := http.StatusAccepted
	if o.TPWait {
		ok = http.StatusOK
	}
	for c, n := range codes {
		if c == ok {
			res.Accepted += n
		} else {
			res.Refused[c] += n
		}
	}
	res.Completed = done
	s := slices.Clone(lat)
	slices.Sort(s)
	res.P50, res.P99, res.Max = percentile(s, 0.50), percentile(s, 0.99), s[len(s)-1]

	if err := g.drain(ctx); err != nil {
		res.Err = err.Error()
		res.Drain = time.Since(start)
		return res
	}
	res.Drain = time.Since(start)
	cpu1, err := CPUTime(g.pid())
	if err != nil {
		res.Err = err.Error()
		return res
	}
	self1, _ := CPUTime(os.Getpid())
	res.CPU, res.HarnessCPU, res.DBCPU = cpu1-cpu0, self1-self0, ChildCPU(os.Getpid(), "postgres")-db0
	res.Calls = rr.vendors.snapshot().Sub(calls0)
	if ops1, err := g.scrapeMetrics(ctx); err == nil && opsErr == nil {
		res.Ops = ops1.sub(ops0)
	}
	if _, hwm, err := MemStatus(g.pid()); err == nil {
		res.RSSPeak = hwm
	}
	if perf != nil {
		res.Profile = perf.stop(ctx, fmt.Sprintf("throughput on %s: %d rotations, %d callers", st.Driver, o.Count, o.Callers))
	}
	if res.Outcomes, res.Slowest, err = g.outcomes(ctx); err != nil {
		res.Err = err.Error()
	}
	return res
}

// finishedSucceeded says whether a rotation answer is a rotation that ended succeeded.
func finishedSucceeded(answer []byte) bool {
	var v struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(answer, &v) == nil && v.Status == "succeeded"
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// drain waits until no rotation is pending or running.
func (g *gatewayProc) drain(ctx context.Context) error {
	var stuck *rotationView
	for {
		busy := false
		for _, status := range []string{"pending", "running"} {
			st, b, err := g.call(ctx, http.MethodGet, "/v1/rotations?limit=1&status="+status, nil)
			if err != nil {
				return fmt.Errorf("drain: %w", err)
			}
			if st != http.StatusOK {
				return fmt.Errorf("drain: GET /v1/rotations?status=%s: HTTP %d: %s", status, st, snippet(b))
			}
			var page struct {
				Rotations []rotationView `json:"rotations"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return fmt.Errorf("drain: decode: %w", err)
			}
			if len(page.Rotations) > 0 {
				busy, stuck = true, &page.Rotations[0]
			}
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			_, _, other := stuck.tally()
			return fmt.Errorf("drain: rotations still unfinished, e.g. %s (%s, targets %s): %w", stuck.ID, stuck.Status, fmtOther(other), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// outcomes counts every rotation by status, paging through GET /v1/rotations, and returns the
// longest rotation's duration.
func (g *gatewayProc) outcomes(ctx context.Context) (map[string]int, time.Duration, error) {
	out := map[string]int{}
	var slowest time.Duration
	before := ""
	for {
		path := "/v1/rotations?limit=1000"
		if before != "" {
			path += "&before=" + url.QueryEscape(before)
		}
		st, b, err := g.call(ctx, http.MethodGet, path, nil)
		if err != nil {
			return out, slowest, fmt.Errorf("list rotations: %w", err)
		}
		if st != http.StatusOK {
			return out, slowest, fmt.Errorf("list rotations: HTTP %d: %s", st, snippet(b))
		}
		var page struct {
			Rotations  []rotationView `json:"rotations"`
			NextBefore string         `json:"next_before"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return out, slowest, fmt.Errorf("list rotations: decode: %w", err)
		}
		for _, r := range page.Rotations {
			if r.FinishedAt != nil {
				slowest = max(slowest, r.FinishedAt.Sub(r.CreatedAt))
			}
			k := r.Status
			if r.Status != "succeeded" {
				// say why: the targets' statuses (superseded is the expected one under load)
				_, _, other := r.tally()
				for s := range other {
					k = r.Status + " (" + s + ")"
					break
				}
			}
			out[k]++
		}
		if page.NextBefore == "" || len(page.Rotations) == 0 {
			return out, slowest, nil
		}
		before = page.NextBefore
	}
}

// startPostgres starts a throwaway PostgreSQL (internal/pgtest) and returns a store on it.
func startPostgres(durable bool) (store, func(), error) {
	pg, err := pgtest.StartWith(pgtest.Options{Durable: durable})
	if err != nil {
		return store{}, nil, fmt.Errorf("start postgres: %w", err)
	}
	return store{Driver: "postgres", DSN: pg.DSN("postgres"), Durable: durable}, func() { _ = pg.Stop() }, nil
}
