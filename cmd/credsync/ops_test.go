package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		require.Equal(t, exitOK, run(args, &out, &errb), errb.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 4, out.String())
		require.True(t, strings.HasPrefix(lines[0], "credsync "), lines[0])
		require.True(t, strings.HasPrefix(lines[1], "commit: "), lines[1])
		require.True(t, strings.HasPrefix(lines[2], "built:  "), lines[2])
		require.Equal(t, "go:     "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH, lines[3])
	}

	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "0123456789abcdef", "2026-01-02T03:04:05Z"
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"version"}, &out, &errb))
	require.Contains(t, out.String(), "credsync v1.2.3\ncommit: 0123456789abcdef\nbuilt:  2026-01-02T03:04:05Z\n", "the ldflags values make build sets")
}

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.URL.Path == "/healthz":
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		case r.URL.Path == "/readyz" && ready:
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"shutting_down","message":"the gateway is shutting down"}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hc := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"healthcheck"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, _ := hc("--addr", srv.URL)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "/healthz: 200 OK")
	code, out, _ = hc("--addr", strings.TrimPrefix(srv.URL, "http://"), "--ready")
	require.Equal(t, exitOK, code, "a bare host:port is http")
	require.Contains(t, out, "/readyz: 200 OK")

	ready = false
	code, _, errs := hc("--addr", srv.URL, "--ready")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, "503 Service Unavailable")
	require.Contains(t, errs, "shutting_down")
	code, _, _ = hc("--addr", srv.URL)
	require.Equal(t, exitOK, code, "liveness is not readiness")

	t.Setenv("CREDSYNC_ADDR", srv.URL)
	code, _, _ = hc()
	require.Equal(t, exitOK, code, "CREDSYNC_ADDR is the default address")

	srv.Close()
	code, _, errs = hc("--addr", srv.URL)
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, "connection refused")

	code, _, _ = hc("--addr", "ftp://x")
	require.Equal(t, exitUsage, code)
}

func TestServeRefusesBadLogFormatAndDrain(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, exitUsage, run([]string{"serve", "--config", "x.yaml", "--log-format", "xml"}, &out, &errb))
	require.Contains(t, errb.String(), `--log-format "xml": json or console`)
	errb.Reset()
	require.Equal(t, exitUsage, run([]string{"serve", "--config", "x.yaml", "--drain-delay", "-1s"}, &out, &errb))
	require.Contains(t, errb.String(), "--drain-delay")
}

func TestLogFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger("info", "json", &b)
	require.NoError(t, err)
	log.Info("hello")
	require.True(t, strings.HasPrefix(b.String(), `{"level":"info","ts":"`), b.String())
	b.Reset()
	log, err = newLogger("info", "console", &b)
	require.NoError(t, err)
	log.Info("hello")
	require.Contains(t, b.String(), "\tINFO\thello")
}
