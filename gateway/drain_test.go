package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
)

// startDraining serves the demo config with the given drain options until the returned cancel.
func startDraining(t *testing.T, opts gateway.Options) (base string, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	env := fakes.Env("drain-api-token-0123456")
	cfg, err := config.Parse([]byte(fakes.Config(l.Addr().String(), filepath.Join(t.TempDir(), "credsync.db"))), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	opts.Keys = keyring.Source{Key: demo.NewKey()}
	gw, err := gateway.New(context.Background(), cfg, zap.NewNop(), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, l) }()
	t.Cleanup(cancel)
	base = "http://" + l.Addr().String()
	require.Eventually(t, func() bool { return status(t, base+"/readyz") == 200 }, 10*time.Second, 10*time.Millisecond)
	return base, cancel, done
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestDrainBeforeClosing: once told to stop, the gateway answers /readyz 503 and goes on serving
// for the drain delay, then closes its listener and returns.
func TestDrainBeforeClosing(t *testing.T) {
	const delay = 600 * time.Millisecond
	base, cancel, served := startDraining(t, gateway.Options{DrainDelay: delay})
	stopped := time.Now()
	cancel() // SIGTERM
	require.Eventually(t, func() bool { return status(t, base+"/readyz") == 503 }, delay/2, 10*time.Millisecond,
		"/readyz answers 503 at once")
	require.Equal(t, 200, status(t, base+"/healthz"), "still alive while draining")
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v after %s, before the drain delay", err, time.Since(stopped))
	case <-time.After(delay / 2):
	}
	require.Equal(t, 503, status(t, base+"/readyz"), "still serving, still not ready")
	require.NoError(t, <-served)
	require.GreaterOrEqual(t, time.Since(stopped), delay)
	_, err := http.Get(base + "/healthz")
	require.Error(t, err, "the listener is closed after the drain")
}

// TestDrainEndsEarly: EndDrain (a second signal) cuts the drain delay short.
func TestDrainEndsEarly(t *testing.T) {
	end := make(chan struct{})
	_, cancel, served := startDraining(t, gateway.Options{DrainDelay: time.Hour, EndDrain: end})
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(end)
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve went on draining after EndDrain closed")
	}
}
