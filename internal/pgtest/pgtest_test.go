package pgtest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/pgtest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

func TestNewDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dsn string
	t.Run("db", func(t *testing.T) {
		dsn = pg.NewDatabase(t)
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var version string
		require.NoError(t, conn.QueryRow(ctx, `SHOW server_version_num`).Scan(&version))
		require.GreaterOrEqual(t, version, "150000")
		_, err = conn.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`)
		require.NoError(t, err)
		var x int
		require.NoError(t, conn.QueryRow(ctx, `SELECT x FROM t`).Scan(&x))
		require.Equal(t, 1, x)
		var addr string
		require.NoError(t, conn.QueryRow(ctx, `SELECT host(inet_server_addr())`).Scan(&addr))
		require.Equal(t, "127.0.0.1", addr, "listens on loopback only")
		// the connection stays open: the drop at cleanup must terminate it
	})
	// the subtest's cleanup dropped its database
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 't%_db'`).Scan(&n))
	require.Zero(t, n, "database dropped at cleanup (dsn was %s)", dsn)
}

func TestDatabasesAreDistinct(t *testing.T) {
	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	require.NotEqual(t, a, b)
}

func TestStartStop(t *testing.T) {
	// a directory left by a test binary that died long ago, with no server running
	stale, err := os.MkdirTemp("", "pgtest-")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "data"), 0o700))
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))

	// a second, independent server: start, connect, stop, and the server is gone
	s, err := pgtest.Start()
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	require.NotEqual(t, pg.Port(), s.Port())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	require.NoError(t, err)
	require.NoError(t, conn.Ping(ctx))
	require.NoError(t, s.Stop())
	stopped = true
	require.NoError(t, s.Stop(), "Stop is idempotent")
	_ = conn.Close(ctx)
	_, err = pgx.Connect(ctx, s.DSN("postgres"))
	require.Error(t, err, "server is down after Stop")
	_, err = os.Stat(stale)
	require.True(t, os.IsNotExist(err), "Start removed the stale directory")
}

func TestPauseAndHalt(t *testing.T) {
	s, err := pgtest.Start()
	require.NoError(t, err)
	defer func() { _ = s.Stop() }()
	ctx := context.Background()
	dsn := s.DSN("postgres")
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)`)
	require.NoError(t, err)

	// Paused: an open connection's query and a new connection both go unanswered.
	require.NoError(t, s.Pause())
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = conn.Exec(qctx, `SELECT 1`)
	cancel()
	require.Error(t, err, "a paused server answers nothing")
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = pgx.Connect(cctx, dsn)
	cancel()
	require.Error(t, err)
	require.NoError(t, s.Resume())
	c2, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, "resumed")
	_ = c2.Close(ctx)

	// Halted: connection refused; restarted: same port, same data.
	require.NoError(t, s.Halt())
	_, err = pgx.Connect(ctx, dsn)
	require.ErrorContains(t, err, "connection refused")
	require.NoError(t, s.Restart())
	c3, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer func() { _ = c3.Close(ctx) }()
	var x int
	require.NoError(t, c3.QueryRow(ctx, `SELECT x FROM kept`).Scan(&x))
	require.Equal(t, 7, x, "the data survived the restart")
}

func TestRequirePasswords(t *testing.T) {
	s, err := pgtest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() }) // after NewDatabase's cleanup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	super, err := pgx.Connect(ctx, s.DSN("postgres"))
	require.NoError(t, err)
	defer func() { _ = super.Close(ctx) }()
	_, err = super.Exec(ctx, `CREATE ROLE app LOGIN PASSWORD 'right-password'`)
	require.NoError(t, err)
	login := func(password string) error {
		cfg, err := pgx.ParseConfig(s.DSN("postgres"))
		require.NoError(t, err)
		cfg.User, cfg.Password = "app", password
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_ = conn.Close(ctx)
		}
		return err
	}
	require.NoError(t, login("wrong"), "before: every login is trusted")

	require.NoError(t, s.RequirePasswords())
	require.ErrorContains(t, login("wrong"), "SQLSTATE 28P01", "a wrong password is refused")
	require.ErrorContains(t, login(""), "SQLSTATE 28P01")
	require.NoError(t, login("right-password"))
	db := s.NewDatabase(t) // the superuser still needs no password
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	_ = conn.Close(ctx)
	require.NoError(t, s.RequirePasswords(), "again: harmless")

	require.NoError(t, s.Halt())
	require.NoError(t, s.Restart())
	require.ErrorContains(t, login("wrong"), "SQLSTATE 28P01", "it lasts across a restart")
	require.NoError(t, login("right-password"))
}
