package e2e_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// healthcheck runs credsync healthcheck against g and returns its exit code and output.
func healthcheck(t *testing.T, g *gateway, flags ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"healthcheck", "--addr", g.base}, flags...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

func probe(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestSignalsOnTheRealBinary: SIGHUP is logged and the gateway keeps running; SIGTERM makes
// /readyz answer 503 shutting_down for --drain-delay while everything else still serves, then
// the gateway stops and exits 0. credsync healthcheck and HEAD see the same.
func TestSignalsOnTheRealBinary(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "credsync ")

	gate := newHangGate()
	close(gate.release)
	s := newSetup(t, gate, "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	const drain = 2 * time.Second
	g := s.startWith(t, "replica-1", freeAddr(t), "--drain-delay", drain.String())

	code, msg := healthcheck(t, g)
	require.Equal(t, 0, code, msg)
	code, msg = healthcheck(t, g, "--ready")
	require.Equal(t, 0, code, msg)
	require.Equal(t, 200, probe(t, http.MethodHead, g.base+"/healthz"))
	require.Equal(t, 200, probe(t, http.MethodHead, g.base+"/readyz"))

	require.NoError(t, g.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(g.output(), "config reloaded") }, 10*time.Second, 20*time.Millisecond,
		"SIGHUP reloads:\n%s", g.output())
	require.Equal(t, 200, probe(t, http.MethodGet, g.base+"/readyz"), "SIGHUP did not stop the gateway:\n%s", g.output())

	stopped := time.Now()
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return probe(t, http.MethodGet, g.base+"/readyz") == 503 }, drain/2, 20*time.Millisecond,
		"/readyz answers 503 as soon as SIGTERM arrives:\n%s", g.output())
	code, msg = healthcheck(t, g, "--ready")
	require.Equal(t, 1, code, msg)
	require.Contains(t, msg, "shutting_down")
	code, msg = healthcheck(t, g)
	require.Equal(t, 0, code, "still alive while draining: %s", msg)
	status, _, b := g.call(t, "GET", "/v1/sources", "", nil)
	require.Equal(t, 200, status, "the API still serves while draining: %s", b)

	require.NoError(t, g.cmd.Wait(), "a drained stop exits 0:\n%s", g.output())
	require.GreaterOrEqual(t, time.Since(stopped), drain, "the listener stayed open for the drain delay")
	require.Contains(t, g.output(), "draining")
	require.Equal(t, 0, probe(t, http.MethodGet, g.base+"/healthz"), "the listener is closed")
}
