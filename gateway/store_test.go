package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
)

// TestSQLiteFileMode: a new SQLite file is created 0600 without a word; an existing file
// readable by others keeps its mode, with a warning saying what to do.
func TestSQLiteFileMode(t *testing.T) {
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	defer fakes.Close()
	env := fakes.Env("filemode-api-token-0123")
	open := func(dbPath string) *observer.ObservedLogs {
		cfg, err := config.Parse([]byte(fakes.Config("127.0.0.1:18080", dbPath)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		require.NoError(t, err)
		require.Equal(t, 5*time.Second, cfg.File.Store.Timeout)
		core, logs := observer.New(zap.WarnLevel)
		gw, err := gateway.New(context.Background(), cfg, zap.New(core), gateway.Options{Keys: keyring.Source{Key: demo.NewKey()}})
		require.NoError(t, err)
		require.NoError(t, gw.Engine.Ping(context.Background()), "ready: a write round trip succeeds")
		require.NoError(t, gw.Engine.Shutdown(context.Background()))
		return logs
	}
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	logs := open(fresh)
	fi, err := os.Stat(fresh)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Zero(t, logs.FilterMessageSnippet("SQLite file").Len())

	shared := filepath.Join(dir, "shared.db")
	require.NoError(t, os.WriteFile(shared, nil, 0o644))
	require.NoError(t, os.Chmod(shared, 0o644))
	logs = open(shared)
	fi, err = os.Stat(shared)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "an existing file keeps its mode")
	require.Equal(t, 1, logs.FilterMessageSnippet("chmod 600").Len())
}
