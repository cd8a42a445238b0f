package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/databrain/databrainfake"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
)

// The chaos test: hundreds of rotations over a few sources, vendors with random latency,
// 429s, 5xx and calls slower than the gateway's timeout, the gateway SIGKILLed and restarted at
// random moments (and, on PostgreSQL, two replicas, one of them SIGSTOPped past its lease). The
// vendors are the adapters' fakes (independent readings of the vendor documents) behind a
// middleware that applies each write after its latency whatever happens to the caller, and
// records when it applied it. The assertions are on that record, not on what credsync says.
//
// CHAOS_SEED reproduces a run; CHAOS_ROTATIONS changes its size.

const (
	chaosTimeout = time.Second // platforms' timeout: a vendor applies a write within it or never
	chaosSources = 3
)

// write is one credential write as a vendor saw it.
type write struct {
	target   string // vendor/object
	password string
	arrived  time.Time
	done     time.Time // applied, or answered without applying
	applied  bool
}

// vendorSim wraps the fakes: it injects faults and records writes by when they were applied.
type vendorSim struct {
	mu       sync.Mutex
	rng      *rand.Rand
	writes   []*write
	open     map[string]int // target → writes in progress
	overlaps []string
	counts   map[string]int
}

func newVendorSim(seed uint64) *vendorSim {
	return &vendorSim{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), open: map[string]int{}, counts: map[string]int{}}
}

func (v *vendorSim) float() float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.rng.Float64()
}

func (v *vendorSim) count(k string) {
	v.mu.Lock()
	v.counts[k]++
	v.mu.Unlock()
}

// writeOf says whether r is a credential write and to which target, with the password it sets.
func writeOf(vendor string, r *http.Request, body []byte) (target, password string, ok bool) {
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	str := func(m any, k string) string {
		if mm, ok := m.(map[string]any); ok {
			s, _ := mm[k].(string)
			return s
		}
		return ""
	}
	switch {
	case vendor == felt.Vendor && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/update") && !strings.Contains(r.URL.Path, "/credentials/"):
		return "felt/" + strings.Split(r.URL.Path, "/")[4], str(doc["connection"], "password"), true
	case vendor == databrain.Vendor && r.Method == http.MethodPut:
		return "databrain/" + str(doc["credentials"], "name"), str(doc["credentials"], "password"), true
	case vendor == rivergen.Vendor && r.Method == http.MethodPatch:
		return "rivergen/" + strings.Split(r.URL.Path, "/")[4], str(doc, "password"), true
	}
	return "", "", false
}

