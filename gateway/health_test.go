package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
)

// hooks records the JSON events a notification receiver gets.
type hooks struct {
	mu     sync.Mutex
	events []core.Event
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev core.Event
	if json.Unmarshal(b, &ev) == nil {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hooks) types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		out = append(out, ev.Type)
	}
	return out
}

// The drift of a target is seen on what the fake vendor holds: the RiverGen fake's database
// takes one password and its Test Connection logs in with the one RiverGen stores. Someone
// changes the database password behind credsync's back: the scheduled check fails, the target
// is unhealthy, target.drift reaches the webhook; a rotation repairs it: target.recovered.
func TestDriftSeenOnTheVendorAndAnnounced(t *testing.T) {
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	recv := &hooks{}
	hookSrv := httptest.NewServer(recv)
	t.Cleanup(hookSrv.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	env := fakes.Env(hardToken)
	text := fakes.Config(l.Addr().String(), filepath.Join(t.TempDir(), "credsync.db"))
	// Only RiverGen is checked, every second.
	text = strings.Replace(text, "    verify_every: 6h              # check what each target holds every 6h (health; target.drift)\n", "", 1)
	text = strings.Replace(text, "    verify_every: 6h\n", "    verify_every: 1s\n", 1)
	text += "notifications:\n  - name: ops\n    url: " + hookSrv.URL + "/hook\n    format: json\n    secret: webhook-secret-0123456789\n    events: [target.drift, target.recovered]\n"
	cfg, err := config.Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	gw, err := gateway.New(context.Background(), cfg, zap.NewNop(), gateway.Options{ShutdownGrace: 2 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + l.Addr().String()

	health := func() core.TargetHealth {
		t.Helper()
		_, body := get(t, http.DefaultClient, base+"/v1/sources", hardToken)
		var doc struct {
			Sources []core.SourceView `json:"sources"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
		for _, s := range doc.Sources {
			for _, tv := range s.Targets {
				if tv.Name == "rivergen-pg" {
					require.NotNil(t, tv.Health, body)
					require.Equal(t, "1s", tv.VerifyEvery)
					return *tv.Health
				}
				if tv.Platform != "rivergen" {
					require.Nil(t, tv.Health, "a target without verify_every has no health")
				}
			}
		}
		t.Fatalf("no rivergen-pg in %s", body)
		return core.TargetHealth{}
	}
	rotate := func(pw string) {
		t.Helper()
		req, err := http.NewRequest("POST", base+"/v1/rotations?wait=30s", strings.NewReader(`{"source":"warehouse-pg","credential":{"type":"password","password":"`+pw+`"}}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+hardToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%s", b)
		require.Contains(t, string(b), `"status":"succeeded"`)
	}

	const first, changed, second = "Drift-first-passw0rd", "Changed-by-someone-else", "Drift-second-passw0rd"
	fakes.RiverGen.SetDatabasePassword(1, first) // the database takes the password credsync is about to send
	rotate(first)
	require.Eventually(t, func() bool { return health().Status == core.HealthHealthy }, 10*time.Second, 50*time.Millisecond)

	fakes.RiverGen.SetDatabasePassword(1, changed) // changed at the database: RiverGen's copy no longer logs in
	require.Eventually(t, func() bool { return health().Status == core.HealthUnhealthy }, 10*time.Second, 50*time.Millisecond)
	h := health()
	require.Contains(t, h.Message, "AUTHENTICATION_FAILED")
	require.Eventually(t, func() bool { return len(recv.types()) >= 1 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{core.EventTargetDrift}, recv.types(), "drift, once")

	fakes.RiverGen.SetDatabasePassword(1, second)
	rotate(second) // the repair: RiverGen now holds what the database takes
	require.Eventually(t, func() bool { return len(recv.types()) >= 2 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{core.EventTargetDrift, core.EventTargetRecovered}, recv.types())
	time.Sleep(2500 * time.Millisecond) // two more checks: healthy stays quiet
	require.Equal(t, core.HealthHealthy, health().Status)
	require.Len(t, recv.types(), 2)

	_, metrics := get(t, http.DefaultClient, base+"/metrics", "")
	require.Contains(t, metrics, `credsync_targets_health{health="healthy",platform="rivergen"} 2`)
	for _, pw := range []string{first, changed, second} {
		require.NotContains(t, metrics, pw)
		_, body := get(t, http.DefaultClient, base+"/v1/sources", hardToken)
		require.NotContains(t, body, pw)
		for _, ev := range recv.events {
			b, _ := json.Marshal(ev)
			require.NotContains(t, string(b), pw)
		}
	}
}
