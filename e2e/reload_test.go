package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// SIGHUP reloads the config on the real binary, atomically: a config that is refused leaves the
// running one in force (and the log says why); an accepted one serves at once on the same
// socket, while a rotation the previous config's gateway was running still ends succeeded.
func TestReloadOnTheRealBinary(t *testing.T) {
	gate := newHangGate() // the first RiverGen PATCH hangs until released
	s := newSetup(t, gate, "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	g := s.start(t, "replica-1", freeAddr(t))
	const newToken = "e2e-reloaded-api-token-0123456789"
	asNew := func() int {
		req, err := http.NewRequest(http.MethodGet, g.base+"/v1/sources", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+newToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, asNew(), "the token is not in the config yet")

	// A rotation whose RiverGen call hangs: in flight on the gateway of the first config.
	status, _, b := g.call(t, "POST", "/v1/rotations", `{"source":"warehouse-pg","credential":{"type":"password","password":"Reload-passw0rd-1"}}`, nil)
	require.Equal(t, http.StatusAccepted, status, "%s", b)
	var pending core.Rotation
	require.NoError(t, json.Unmarshal(b, &pending))
	waitArrived(t, gate, g)

	orig, err := os.ReadFile(g.cfgPath)
	require.NoError(t, err)
	reload := func(text, wantLog string) {
		t.Helper()
		require.NoError(t, os.WriteFile(g.cfgPath, []byte(text), 0o600))
		before := strings.Count(g.output(), wantLog)
		require.NoError(t, g.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Count(g.output(), wantLog) > before }, 20*time.Second, 20*time.Millisecond,
			"after SIGHUP, the log says %q:\n%s", wantLog, g.output())
	}

	// Refused: not YAML; a listen address a reload cannot move to.
	reload(string(orig)+"\n  : [broken\n", "the config was not reloaded")
	require.Contains(t, g.output(), "invalid config")
	moved := strings.Replace(string(orig), "listen: "+strings.TrimPrefix(g.base, "http://"), "listen: 127.0.0.1:1", 1)
	require.NotEqual(t, string(orig), moved)
	reload(moved, "server.listen changed")
	require.Equal(t, http.StatusUnauthorized, asNew(), "a refused config changes nothing")
	require.Equal(t, 200, probe(t, http.MethodGet, g.base+"/readyz"))

	// Accepted: a second API token.
	withToken := strings.Replace(string(orig), "  api_tokens:\n", "  api_tokens:\n    - name: reloaded\n      token: "+newToken+"\n", 1)
	require.NotEqual(t, string(orig), withToken)
	reload(withToken, "config reloaded")
	require.Eventually(t, func() bool { return asNew() == http.StatusOK }, 10*time.Second, 20*time.Millisecond,
		"the new token is accepted once the new config serves:\n%s", g.output())
	for i := 0; i < 20; i++ { // every connection is served by the new config now
		require.Equal(t, http.StatusOK, asNew())
	}

	// The rotation of the first config's gateway ends, on it or resumed by the new one.
	close(gate.release)
	rot := g.waitFinished(t, pending.ID)
	require.Equal(t, "succeeded", string(rot.Status), "%+v\n%s", rot, g.output())
	require.Equal(t, 200, probe(t, http.MethodGet, g.base+"/readyz"))
	require.NotContains(t, g.output(), "Reload-passw0rd-1", "no secret in the log")
}