func (v *vendorSim) wrap(vendor string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		target, password, isWrite := writeOf(vendor, r, body)
		if !isWrite {
			// Reads (Felt's baseline and polls, RiverGen's Test Connection): a little latency and
			// now and then a 429, which must pause the platform for every caller.
			if v.float() < 0.03 {
				v.count("429 on a read")
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
				return
			}
			time.Sleep(time.Duration(v.float() * float64(20*time.Millisecond)))
			h.ServeHTTP(w, r)
			return
		}
		wr := &write{target: target, password: password, arrived: time.Now()}
		v.mu.Lock()
		v.writes = append(v.writes, wr)
		v.open[target]++
		if v.open[target] > 1 {
			v.overlaps = append(v.overlaps, fmt.Sprintf("%s: %d writes at once at %s", target, v.open[target], wr.arrived.Format("15:04:05.000")))
		}
		v.mu.Unlock()
		end := func(applied bool) {
			v.mu.Lock()
			wr.done, wr.applied = time.Now(), applied
			v.open[target]--
			v.mu.Unlock()
		}
		p := v.float()
		switch {
		case p < 0.08:
			v.count("429 on a write")
			end(false)
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"rate limited"}`, http.StatusTooManyRequests)
			return
		case p < 0.13:
			v.count("503 on a write")
			end(false)
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		// Latency: mostly short, sometimes longer than the gateway waits (it times out while the
		// vendor still applies the write), and now and then past the vendor's own timeout (the
		// write is dropped, never applied).
		var latency time.Duration
		switch q := v.float(); {
		case q < 0.75:
			latency = time.Duration(v.float() * float64(150*time.Millisecond))
		case q < 0.95:
			latency = 700*time.Millisecond + time.Duration(v.float()*float64(chaosTimeout-750*time.Millisecond))
		default:
			latency = chaosTimeout + 300*time.Millisecond
		}
		result := make(chan *httptest.ResponseRecorder, 1)
		go func() { // the vendor goes on whatever the caller does
			time.Sleep(min(latency, chaosTimeout-20*time.Millisecond))
			if latency >= chaosTimeout {
				v.count("write dropped by the vendor's own timeout")
				end(false)
				result <- nil
				return
			}
			rec := httptest.NewRecorder()
			detached := r.Clone(r.Context())
			detached.Body = io.NopCloser(bytes.NewReader(body))
			h.ServeHTTP(rec, detached)
			end(rec.Code >= 200 && rec.Code < 300)
			if rec.Code >= 200 && rec.Code < 300 {
				v.count("write applied")
			}
			result <- rec
		}()
		select {
		case rec := <-result:
			if rec == nil {
				http.Error(w, `{"error":"gateway timeout"}`, http.StatusGatewayTimeout)
				return
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case <-r.Context().Done():
			v.count("caller gone before the answer")
		}
	})
}

// chaosSetup is the fakes, the config and the replicas of one run.
type chaosSetup struct {
	t      *testing.T
	sim    *vendorSim
	felt   *feltfake.Server
	db     *databrainfake.Server
	rg     *rivergenfake.Server
	env    []string
	cfg    string
	addrs  []string
	mu     sync.Mutex
	procs  []*exec.Cmd
	logs   []*bytes.Buffer
	logMu  []*sync.Mutex
	kills  int
	stops  int
	starts int
}

func newChaos(t *testing.T, seed uint64, driver, dsn string, replicas int) *chaosSetup {
	c := &chaosSetup{t: t, sim: newVendorSim(seed)}
	tokens := map[string]string{}
	for _, v := range []string{felt.Vendor, databrain.Vendor, rivergen.Vendor} {
		tokens[v] = "tok-" + demo.NewKey()[:20] // random: no word of a message is a piece of it
	}
	c.felt, c.db, c.rg = feltfake.New(tokens[felt.Vendor]), databrainfake.New(tokens[databrain.Vendor]), rivergenfake.New(tokens[rivergen.Vendor])
	urls := map[string]string{}
	for v, h := range map[string]http.Handler{felt.Vendor: c.felt, databrain.Vendor: c.db, rivergen.Vendor: c.rg} {
		srv := httptest.NewServer(c.sim.wrap(v, h))
		t.Cleanup(srv.Close)
		urls[v] = srv.URL
	}
	var src strings.Builder
	for i := 1; i <= chaosSources; i++ {
		c.felt.AddSource(fmt.Sprintf("src%d", i), "postgresql")
		c.db.AddDatasource(fmt.Sprintf("ds%d", i), "postgres")
		c.rg.AddDataSource(i)
		fmt.Fprintf(&src, `  s%d:
    targets:
      - {platform: felt, name: felt, source_id: src%d, connection_type: postgresql, poll_interval: 100ms, verify_timeout: 5s}
      - {platform: databrain, name: ds%d, datasource_type: postgres, fields: {host: db.internal, port: 5432, username: u, database: d, schema: public}}
      - {platform: rivergen, name: rivergen, data_source_id: %d}
`, i, i, i, i)
	}
	sources := src.String()
	c.cfg = fmt.Sprintf(`server:
  listen: LISTEN
  replica_id: REPLICA
  api_tokens:
    - name: chaos
      token: ${CREDSYNC_API_TOKEN}
  rotation_deadline: 2m
store:
  driver: %s
  dsn: %q
  lease_ttl: 2s
platforms:
  felt: {vendor: felt, base_url: %s, token: "%s", timeout: 1s, max_attempts: 8, max_concurrency: 4}
  databrain: {vendor: databrain, base_url: %s, token: "%s", timeout: 1s, max_attempts: 8, max_concurrency: 4}
  rivergen: {vendor: rivergen, base_url: %s, token: "%s", timeout: 1s, max_attempts: 8, max_concurrency: 2}
sources:
%s`, driver, dsn, urls[felt.Vendor], tokens[felt.Vendor], urls[databrain.Vendor], tokens[databrain.Vendor],
		urls[rivergen.Vendor], tokens[rivergen.Vendor], sources)
	c.env = []string{"CREDSYNC_API_TOKEN=" + apiToken, "CREDSYNC_ENCRYPTION_KEY=" + demo.NewKey(),
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for i := 0; i < replicas; i++ {
		c.addrs = append(c.addrs, freeAddr(t))
		c.procs = append(c.procs, nil)
		c.logs = append(c.logs, &bytes.Buffer{})
		c.logMu = append(c.logMu, &sync.Mutex{})
		c.start(i)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.procs {
			if p != nil && p.ProcessState == nil {
				_ = p.Process.Signal(syscall.SIGCONT)
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	})
	return c
}

func (c *chaosSetup) start(i int) {
	t := c.t
	text := strings.NewReplacer("LISTEN", c.addrs[i], "REPLICA", fmt.Sprintf("replica-%d", i)).Replace(c.cfg)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("replica-%d.yaml", i))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	cmd := exec.Command(binary, "serve", "--config", path, "--log-level", "info", "--shutdown-grace", "2s", "--drain-delay", "0")
	cmd.Env = c.env
	w := &lockedWriter{mu: c.logMu[i], b: c.logs[i]}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	c.mu.Lock()
	c.procs[i] = cmd
	c.starts++
	c.mu.Unlock()
	base := "http://" + c.addrs[i]
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "replica %d did not start:\n%s", i, c.output(i))
}

func (c *chaosSetup) kill(i int) {
	c.mu.Lock()
	p := c.procs[i]
	c.kills++
	c.mu.Unlock()
	_ = p.Process.Signal(syscall.SIGKILL)
	_ = p.Wait()
}

func (c *chaosSetup) output(i int) string {
	c.logMu[i].Lock()
	defer c.logMu[i].Unlock()
	return c.logs[i].String()
}

var chaosClient = &http.Client{Timeout: 3 * time.Second}

// post submits a rotation to replica i; ok false when the answer was lost (kill, stop).
func (c *chaosSetup) post(i int, body, key string) (*core.Rotation, bool) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.addrs[i]+"/v1/rotations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := chaosClient.Do(req)
	if err != nil {
		return nil, false
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		c.t.Logf("POST answered %d: %s", resp.StatusCode, b)
		return nil, false
	}
	var rot core.Rotation
	if json.Unmarshal(b, &rot) != nil || rot.ID == "" {
		return nil, false
	}
	return &rot, true
}

func (c *chaosSetup) get(i int, id string) (*core.Rotation, bool) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.addrs[i]+"/v1/rotations/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := chaosClient.Do(req)
	if err != nil {
		return nil, false
	}
	defer func() { _ = resp.Body.Close() }()
	var rot core.Rotation
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&rot) != nil {
		return nil, false
	}
	return &rot, true
}

type submitted struct {
	rot      *core.Rotation
	password string
}

// runChaos drives one run and checks the invariants on what the vendors applied.
func runChaos(t *testing.T, driver, dsn string, replicas int, stopOne bool) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	n := 200
	if s, err := strconv.Atoi(os.Getenv("CHAOS_ROTATIONS")); err == nil && s > 0 {
		n = s
	}
	t.Logf("chaos seed %d (CHAOS_SEED=%d reproduces the vendors' and the killer's choices), %d rotations", seed, seed, n)
	c := newChaos(t, seed, driver, dsn, replicas)
	rng := rand.New(rand.NewPCG(seed, 7))
	var rmu sync.Mutex
	pick := func(k int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(k) }

	// The killer: SIGKILL a random replica every 1.5-4 s and restart it 0.2-1 s later; on
	// PostgreSQL, once, SIGSTOP one past its lease (2 s) and continue it.
	stopKiller := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		stopped := false
		for {
			select {
			case <-stopKiller:
				return
			case <-time.After(time.Duration(1500+pick(2500)) * time.Millisecond):
			}
			i := pick(replicas)
			if stopOne && !stopped && c.kills >= 2 {
				stopped = true
				c.mu.Lock()
				p := c.procs[i]
				c.stops++
				c.mu.Unlock()
				_ = p.Process.Signal(syscall.SIGSTOP)
				time.Sleep(5 * time.Second)
				_ = p.Process.Signal(syscall.SIGCONT)
				continue
			}
			c.kill(i)
			time.Sleep(time.Duration(200+pick(800)) * time.Millisecond)
			c.start(i)
		}
	}()

	var subs []submitted
	for k := 0; k < n; k++ {
		source := fmt.Sprintf("s%d", 1+pick(chaosSources))
		password := fmt.Sprintf("chaos-%04d-%08x", k, pick(1<<30))
		body := fmt.Sprintf(`{"source":%q,"credential":{"type":"password","password":%q}}`, source, password)
		key := fmt.Sprintf("chaos-%d-%d", seed, k)
		var rot *core.Rotation
		require.Eventually(t, func() bool {
			r, ok := c.post(pick(replicas), body, key)
			rot = r
			return ok
		}, 60*time.Second, 100*time.Millisecond, "rotation %d was never accepted", k)
		subs = append(subs, submitted{rot: rot, password: password})
		time.Sleep(time.Duration(pick(150)) * time.Millisecond)
	}
	close(stopKiller)
	<-killerDone

	// Every accepted rotation ends.
	final := map[string]*core.Rotation{}
	require.Eventually(t, func() bool {
		for _, s := range subs {
			if r, ok := final[s.rot.ID]; ok && r.Status.Finished() {
				continue
			}
			r, ok := c.get(pick(replicas), s.rot.ID)
			if !ok || !r.Status.Finished() {
				return false
			}
			final[s.rot.ID] = r
		}
		return true
	}, 3*time.Minute, 200*time.Millisecond, "not every accepted rotation ended")
	time.Sleep(chaosTimeout + 500*time.Millisecond) // let every write still possible land

	// The record, per target, in the order the vendor applied.
	seqOf := map[string]int64{}     // password → its rotation's seq (per source)
	sourceOf := map[string]string{} // password → source
	for _, s := range subs {
		seqOf[s.password] = s.rot.Seq
		sourceOf[s.password] = s.rot.Source
	}
	c.sim.mu.Lock()
	writes := append([]*write(nil), c.sim.writes...)
	overlaps := append([]string(nil), c.sim.overlaps...)
	counts := map[string]int{}
	for k, v := range c.sim.counts {
		counts[k] = v
	}
	c.sim.mu.Unlock()
	sort.Slice(writes, func(i, j int) bool { return writes[i].done.Before(writes[j].done) })
	lastApplied := map[string]*write{}
	olderAfterNewer := 0
	for _, w := range writes {
		if !w.applied {
			continue
		}
		if prev := lastApplied[w.target]; prev != nil && seqOf[w.password] < seqOf[prev.password] {
			olderAfterNewer++
			t.Errorf("%s: %s (seq %d) applied at %s after %s (seq %d)", w.target, w.password, seqOf[w.password],
				w.done.Format("15:04:05.000"), prev.password, seqOf[prev.password])
		}
		lastApplied[w.target] = w
	}
	if len(overlaps) > 20 {
		overlaps = append(overlaps[:20], fmt.Sprintf("and %d more", len(overlaps)-20))
	}
	require.Empty(t, overlaps, "no two writes to one target overlap")
	require.Zero(t, olderAfterNewer, "no older credential applied after a newer one")

	// For every target: what it holds is the newest credential applied to it, the fakes agree
	// with the record, and the newest rotation reported succeeded there is not newer than it.
	outcomes := map[core.RotationStatus]int{}
	failures := map[string]int{} // why targets failed: error codes, for the log
	for _, r := range final {
		outcomes[r.Status]++
		for _, tr := range r.Targets {
			if tr.Status == core.TargetFailed && tr.Error != nil {
				failures[tr.Error.Code]++
			}
		}
	}
	for i := 1; i <= chaosSources; i++ {
		source := fmt.Sprintf("s%d", i)
		held := map[string]string{}
		if conn, ok := c.felt.Connection(fmt.Sprintf("src%d", i)); ok {
			held["felt"], _ = conn["password"].(string)
		}
		if creds, ok := c.db.Credentials(fmt.Sprintf("ds%d", i)); ok {
			held[fmt.Sprintf("ds%d", i)], _ = creds["password"].(string)
		}
		if creds, ok := c.rg.Credentials(i); ok {
			held["rivergen"] = creds.Password
		}
		keys := map[string]string{"felt": fmt.Sprintf("felt/src%d", i), fmt.Sprintf("ds%d", i): fmt.Sprintf("databrain/ds%d", i), "rivergen": fmt.Sprintf("rivergen/%d", i)}
		for name, key := range keys {
			var newestApplied int64
			if w := lastApplied[key]; w != nil {
				newestApplied = seqOf[w.password]
				require.Equal(t, w.password, held[name], "%s: the fake holds what the record says was applied last", key)
			}
			// the newest credential that reached the vendor and was applied is the one held
			for _, w := range writes {
				if w.target == key && w.applied {
					require.LessOrEqual(t, seqOf[w.password], newestApplied, "%s", key)
				}
			}
			var newestSucceeded int64
			for _, s := range subs {
				r := final[s.rot.ID]
				if r.Source != source {
					continue
				}
				for _, tr := range r.Targets {
					if tr.Name == name && tr.Status == core.TargetSucceeded {
						newestSucceeded = max(newestSucceeded, r.Seq)
						landed := false
						for _, w := range writes {
							landed = landed || (w.target == key && w.applied && w.password == s.password)
						}
						require.True(t, landed, "%s: rotation %s says succeeded, but the vendor never applied its credential", key, r.ID)
					}
				}
			}
			require.GreaterOrEqual(t, newestApplied, newestSucceeded,
				"%s: the vendor holds seq %d, older than seq %d reported succeeded", key, newestApplied, newestSucceeded)
		}
	}
	applied := 0
	for _, w := range writes {
		if w.applied {
			applied++
		}
	}
	t.Logf("chaos %s, %d replica(s): %d rotations accepted, all ended: %v; vendor writes: %d arrived, %d applied, "+
		"0 overlapping, 0 older-after-newer; %d SIGKILLs, %d SIGSTOPs, %d starts; faults: %v; failed targets by code: %v",
		driver, replicas, len(subs), outcomes, len(writes), applied, c.kills, c.stops, c.starts, counts, failures)
}

func TestChaosSQLite(t *testing.T) {
	runChaos(t, "sqlite", filepath.Join(t.TempDir(), "credsync.db"), 1, false)
}

func TestChaosTwoReplicasPostgres(t *testing.T) {
	runChaos(t, "postgres", pg.NewDatabase(t), 2, true)
}
