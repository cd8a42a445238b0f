package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

// newLifecycleEnv is an API on the memory store, with the server itself to drive.
func newLifecycleEnv(t *testing.T) (*api.Server, *httptest.Server, *observer.ObservedLogs) {
	t.Helper()
	obs, logs := observer.New(zap.DebugLevel)
	eng, err := core.NewEngine(core.EngineConfig{
		Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources:   []*core.Source{{Name: "db", Targets: []*core.Target{{Name: "a", Platform: "p", Vendor: "fake", Adapter: standin.New(core.TypePassword)}}}},
		Store:     memstore.New(), Logger: zap.New(obs),
	})
	require.NoError(t, err)
	s := api.New(eng, []api.Token{{Name: "job", Token: core.NewSecret(token)}}, zap.New(obs))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return s, srv, logs
}

func send(t *testing.T, method, url string, auth bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// TestHeadAnswersLikeGet: load balancers probe with HEAD; every GET route answers it with GET's
// status and headers and no body, and a route with no GET still answers 405.
func TestHeadAnswersLikeGet(t *testing.T) {
	_, srv, logs := newLifecycleEnv(t)
	for _, c := range []struct {
		path string
		auth bool
		want int
	}{
		{"/healthz", false, 200},
		{"/readyz", false, 200},
		{"/v1/openapi.json", false, 200},
		{"/v1/sources", true, 200},
		{"/v1/sources", false, 401},
		{"/v1/rotations/rot_nope", true, 404},
		{"/no/such/route", false, 404},
		{"/v1/rotations/rot_nope/retry", true, 405}, // POST only
	} {
		get, getBody := send(t, http.MethodGet, srv.URL+c.path, c.auth)
		head, headBody := send(t, http.MethodHead, srv.URL+c.path, c.auth)
		require.Equal(t, c.want, get.StatusCode, "GET %s", c.path)
		require.Equal(t, get.StatusCode, head.StatusCode, "HEAD %s answers as GET does", c.path)
		require.Equal(t, get.Header.Get("Content-Type"), head.Header.Get("Content-Type"), "HEAD %s", c.path)
		require.NotEmpty(t, head.Header.Get("X-Request-Id"), "HEAD %s", c.path)
		require.NotEmpty(t, getBody, "GET %s has a body", c.path)
		require.Empty(t, headBody, "HEAD %s has no body", c.path)
	}
	var heads int
	for _, e := range logs.FilterMessage("request").All() {
		m := e.ContextMap()
		require.Contains(t, m, "took_ms", "the request log names its unit")
		require.IsType(t, float64(0), m["took_ms"])
		require.NotContains(t, m, "took")
		if m["method"] == http.MethodHead {
			heads++
		}
	}
	require.Equal(t, 8, heads, "a HEAD is logged as HEAD, not as the GET it was served as")
}

// TestReadyzDuringShutdown: once the gateway is stopping, /readyz says so (load balancers stop
// sending) while /healthz and the API go on answering.
func TestReadyzDuringShutdown(t *testing.T) {
	s, srv, _ := newLifecycleEnv(t)
	resp, _ := send(t, http.MethodGet, srv.URL+"/readyz", false)
	require.Equal(t, 200, resp.StatusCode)
	s.ShuttingDown()
	resp, b := send(t, http.MethodGet, srv.URL+"/readyz", false)
	require.Equal(t, 503, resp.StatusCode)
	require.Equal(t, "shutting_down", errCode(t, b).Code)
	require.Contains(t, errCode(t, b).Message, "shutting down")
	resp, _ = send(t, http.MethodHead, srv.URL+"/readyz", false)
	require.Equal(t, 503, resp.StatusCode)
	resp, _ = send(t, http.MethodGet, srv.URL+"/healthz", false)
	require.Equal(t, 200, resp.StatusCode, "still alive")
	resp, _ = send(t, http.MethodGet, srv.URL+"/v1/sources", true)
	require.Equal(t, 200, resp.StatusCode, "still serving")
}
