package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-multierror"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/internal/keyring"
)

const preflightToken = "preflight-api-token-0123"

// testKey is a valid CREDSYNC_ENCRYPTION_KEY: base64 of 32 bytes.
var testKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

// preflightConfig is a minimal valid config with store as its store block.
func preflightConfig(t *testing.T, store string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`server:
  api_tokens:
    - name: job
      token: %s
store:
%s
platforms:
  rivergen:
    vendor: rivergen
    base_url: https://api.rivergen.com
    token: rg
sources:
  pg:
    targets:
      - platform: rivergen
        data_source_id: 1
`, preflightToken, store)
	cfg, err := config.Parse([]byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

func TestPreflightDSNWithPasswordSaysNoPassword(t *testing.T) {
	const pw = "Sup3r:Secret/Pw"
	enc := url.QueryEscape(pw)
	for _, dsn := range []string{
		"postgres://credsync:" + enc + "@db:notaport/credsync",
		"postgres://credsync:" + enc + "@db:5432/credsync?pool_max_conns=lots",
		"postgres://credsync:" + enc + "@[::1/credsync",
		"postgres://credsync:" + enc + "@db/credsync?sslmode=sometimes",
		"postgres://credsync:Sup3r Secret/Pw@db:x/credsync",
		"postgres://credsync@db/credsync?password=" + enc + "&connect_timeout=soon",
		"host=db password='" + pw + "' port=abc",
		"host=db password '" + pw + "'",
		"host=db password=" + enc + " dbname",
	} {
		t.Run(dsn, func(t *testing.T) {
			cfg := preflightConfig(t, "  driver: postgres\n  dsn: \""+dsn+"\"")
			err := Preflight(cfg, Options{Keys: keyring.Source{Key: testKey}})
			require.Error(t, err)
			msg := err.Error()
			require.Contains(t, msg, "store.dsn: the PostgreSQL connection string does not parse")
			for _, secret := range []string{pw, enc, "Sup3r", "Secret", dsn} {
				require.NotContains(t, msg, secret)
			}
		})
	}
	cfg := preflightConfig(t, "  driver: postgres\n  dsn: postgres://credsync:"+enc+"@db:5432/credsync")
	require.NoError(t, Preflight(cfg, Options{Keys: keyring.Source{Key: testKey}}), "a DSN that parses: nothing connects")
}

// TestNewRefusesWithPreflightsError: New runs Preflight first, so it refuses with the same
// error, before the store is opened (the SQLite file is not created).
func TestNewRefusesWithPreflightsError(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "credsync.db")
	cfg := preflightConfig(t, "  driver: sqlite\n  dsn: "+db)
	cfg.File.Server.TLS = &config.TLS{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "missing.key")}
	opts := Options{Keys: keyring.Source{}}

	want := Preflight(cfg, opts)
	var problems *multierror.Error
	require.True(t, errors.As(want, &problems), "%T", want)
	require.Len(t, problems.Errors, 3, "cert_file, key_file, no key: %v", want)

	gw, err := New(context.Background(), cfg, zap.NewNop(), opts)
	require.Nil(t, gw)
	require.Equal(t, want.Error(), err.Error())
	require.ErrorIs(t, err, keyring.ErrNoKey)
	_, statErr := os.Stat(db)
	require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was created")

	cfg.File.Server.TLS = nil
	require.NoError(t, Preflight(cfg, Options{AllowNoKey: true}), "--allow-no-encryption-key")
	require.NoError(t, Preflight(preflightConfig(t, "  driver: memory"), Options{}), "a memory store needs no key")
	_, statErr = os.Stat(db)
	require.ErrorIs(t, statErr, os.ErrNotExist, "Preflight creates no database")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the temporary file is removed")
}

func TestSQLitePath(t *testing.T) {
	for dsn, want := range map[string]struct {
		path     string
		inMemory bool
	}{
		"credsync.db":                      {"credsync.db", false},
		"/var/lib/credsync/c.db?_pragma=x": {"/var/lib/credsync/c.db", false},
		"file:c.db?cache=shared":           {"c.db", false},
		"file:///var/lib/c%20d.db":         {"/var/lib/c d.db", false},
		"file://localhost/var/lib/c.db":    {"/var/lib/c.db", false},
		"file:c.db?mode=memory":            {"c.db", true},
		":memory:":                         {":memory:", true},
		"file::memory:?cache=shared":       {":memory:", true},
	} {
		path, inMemory := sqlitePath(dsn)
		require.Equal(t, want.path, path, dsn)
		require.Equal(t, want.inMemory, inMemory, dsn)
	}
}
