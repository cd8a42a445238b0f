package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Issue 14, "Scale over time": views cost what they show, and history does not slow the gateway.

// Goals of issue 14.
const (
	targetViewTime     = 500 * time.Millisecond
	targetHistoryRatio = 1.5
)

// ViewCall is one view asked Samples times of one gateway: the last answer's status and size,
// the median and the slowest time.
type ViewCall struct {
	Name    string
	Code    int
	Bytes   int
	Median  time.Duration
	Max     time.Duration
	Samples int
	Err     string
}

// Ok says the view answered 200 every time.
func (v *ViewCall) Ok() bool { return v.Err == "" && v.Code == http.StatusOK }

// LatencyStats are the times of one endpoint on one gateway.
type LatencyStats struct {
	N        int
	P50, P99 time.Duration
	Max      time.Duration
	Bytes    int    // the last answer's size
	Errors   int    // answers that were not the expected status, or transport errors
	FirstErr string // the first of them
}

// EndpointCompare is one endpoint on the empty store, on the store with one finished rotation
// per source (Latest) and on the store with history.
type EndpointCompare struct {
	Name                   string
	Empty, Latest, History LatencyStats
}

// RatioLatest is the history store's p99 over the one-rotation-per-source store's: what the
// history behind the last outcomes costs.
func (e *EndpointCompare) RatioLatest() float64 {
	if e.Latest.P99 <= 0 {
		return 0
	}
	return float64(e.History.P99) / float64(e.Latest.P99)
}

// Ratio is the history store's p99 over the empty store's.
func (e *EndpointCompare) Ratio() float64 {
	if e.Empty.P99 <= 0 {
		return 0
	}
	return float64(e.History.P99) / float64(e.Empty.P99)
}

// Ok says both sides answered every request as expected.
func (e *EndpointCompare) Ok() bool {
	return e.Empty.N > 0 && e.History.N > 0 && e.Empty.Errors == 0 && e.History.Errors == 0 && e.Latest.Errors == 0
}

// ViewsResult is the views and history measurement on one store.
type ViewsResult struct {
	Store string

	// One source of Targets targets, one finished rotation of them.
	Targets   int
	SeedViews time.Duration
	Views     []*ViewCall // GET /v1/sources, GET / (status page), GET /v1/rotations/{id}
	// RotationTargets is how many targets the default GET /v1/rotations/{id} answer listed, and
	// RotationNext whether it gave a cursor to the next page.
	RotationTargets int
	RotationNext    bool
	ViewsErr        string
	// Profiles are perf profiles of the gateway while it answered the big views (-profile).
	Profiles []*Profile

	// History finished rotations over HistorySources sources of PerSource targets.
	History, HistorySources, PerSource int
	Samples                            int
	SeedHistory                        time.Duration
	EmptyBytes, HistoryBytes           int64
	Endpoints                          []*EndpointCompare
	HistoryErr                         string

	Command string
}

// BytesPerRotation is the store's growth per finished rotation of history.
func (v *ViewsResult) BytesPerRotation() float64 {
	if v.History <= 0 || v.HistoryBytes <= 0 {
		return 0
	}
	return float64(v.HistoryBytes-v.EmptyBytes) / float64(v.History)
}

