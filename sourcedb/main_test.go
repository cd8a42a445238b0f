package sourcedb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/mariadbtest"
	"github.com/credsync/credsync/internal/pgtest"
)

// The tests run against real servers: a PostgreSQL 15 (internal/pgtest) and a MariaDB
// (internal/mariadbtest), both throwaway, started here for the whole binary.
var (
	pg  *pgtest.Server
	mdb *mariadbtest.Server
	// fixtures are the two engines' test set-ups, filled by TestMain.
	fixtures []*fixture
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	var err error
	if pg, err = pgtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, "FAIL: pgtest could not start PostgreSQL")
		return 1
	}
	defer func() { _ = pg.Stop() }()
	if mdb, err = mariadbtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, "FAIL: mariadbtest could not start MariaDB")
		return 1
	}
	defer func() { _ = mdb.Stop() }()
	pgf, err := setUpPostgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: set up PostgreSQL:", err)
		return 1
	}
	myf, err := setUpMariaDB()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: set up MariaDB:", err)
		return 1
	}
	fixtures = []*fixture{pgf, myf}
	return m.Run()
}

// fixture is one engine's test set-up: an admin login with only the privileges the engine
// needs, ways to create users and to log in that do not go through this package, and the
// server's statement log.
type fixture struct {
	engine   string
	adminDSN string
	adminPW  string
	// badAdminDSN is the admin DSN with another password.
	badAdminDSN func(password string) string
	// superExec runs statements as the server's superuser.
	superExec func(ctx context.Context, stmts ...string) error
	// createUser creates a login user with password (quoted by the server, not by this
	// package), dropped when t ends.
	createUser func(t *testing.T, user, password string)
	// rawLogin logs in with the driver directly and runs SELECT 1.
	rawLogin func(ctx context.Context, user, password string) error
	// serverLog is what the server logged of statements since the binary started.
	serverLog func(t *testing.T) string
	// isAuthErr says whether a rawLogin error is an authentication failure.
	isAuthErr func(error) bool
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ---- PostgreSQL

func pgExec(ctx context.Context, dsn string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// pgFormat has the server quote (format's %I and %L), so that the set-up does not depend on the
// quoting under test.
func pgFormat(ctx context.Context, format string, args ...any) (string, error) {
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var out string
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = fmt.Sprintf(", $%d::text", i+1)
	}
	err = conn.QueryRow(ctx, "SELECT format($"+strconv.Itoa(len(args)+1)+"::text"+strings.Join(ph, "")+")", append(args, format)...).Scan(&out)
	return out, err
}

func pgURL(user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.Port())), Path: "/postgres",
		RawQuery: "sslmode=disable&connect_timeout=10"}
	return u.String()
}

func setUpPostgres() (*fixture, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	super := pg.DSN("postgres")
	conn, err := pgx.Connect(ctx, super)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var data string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&data); err != nil {
		return nil, err
	}
	// pgtest trusts every login until RequirePasswords: these tests need passwords checked (the
	// superuser, pgtest's own DSN, keeps trust; everyone else gives SCRAM-SHA-256). And every
	// statement is logged, to show that no password reaches the log.
	// RequirePasswords reloads the configuration, the ALTER SYSTEM too, and waits for it.
	if err := pgExec(ctx, super, "ALTER SYSTEM SET log_statement = 'all'"); err != nil {
		return nil, err
	}
	if err := pg.RequirePasswords(); err != nil {
		return nil, err
	}
	adminPW := randomHex(16)
	if err := pgExec(ctx, super,
		// the rotation admin: CREATEROLE, not a superuser
		"CREATE ROLE credsync_admin LOGIN CREATEROLE PASSWORD '"+adminPW+"'",
	); err != nil {
		return nil, err
	}
	f := &fixture{
		engine:      Postgres,
		adminDSN:    pgURL("credsync_admin", adminPW),
		adminPW:     adminPW,
		badAdminDSN: func(pw string) string { return pgURL("credsync_admin", pw) },
		superExec:   func(ctx context.Context, stmts ...string) error { return pgExec(ctx, super, stmts...) },
		rawLogin: func(ctx context.Context, user, password string) error {
			cfg, err := pgx.ParseConfig(pgURL("x", "x"))
			if err != nil {
				return err
			}
			cfg.User, cfg.Password = user, password
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			var one int
			return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		},
		serverLog: func(t *testing.T) string {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(data), "postgres.log"))
			require.NoError(t, err)
			return string(b)
		},
		isAuthErr: func(err error) bool {
			return err != nil && (strings.Contains(err.Error(), "SQLSTATE 28P01") || strings.Contains(err.Error(), "SQLSTATE 28000"))
		},
	}
	f.createUser = func(t *testing.T, user, password string) {
		t.Helper()
		ctx := ctxT(t)
		create, err := pgFormat(ctx, "CREATE ROLE %I LOGIN PASSWORD %L", user, password)
		require.NoError(t, err)
		drop, err := pgFormat(ctx, "DROP ROLE IF EXISTS %I", user)
		require.NoError(t, err)
		require.NoError(t, f.superExec(ctx, drop, create))
		t.Cleanup(func() { require.NoError(t, f.superExec(context.Background(), drop)) })
	}
	if err := f.rawLogin(ctx, "credsync_admin", adminPW); err != nil {
		return nil, fmt.Errorf("the admin cannot log in: %w", err)
	}
	return f, nil
}

