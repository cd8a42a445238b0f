package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/internal/pgtest"
)

var (
	binary string
	pg     *pgtest.Server
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "credsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	binary = filepath.Join(dir, "credsync")
	build := exec.Command("go", "build", "-o", binary, "github.com/credsync/credsync/cmd/credsync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build credsync:", err)
		return 1
	}
	defer stopMariaDB() // started by the first test that needs it (source_test.go)
	return pgtest.Main(m, &pg)
}

const apiToken = "e2e-crash-api-token-0123456789"

// hangGate makes the first PATCH to RiverGen hang until released (or until the caller goes
// away), and counts RiverGen credential calls in flight at once.
type hangGate struct {
	mu       sync.Mutex
	armed    bool
	arrived  chan struct{}
	release  chan struct{}
	inflight int
	maxSeen  int
	patches  int
}

func newHangGate() *hangGate {
	return &hangGate{armed: true, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (g *hangGate) wrap(vendor string, h http.Handler) http.Handler {
	if vendor != "rivergen" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch {
			h.ServeHTTP(w, r)
			return
		}
		g.mu.Lock()
		g.patches++
		g.inflight++
		if g.inflight > g.maxSeen {
			g.maxSeen = g.inflight
		}
		hang := g.armed
		g.armed = false
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.inflight--
			g.mu.Unlock()
		}()
		if hang {
			close(g.arrived)
			select {
			case <-g.release:
			case <-r.Context().Done(): // the gateway died with the call in flight
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (g *hangGate) stats() (patches, maxInflight int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.patches, g.maxSeen
}

// gateway is one credsync serve process.
type gateway struct {
	cmd     *exec.Cmd
	base    string
	logs    *bytes.Buffer
	mu      *sync.Mutex
	cfgPath string // the config file it was started with (a reload reads it again)
}

type setup struct {
	fakes   *demo.Fakes
	env     []string
	cfgPath string
}

// newSetup writes a config for the demo sources on the given store, with short leases so that a
// dead replica's rotation is taken over quickly.
func newSetup(t *testing.T, gate *hangGate, driver, dsn string) *setup {
	t.Helper()
	fakes, err := demo.StartFakesWith(gate.wrap)
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	s := &setup{fakes: fakes}
	envMap := fakes.Env(apiToken)
	envMap["CREDSYNC_ENCRYPTION_KEY"] = demo.NewKey()
	for k, v := range envMap {
		s.env = append(s.env, k+"="+v)
	}
	s.env = append(s.env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	cfg := fakes.Config("LISTEN", "DSN")
	cfg = strings.Replace(cfg, "  driver: sqlite\n  dsn: DSN\n", fmt.Sprintf("  driver: %s\n  dsn: %q\n  lease_ttl: 2s\n", driver, dsn), 1)
	// Short vendor timeouts: after a SIGKILL a target stays claimed until any call the dead
	// gateway may have had in flight can no longer land (1.5 x timeout + 1 s).
	cfg = strings.Replace(cfg, "    token: ${RIVERGEN_ACCESS_TOKEN}\n", "    token: ${RIVERGEN_ACCESS_TOKEN}\n    timeout: 3s\n", 1)
	cfg = strings.Replace(cfg, "    token: ${DATABRAIN_SERVICE_TOKEN}\n", "    token: ${DATABRAIN_SERVICE_TOKEN}\n    timeout: 3s\n", 1)
	cfg = strings.Replace(cfg, "    token: ${FELT_API_TOKEN}\n    timeout: 10s\n", "    token: ${FELT_API_TOKEN}\n    timeout: 3s\n", 1)
	require.Equal(t, 3, strings.Count(cfg, "timeout: 3s"), "every platform of the e2e config has a short timeout")
	require.Contains(t, cfg, "lease_ttl: 2s")
	s.cfgPath = filepath.Join(t.TempDir(), "credsync.yaml")
	require.NoError(t, os.WriteFile(s.cfgPath, []byte(cfg), 0o600))
	return s
}

// start runs a replica listening on addr under replica id, with no drain delay (these tests
// are about what a stop leaves behind, not about load balancers).
func (s *setup) start(t *testing.T, replica, addr string) *gateway {
	t.Helper()
	return s.startWith(t, replica, addr, "--drain-delay", "0")
}

// startWith is start with serve's extra flags.
func (s *setup) startWith(t *testing.T, replica, addr string, flags ...string) *gateway {
	t.Helper()
	cfg, err := os.ReadFile(s.cfgPath)
	require.NoError(t, err)
	text := strings.Replace(string(cfg), "listen: LISTEN\n", fmt.Sprintf("listen: %s\n  replica_id: %s\n", addr, replica), 1)
	path := filepath.Join(t.TempDir(), replica+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	logs := &bytes.Buffer{}
	mu := &sync.Mutex{}
	cmd := exec.Command(binary, append([]string{"serve", "--config", path, "--log-level", "debug", "--shutdown-grace", "2s"}, flags...)...)
	cmd.Env = s.env
	w := &lockedWriter{mu: mu, b: logs}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	g := &gateway{cmd: cmd, base: "http://" + addr, logs: logs, mu: mu, cfgPath: path}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(g.base + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "gateway %s did not start:\n%s", replica, g.output())
	return g
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (g *gateway) output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

func (g *gateway) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGKILL))
	_ = g.cmd.Wait()
}

func (g *gateway) call(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func (g *gateway) waitFinished(t *testing.T, id string) *core.Rotation {
	t.Helper()
	var rot core.Rotation
	require.Eventually(t, func() bool {
		status, _, b := g.call(t, "GET", "/v1/rotations/"+id, "", nil)
		if status != 200 || json.Unmarshal(b, &rot) != nil {
			return false
		}
		return rot.Status.Finished()
	}, 30*time.Second, 100*time.Millisecond, "rotation %s did not finish:\n%s", id, g.output())
	return &rot
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func waitArrived(t *testing.T, gate *hangGate, g *gateway) {
	t.Helper()
	select {
	case <-gate.arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the RiverGen call never arrived:\n%s", g.output())
	}
}

func assertAllSucceeded(t *testing.T, rot *core.Rotation) {
	t.Helper()
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
	for _, tr := range rot.Targets {
		require.Equal(t, core.TargetSucceeded, tr.Status, tr.Name)
		require.True(t, tr.Verified, tr.Name)
	}
}

var _ = golden.Root // the e2e binary also accepts -update