// View returns the named view (nil when not measured).
func (v *ViewsResult) View(name string) *ViewCall {
	for _, c := range v.Views {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Names of the views and endpoints.
const (
	viewSources  = "GET /v1/sources"
	viewStatus   = "GET / (status page, status token)"
	viewRotation = "GET /v1/rotations/{id}"
	epSources    = "GET /v1/sources"
	epList       = "GET /v1/rotations?limit=50"
	epGet        = "GET /v1/rotations/{id}"
	epPost       = "POST /v1/rotations?wait"
)

func viewsCommand(o *Options, store string) string {
	return fmt.Sprintf("go run ./bench/cmd/credsync-bench -n none -views -stores %s -views-targets %d -history %d -history-sources %d -history-per-source %d -views-samples %d",
		store, o.ViewsTargets, o.History, o.HistorySources, o.HistoryPerSource, o.ViewsSamples)
}

// viewRepeats is how many times each view of the big rotation is asked.
func viewRepeats(o *Options) int {
	if o.Quick {
		return 2
	}
	return 5
}

// measureViews runs both parts on one store; newStore makes each store the parts need.
func (rr *rotationRun) measureViews(ctx context.Context, driver string, newStore func(name string) (store, error)) *ViewsResult {
	o := rr.o
	res := &ViewsResult{Store: driver, Targets: o.ViewsTargets, History: o.History, HistorySources: o.HistorySources,
		PerSource: o.HistoryPerSource, Samples: o.ViewsSamples, Command: viewsCommand(o, driver)}
	dir, err := os.MkdirTemp(rr.tmp, "views-")
	if err != nil {
		res.ViewsErr, res.HistoryErr = err.Error(), err.Error()
		return res
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := rr.bigRotationViews(ctx, dir, newStore, res); err != nil {
		res.ViewsErr = err.Error()
	}
	fmt.Fprintln(rr.progress(), res.viewsLine())
	if err := rr.historyCompare(ctx, dir, newStore, res); err != nil {
		res.HistoryErr = err.Error()
	}
	fmt.Fprintln(rr.progress(), res.historyLine())
	return res
}

func (rr *rotationRun) progress() io.Writer {
	if rr.o.Progress == nil {
		return io.Discard
	}
	return rr.o.Progress
}

// seeded makes a store named name, seeds plan into it and returns it with its SQLite path.
func seeded(ctx context.Context, dir, name string, newStore func(string) (store, error), p *seedPlan) (store, string, time.Duration, error) {
	st, err := newStore(name)
	if err != nil {
		return st, "", 0, err
	}
	path := filepath.Join(dir, name+".db")
	if st.Driver == "sqlite" {
		st.DSN = path
	}
	start := time.Now()
	if err := seedStore(ctx, st, path, p); err != nil {
		return st, path, 0, err
	}
	return st, path, time.Since(start), nil
}

// bigRotationViews is part (a): one source of Targets targets with one finished rotation; the
// views are asked viewRepeats times each.
func (rr *rotationRun) bigRotationViews(ctx context.Context, dir string, newStore func(string) (store, error), res *ViewsResult) error {
	o := rr.o
	source := riverGenSource("big", 1, o.ViewsTargets, true)
	plan := &seedPlan{Sources: []src{source}, Rotations: 1, Start: time.Now().Add(-time.Hour)}
	st, _, took, err := seeded(ctx, dir, "big", newStore, plan)
	if err != nil {
		return err
	}
	res.SeedViews = took
	g, err := startGateway(ctx, rr.bin, dir, configSpec{Store: st, Concurrency: o.Concurrency, Sources: []src{source},
		Poll: o.PollInterval.String(), StatusToken: true}, rr.vendors, logName(o, "views-"+st.Driver))
	if err != nil {
		return err
	}
	defer g.stop()
	ctx, cancel := context.WithTimeout(ctx, o.RunTimeout)
	defer cancel()
	id := plan.rotation(0).ID
	for _, v := range []struct {
		name, path string
		token      string
	}{{viewSources, "/v1/sources", g.token}, {viewStatus, "/", g.statusToken}, {viewRotation, "/v1/rotations/" + id, g.token}} {
		c := &ViewCall{Name: v.name, Samples: viewRepeats(o)}
		var times []time.Duration
		var body []byte
		var perf *perfRecorder
		if o.Profile && v.name != viewRotation {
			if perf, err = startPerf(ctx, g.pid(), dir); err != nil {
				res.Profiles = append(res.Profiles, &Profile{Title: v.name + " on " + st.Driver, Err: err.Error()})
			}
		}
		for i := 0; i < c.Samples; i++ {
			t0 := time.Now()
			code, b, err := g.callAs(ctx, v.token, http.MethodGet, v.path, nil)
			times = append(times, time.Since(t0))
			if err != nil {
				c.Err = err.Error()
				break
			}
			c.Code, c.Bytes, body = code, len(b), b
			if code != http.StatusOK {
				c.Err = fmt.Sprintf("HTTP %d: %s", code, snippet(b))
				break
			}
		}
		if perf != nil {
			res.Profiles = append(res.Profiles, perf.stop(ctx, fmt.Sprintf("%s on %s: %d targets in one source, %d requests", v.name, st.Driver, o.ViewsTargets, c.Samples)))
		}
		slices.Sort(times)
		c.Median, c.Max = times[len(times)/2], times[len(times)-1]
		res.Views = append(res.Views, c)
		if v.name == viewRotation && c.Ok() {
			var page struct {
				Targets     []json.RawMessage `json:"targets"`
				NextTargets string            `json:"next_targets"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				return fmt.Errorf("GET /v1/rotations/%s: decode: %w", id, err)
			}
			res.RotationTargets, res.RotationNext = len(page.Targets), page.NextTargets != ""
		}
	}
	return nil
}

// historyCompare is part (b): gateways with the same config on an empty store, on a store with
// one finished rotation per source (the same last outcomes as the history, no history behind
// them) and on History seeded rotations, asked the same requests in turn.
func (rr *rotationRun) historyCompare(ctx context.Context, dir string, newStore func(string) (store, error), res *ViewsResult) error {
	o := rr.o
	var sources []src
	for i := 0; i < o.HistorySources; i++ {
		sources = append(sources, riverGenSource(fmt.Sprintf("h-%05d", i+1), i*o.HistoryPerSource+1, o.HistoryPerSource, true))
	}
	rr.vendors.seedRiverGen(o.HistorySources * o.HistoryPerSource)
	rr.vendors.setLatency(0)
	defer rr.vendors.forget()

	start := time.Now().Add(-time.Duration(o.History)*time.Millisecond - time.Hour)
	plans := []*seedPlan{{Sources: sources}, {Sources: sources, Rotations: min(len(sources), o.History), Start: start},
		{Sources: sources, Rotations: o.History, Start: start}}
	names := []string{"empty", "latest", "history"}
	stores := make([]store, len(plans))
	paths := make([]string, len(plans))
	for i, p := range plans {
		var took time.Duration
		var err error
		if stores[i], paths[i], took, err = seeded(ctx, dir, names[i], newStore, p); err != nil {
			return err
		}
		if i == 2 {
			res.SeedHistory = took
			fmt.Fprintf(rr.progress(), "views on %s: seeded %d rotations in %s\n", storeName(stores[i].Driver), o.History, took.Round(time.Millisecond))
		}
	}
	var err error
	if res.EmptyBytes, err = storeBytes(ctx, stores[0], paths[0]); err != nil {
		return err
	}
	if res.HistoryBytes, err = storeBytes(ctx, stores[2], paths[2]); err != nil {
		return err
	}

	gs := make([]*gatewayProc, len(stores))
	for i, st := range stores {
		g, err := startGateway(ctx, rr.bin, dir, configSpec{Store: st, Concurrency: o.TPConc, Sources: sources, Poll: o.PollInterval.String(), Timeout: throughputTimeout},
			rr.vendors, logName(o, "history-"+names[i]+"-"+st.Driver))
		if err != nil {
			return err
		}
		defer g.stop()
		gs[i] = g
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout(o))
	defer cancel()

	// Warm up each (connections, caches, the first plans) with 50 rotations, so that every
	// store's GET /v1/rotations?limit=50 answers a full page; the empty store's
	// GET /v1/rotations/{id} reads these (as a store seeded with none does), the others a random
	// seeded one.
	const warm = 50
	warmIDs := make([][]string, len(gs))
	for i := 0; i < warm; i++ {
		name := sources[len(sources)-1-i%len(sources)].Name
		for gi, g := range gs {
			r, err := postWait(ctx, g, name)
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			warmIDs[gi] = append(warmIDs[gi], r)
			if i >= 5 {
				continue
			}
			for _, path := range []string{"/v1/sources", "/v1/rotations?limit=50", "/v1/rotations/" + r} {
				if _, _, err := g.call(ctx, http.MethodGet, path, nil); err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
			}
		}
	}

	rng := rand.New(rand.NewPCG(1, 14))
	eps := []string{epSources, epList, epGet, epPost}
	type side struct {
		times []time.Duration
		stats LatencyStats
	}
	sides := map[string][]*side{}
	for _, n := range eps {
		for range gs {
			sides[n] = append(sides[n], &side{})
		}
	}
	for round := 0; round < o.ViewsSamples; round++ {
		for _, n := range eps {
			for step := range gs {
				gi := (step + round) % len(gs) // each store goes first in turn
				g := gs[gi]
				method, path, body := http.MethodGet, "", []byte(nil)
				switch n {
				case epSources:
					path = "/v1/sources"
				case epList:
					path = "/v1/rotations?limit=50"
				case epGet:
					path = "/v1/rotations/" + warmIDs[gi][round%warm]
					if p := plans[gi]; p.Rotations > 0 {
						path = "/v1/rotations/" + p.rotation(rng.IntN(p.Rotations)).ID
					}
				case epPost:
					method, path, body = http.MethodPost, "/v1/rotations?wait=1m", rotationBody(sources[round%len(sources)].Name)
				}
				t0 := time.Now()
				code, b, err := g.call(ctx, method, path, body)
				d := time.Since(t0)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("%s %s: HTTP %d: %s", method, path, code, snippet(b))
				}
				if err == nil && n == epPost {
					err = checkSucceeded(b)
				}
				sd := sides[n][gi]
				if err != nil {
					if sd.stats.Errors == 0 {
						sd.stats.FirstErr = err.Error()
					}
					sd.stats.Errors++
					if ctx.Err() != nil {
						return fmt.Errorf("history comparison: %w", ctx.Err())
					}
					continue
				}
				sd.times = append(sd.times, d)
				sd.stats.Bytes = len(b)
			}
		}
	}
	for _, n := range eps {
		var st [3]LatencyStats
		for gi, sd := range sides[n] {
			st[gi] = latencyStats(sd.times)
			st[gi].Errors, st[gi].FirstErr, st[gi].Bytes = sd.stats.Errors, sd.stats.FirstErr, sd.stats.Bytes
		}
		res.Endpoints = append(res.Endpoints, &EndpointCompare{Name: n, Empty: st[0], Latest: st[1], History: st[2]})
	}
	return nil
}

// historyTimeout bounds the history comparison: -timeout in the smoke mode, else at least 30
// minutes (100 rounds of GET /v1/sources over 30,000 targets on three stores take minutes).
func historyTimeout(o *Options) time.Duration {
	if o.Quick {
		return o.RunTimeout
	}
	return max(o.RunTimeout, 30*time.Minute)
}

// postWait posts a rotation of source with ?wait and returns its id once it succeeded.
func postWait(ctx context.Context, g *gatewayProc, source string) (string, error) {
	code, b, err := g.call(ctx, http.MethodPost, "/v1/rotations?wait=1m", rotationBody(source))
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("POST /v1/rotations?wait: HTTP %d: %s", code, snippet(b))
	}
	var r rotationView
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("POST /v1/rotations?wait: decode: %w", err)
	}
	if r.Status != "succeeded" {
		return "", fmt.Errorf("POST /v1/rotations?wait: rotation %s is %s", r.ID, r.Status)
	}
	return r.ID, nil
}

// checkSucceeded says whether a POST ?wait answer is a rotation that succeeded.
func checkSucceeded(b []byte) error {
	var r rotationView
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("POST /v1/rotations?wait: decode: %w", err)
	}
	if r.Status != "succeeded" {
		return fmt.Errorf("POST /v1/rotations?wait: rotation %s is %s", r.ID, r.Status)
	}
	return nil
}

// latencyStats sorts ds and takes its percentiles.
func latencyStats(ds []time.Duration) LatencyStats {
	s := slices.Clone(ds)
	slices.Sort(s)
	st := LatencyStats{N: len(s), P50: percentile(s, 0.50), P99: percentile(s, 0.99)}
	if len(s) > 0 {
		st.Max = s[len(s)-1]
	}
	return st
}

func (v *ViewsResult) viewsLine() string {
	s := fmt.Sprintf("views on %s, %d targets: ", storeName(v.Store), v.Targets)
	if v.ViewsErr != "" {
		return s + "ERROR " + firstLine(v.ViewsErr)
	}
	for _, c := range v.Views {
		s += fmt.Sprintf("%s %d %d bytes median %s max %s; ", c.Name, c.Code, c.Bytes, fmtDur(c.Median), fmtDur(c.Max))
	}
	return s + fmt.Sprintf("rotation answer lists %d targets", v.RotationTargets)
}

func (v *ViewsResult) historyLine() string {
	s := fmt.Sprintf("history on %s, %d rotations: ", storeName(v.Store), v.History)
	if v.HistoryErr != "" {
		return s + "ERROR " + firstLine(v.HistoryErr)
	}
	s += fmt.Sprintf("%.0f bytes/rotation; ", v.BytesPerRotation())
	for _, e := range v.Endpoints {
		s += fmt.Sprintf("%s p99 %s vs %s (%.2f×); ", e.Name, fmtDur(e.History.P99), fmtDur(e.Empty.P99), e.Ratio())
	}
	return s
}
