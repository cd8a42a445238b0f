package mariadbtest_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/mariadbtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &srv)) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	require.NoError(t, err)
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestAdminLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := open(t, srv.AdminDSN())
	var version, user string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT VERSION(), USER()`).Scan(&version, &user))
	require.Contains(t, version, "MariaDB")
	require.Equal(t, mariadbtest.AdminUser+"@127.0.0.1", user, "logged in over TCP on loopback")
	var bind string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT @@bind_address`).Scan(&bind))
	require.Equal(t, "127.0.0.1", bind, "listens on loopback only")

	// the admin may create and alter logins
	require.NoError(t, srv.Exec(ctx, `CREATE USER 'someone'@'%' IDENTIFIED BY 'pw-of-someone'`,
		`ALTER USER 'someone'@'%' IDENTIFIED BY 'another-pw'`))
	var one int
	require.NoError(t, open(t, srv.DSN("someone", "another-pw", "")).QueryRowContext(ctx, `SELECT 1`).Scan(&one))
	require.NoError(t, srv.Exec(ctx, `DROP USER 'someone'@'%'`))

	// a wrong password is refused
	err := open(t, srv.DSN(mariadbtest.AdminUser, "wrong", "")).PingContext(ctx)
	var myErr *mysql.MySQLError
	require.True(t, errors.As(err, &myErr), "%v", err)
	require.EqualValues(t, 1045, myErr.Number)
}

func TestBinariesMissing(t *testing.T) {
	t.Setenv("MARIADB_BIN", t.TempDir())
	_, _, err := mariadbtest.Binaries()
	require.Error(t, err)
	require.Contains(t, err.Error(), "mariadbd and mariadb-install-db not found")
	require.Contains(t, err.Error(), "apt-get install mariadb-server")
	_, err = mariadbtest.Start()
	require.ErrorContains(t, err, "mariadbd")
}

func TestStartStop(t *testing.T) {
	// a directory left by a test binary that died long ago, with no server running
	stale, err := os.MkdirTemp("", "mariadbtest-")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(stale, "mariadbd.pid"), []byte("999999999\n"), 0o644))
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))

	s, err := mariadbtest.Start()
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	require.NotEqual(t, srv.Port(), s.Port())
	require.NotEqual(t, srv.AdminPassword(), s.AdminPassword())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, open(t, s.AdminDSN()).PingContext(ctx))
	dir := s.Dir()
	require.True(t, strings.HasPrefix(filepath.Base(dir), "mariadbtest-"))
	require.NoError(t, s.Stop())
	stopped = true
	require.NoError(t, s.Stop(), "Stop is idempotent")
	require.Error(t, open(t, s.AdminDSN()).PingContext(ctx), "server is down after Stop")
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "Stop removed the directory")
	_, err = os.Stat(stale)
	require.True(t, os.IsNotExist(err), "Start removed the stale directory")
}
