package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/store/sqlstore"
)

// TestShutdownLetsRunningRotationsFinish stops the gateway while a rotation is still verifying
// and checks that it finished before Serve returned, and that new requests are refused.
func TestShutdownLetsRunningRotationsFinish(t *testing.T) {
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	defer fakes.Close()
	fakes.Felt.SetSyncingPolls(4) // 4 polls × 100 ms of verification
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	env := fakes.Env("shutdown-api-token-0123")
	dbPath := filepath.Join(t.TempDir(), "credsync.db")
	cfg, err := config.Parse([]byte(fakes.Config(l.Addr().String(), dbPath)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	gw, err := gateway.New(context.Background(), cfg, zap.NewNop(), gateway.Options{ShutdownGrace: 10 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, l) }()

	req, _ := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/v1/rotations",
		strings.NewReader(`{"source":"s3-role","credential":{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r","role_session_name":"s"}}`))
	req.Header.Set("Authorization", "Bearer shutdown-api-token-0123")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))

	cancel() // SIGTERM
	require.NoError(t, <-served)
	_, _, err = gw.Engine.Submit(context.Background(), core.SubmitRequest{Source: "s3-role"})
	require.ErrorIs(t, err, core.ErrShuttingDown)

	// Serve closed the store; read what it recorded.
	st, err := sqlstore.OpenSQLite(context.Background(), dbPath)
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	final, err := st.GetRotation(context.Background(), rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, final.Status, "the running rotation finished within the grace period")
	require.True(t, final.Targets[0].Verified)
}