// ---- MariaDB

func myOpen(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// myQuoteServer has the server quote (QUOTE()), so that the set-up does not depend on the
// quoting under test. The set-up session has the default sql_mode.
func myQuoteServer(ctx context.Context, s string) (string, error) {
	db, err := myOpen(mdb.AdminDSN())
	if err != nil {
		return "", err
	}
	defer db.Close()
	var q string
	err = db.QueryRowContext(ctx, "SELECT QUOTE(?)", s).Scan(&q)
	return q, err
}

func setUpMariaDB() (*fixture, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adminPW := randomHex(16)
	generalLog := filepath.Join(mdb.Dir(), "general.log")
	if err := mdb.Exec(ctx,
		// the rotation admin: CREATE USER (which allows ALTER USER) and, for Check, reading mysql.user
		"CREATE USER 'credsync_admin'@'%' IDENTIFIED BY '"+adminPW+"'",
		"GRANT CREATE USER ON *.* TO 'credsync_admin'@'%'",
		"GRANT SELECT ON mysql.user TO 'credsync_admin'@'%'",
		// every statement is logged, to show that no password reaches the log
		"SET GLOBAL general_log_file = '"+generalLog+"'",
		"SET GLOBAL general_log = ON",
	); err != nil {
		return nil, err
	}
	f := &fixture{
		engine:      MySQL,
		adminDSN:    mdb.DSN("credsync_admin", adminPW, ""),
		adminPW:     adminPW,
		badAdminDSN: func(pw string) string { return mdb.DSN("credsync_admin", pw, "") },
		superExec:   mdb.Exec,
		rawLogin: func(ctx context.Context, user, password string) error {
			cfg := mysql.NewConfig()
			cfg.User, _ = account(user)
			cfg.Passwd = password
			cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(mdb.Port()))
			cfg.Logger = &mysql.NopLogger{}
			c, err := mysql.NewConnector(cfg)
			if err != nil {
				return err
			}
			db := sql.OpenDB(c)
			defer db.Close()
			var one int
			return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		},
		serverLog: func(t *testing.T) string {
			b, err := os.ReadFile(generalLog)
			require.NoError(t, err)
			return string(b)
		},
		isAuthErr: func(err error) bool {
			var myErr *mysql.MySQLError
			return errors.As(err, &myErr) && myErr.Number == 1045
		},
	}
	f.createUser = func(t *testing.T, user, password string) {
		t.Helper()
		ctx := ctxT(t)
		name, host := account(user)
		qn, err := myQuoteServer(ctx, name)
		require.NoError(t, err)
		qh, err := myQuoteServer(ctx, host)
		require.NoError(t, err)
		qp, err := myQuoteServer(ctx, password)
		require.NoError(t, err)
		drop := "DROP USER IF EXISTS " + qn + "@" + qh
		require.NoError(t, f.superExec(ctx, drop, "CREATE USER "+qn+"@"+qh+" IDENTIFIED BY "+qp))
		t.Cleanup(func() { require.NoError(t, f.superExec(context.Background(), drop)) })
	}
	if err := f.rawLogin(ctx, "credsync_admin", adminPW); err != nil {
		return nil, fmt.Errorf("the admin cannot log in: %w", err)
	}
	return f, nil
}
