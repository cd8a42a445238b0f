package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The gateway's histograms the harness reads from GET /metrics.
const (
	storeHistogram  = "credsync_store_operation_duration_seconds"
	vendorHistogram = "credsync_vendor_request_duration_seconds"
)

// OpStat is one operation's count and total time over a run (a histogram's _count and _sum).
type OpStat struct {
	Op    string
	Count float64
	Sum   time.Duration
}

// Mean is the mean duration of one operation.
func (s OpStat) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return time.Duration(float64(s.Sum) / s.Count)
}

// opStats are histograms by operation: "store UpdateTarget", "vendor update", ...
type opStats map[string]OpStat

// sub returns s - base per operation.
func (s opStats) sub(base opStats) opStats {
	out := opStats{}
	for k, v := range s {
		b := base[k]
		if d := v.Count - b.Count; d > 0 {
			out[k] = OpStat{Op: v.Op, Count: d, Sum: v.Sum - b.Sum}
		}
	}
	return out
}

// list returns the operations of one kind ("store" or "vendor"), the most time first.
func (s opStats) list(kind string) []OpStat {
	var out []OpStat
	for k, v := range s {
		if strings.HasPrefix(k, kind+" ") {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sum > out[j].Sum })
	return out
}

// total is the time spent in the operations of one kind.
func (s opStats) total(kind string) time.Duration {
	var t time.Duration
	for _, v := range s.list(kind) {
		t += v.Sum
	}
	return t
}

// scrapeMetrics reads the store and vendor histograms from the gateway's /metrics.
func (g *gatewayProc) scrapeMetrics(ctx context.Context) (opStats, error) {
	st, b, err := g.call(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", st)
	}
	return parseMetrics(string(b))
}

// parseMetrics sums the _sum and _count series of the two histograms by their op label (store
// operations over results; vendor calls over vendors, platforms and status classes).
func parseMetrics(text string) (opStats, error) {
	out := opStats{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var kind string
		switch {
		case strings.HasPrefix(line, storeHistogram+"_"):
			kind, line = "store", strings.TrimPrefix(line, storeHistogram+"_")
		case strings.HasPrefix(line, vendorHistogram+"_"):
			kind, line = "vendor", strings.TrimPrefix(line, vendorHistogram+"_")
		default:
			continue
		}
		series, rest, ok := strings.Cut(line, "{")
		if !ok || (series != "sum" && series != "count") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("parse /metrics: %q", line)
		}
		op := label(labels, "op")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("parse /metrics: %q: %w", line, err)
		}
		k := kind + " " + op
		s := out[k]
		s.Op = op
		if series == "sum" {
			s.Sum += time.Duration(v * float64(time.Second))
		} else {
			s.Count += v
		}
		out[k] = s
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return out, nil
}

// label returns the value of name in `a="x",b="y"`.
func label(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
