package bench

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/internal/demo"
)

// Call kinds the fakes count: "<vendor> <METHOD>".
const (
	callRiverGenPatch = rivergen.Vendor + " PATCH" // credentials update
	callRiverGenTest  = rivergen.Vendor + " POST"  // Test Connection
	callFeltUpdate    = felt.Vendor + " POST"      // Update Source
	callFeltPoll      = felt.Vendor + " GET"       // Show Source (the baseline read and verification polls)
	callFeltSync      = felt.Vendor + " sync"      // Sync Source (when a sync was running at the baseline read)
	callDatabrainPut  = databrain.Vendor + " PUT"  // PUT /api/v2/datasource
)

// Counts are vendor calls by kind ("rivergen PATCH", "felt GET", ...).
type Counts map[string]int

// Total is the number of calls of every kind.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Sub returns c - base per kind.
func (c Counts) Sub(base Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if d := v - base[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// vendors are the three fake vendors on loopback, with a per-request latency and call counts.
type vendors struct {
	*demo.Fakes

	mu     sync.Mutex
	counts Counts
	seeded int // RiverGen data sources 1..seeded exist
}

// startVendors starts the fakes (seeded as the demo seeds them: Felt src_pg, Databrain
// production-postgres, RiverGen 1 and 2) and wraps each to count its calls.
func startVendors() (*vendors, error) {
	v := &vendors{counts: Counts{}, seeded: 2}
	f, err := demo.StartFakesWith(func(vendor string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v.mu.Lock()
			kind := vendor + " " + r.Method
			if vendor == felt.Vendor && strings.HasSuffix(r.URL.Path, "/sync") {
				kind = callFeltSync
			}
			v.counts[kind]++
			v.mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("start fake vendors: %w", err)
	}
	v.Fakes = f
	return v, nil
}

// seedRiverGen makes RiverGen data sources 1..n exist.
func (v *vendors) seedRiverGen(n int) {
	for id := v.seeded + 1; id <= n; id++ {
		v.RiverGen.AddDataSource(id)
	}
	v.seeded = max(v.seeded, n)
}

// setLatency makes every vendor answer each request after lat (0: at once). The fault hook
// sleeps and then lets the fake answer normally.
func (v *vendors) setLatency(lat time.Duration) {
	var fault func(http.ResponseWriter, *http.Request) bool
	if lat > 0 {
		fault = func(http.ResponseWriter, *http.Request) bool { time.Sleep(lat); return false }
	}
	v.Felt.SetFault(fault)
	v.Databrain.SetFault(fault)
	v.RiverGen.SetFault(fault)
}

// snapshot returns the calls counted so far.
func (v *vendors) snapshot() Counts {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.counts)
}

// forget drops the requests the fakes recorded (they keep every body), so that long runs do not
// grow the harness.
func (v *vendors) forget() {
	v.Felt.Reset()
	v.Databrain.Reset()
	v.RiverGen.Reset()
}
