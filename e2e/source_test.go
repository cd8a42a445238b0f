package e2e_test

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/mariadbtest"
)

// Rotating at the source, end to end: the real binary rotates the users of a real PostgreSQL
// (pgtest, passwords required) and a real MariaDB (mariadbtest), each started by the tests as an
// unprivileged user in a temporary directory on a loopback port, and fans the generated password
// out to the fake vendors. What is checked is what the database and the vendors hold, by logging
// in with it (a real connection and a SELECT of a table the users were granted), not what
// credsync says.

const (
	ownedSource      = "owned"
	userA, userB     = "analytics_a", "analytics_b"
	ownedRetireAfter = 2 * time.Second
	// beyondRetire is long enough after a rotation for a retire it had scheduled to have run:
	// retire_after, then the next source tick (the gateway ticks every core.DefaultSourceTick).
	beyondRetire = ownedRetireAfter + core.DefaultSourceTick + time.Second
)

// ownedDB is one engine's source database: an admin login that may change the two users'
// passwords and nothing more, the users, and a table they may read.
type ownedDB struct {
	engine   string // the rotation's engine: postgres | mysql
	adminDSN string
	adminPW  string
	// reset gives both users a fresh password, as the DBA would before credsync rotates them.
	reset func(t *testing.T) (pwA, pwB string)
	// login logs in as user with password and reads the users' table.
	login func(ctx context.Context, user, password string) error
	// isAuthErr says whether a login error is the server refusing the password.
	isAuthErr func(error) bool
	// hold blocks every change of user's password until release; waiting returns the password
	// statements that wait on it, as the server shows them.
	hold func(t *testing.T, user string) (waiting func() []string, release func())
	// sets says whether a password statement the server showed sets password.
	sets func(t *testing.T, stmt, password string) bool
	// store is the gateway's store for this engine's tests, and a dump of everything in it.
	store func(t *testing.T) (driver, dsn string, dump func() string)
	// targets is the config of the source's targets (Felt has no MySQL connection).
	targets string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// forEachOwned runs test against PostgreSQL and MariaDB.
func forEachOwned(t *testing.T, test func(t *testing.T, db *ownedDB)) {
	for _, engine := range []string{"postgres", "mysql"} {
		t.Run(engine, func(t *testing.T) {
			var db *ownedDB
			var err error
			if engine == "postgres" {
				db, err = pgOwned()
			} else {
				db, err = mariaOwned()
			}
			require.NoError(t, err, "set up the %s source database", engine)
			test(t, db)
		})
	}
}

// ---- PostgreSQL: pgtest's server, made to require passwords; the store is a PostgreSQL too.

var (
	pgOwnedOnce sync.Once
	pgOwnedDB   *ownedDB
	pgOwnedErr  error
)

func pgOwned() (*ownedDB, error) {
	pgOwnedOnce.Do(func() { pgOwnedDB, pgOwnedErr = setUpPGOwned() })
	return pgOwnedDB, pgOwnedErr
}

func pgExecOn(ctx context.Context, dsn string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func pgURLFor(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.Port())),
		Path: "/" + db, RawQuery: "sslmode=disable&connect_timeout=10"}
	return u.String()
}

func setUpPGOwned() (*ownedDB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pg.RequirePasswords(); err != nil {
		return nil, err
	}
	adminPW := randomHex(16)
	// The hex passwords here are the set-up's own, known to the server log; credsync's are not.
	if err := pgExecOn(ctx, pg.DSN("postgres"),
		"CREATE ROLE credsync_owner LOGIN CREATEROLE PASSWORD '"+adminPW+"'", // not a superuser
		"CREATE ROLE "+userA+" LOGIN PASSWORD '"+randomHex(16)+"'",
		"CREATE ROLE "+userB+" LOGIN PASSWORD '"+randomHex(16)+"'",
		"CREATE DATABASE analytics",
	); err != nil {
		return nil, err
	}
	if err := pgExecOn(ctx, pg.DSN("analytics"),
		"CREATE TABLE events (n int)", "INSERT INTO events VALUES (42)",
		"GRANT SELECT ON events TO "+userA+", "+userB,
	); err != nil {
		return nil, err
	}
	return &ownedDB{
		engine:   "postgres",
		adminDSN: pgURLFor("credsync_owner", adminPW, "analytics"),
		adminPW:  adminPW,
		reset: func(t *testing.T) (string, string) {
			a, b := randomHex(16), randomHex(16)
			require.NoError(t, pgExecOn(ctxFor(t), pg.DSN("postgres"),
				"ALTER ROLE "+userA+" PASSWORD '"+a+"'", "ALTER ROLE "+userB+" PASSWORD '"+b+"'"))
			return a, b
		},
		login: func(ctx context.Context, user, password string) error {
			conn, err := pgx.Connect(ctx, pgURLFor(user, password, "analytics"))
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close(context.Background()) }()
			var n int
			if err := conn.QueryRow(ctx, "SELECT n FROM events").Scan(&n); err != nil {
				return err
			}
			if n != 42 {
				return fmt.Errorf("read %d", n)
			}
			return nil
		},
		isAuthErr: func(err error) bool {
			var pgErr *pgconn.PgError
			return errors.As(err, &pgErr) && pgErr.Code == "28P01"
		},
		// An open transaction that ran ALTER ROLE on the role holds its pg_authid row: every
		// other ALTER ROLE of it waits until that transaction ends.
		hold: func(t *testing.T, user string) (func() []string, func()) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
			require.NoError(t, err)
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, "ALTER ROLE "+user+" VALID UNTIL 'infinity'")
			require.NoError(t, err)
			var once sync.Once
			release := func() {
				once.Do(func() {
					_ = tx.Rollback(ctx)
					_ = conn.Close(ctx)
				})
			}
			t.Cleanup(release)
			waiting := func() []string {
				c, err := pgx.Connect(ctx, pg.DSN("postgres"))
				require.NoError(t, err)
				defer func() { _ = c.Close(ctx) }()
				rows, err := c.Query(ctx, `SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER ROLE%'`)
				require.NoError(t, err)
				qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				return qs
			}
			return waiting, release
		},
		sets: func(t *testing.T, stmt, password string) bool {
			return scramVerifies(t, stmt, password)
		},
		store: func(t *testing.T) (string, string, func() string) {
			dsn := pg.NewDatabase(t)
			return "postgres", dsn, func() string { return dumpPostgres(t, dsn) }
		},
		targets: `      - {platform: felt, name: felt, source_id: src_pg, connection_type: postgresql, poll_interval: 100ms}
      - {platform: databrain, name: databrain, datasource_type: postgres, fields: {host: 127.0.0.1, port: 5432, username: analytics_a, database: analytics, schema: public}}
      - {platform: rivergen, name: rivergen, data_source_id: 1}
`,
	}, nil
}

var scramRe = regexp.MustCompile(`E'SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)'`)

// scramVerifies checks the SCRAM-SHA-256 verifier of an ALTER ROLE ... PASSWORD statement
// against password, as PostgreSQL does at login (RFC 5802): StoredKey = H(HMAC(SaltedPassword,
// "Client Key")).
func scramVerifies(t *testing.T, stmt, password string) bool {
	m := scramRe.FindStringSubmatch(stmt)
	require.NotNil(t, m, "no SCRAM verifier in the statement")
	iter, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	salt, err := base64.StdEncoding.DecodeString(m[2])
	require.NoError(t, err)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	stored := sha256.Sum256(mac.Sum(nil))
	return base64.StdEncoding.EncodeToString(stored[:]) == m[3]
}

// ---- MariaDB: mariadbtest's server, started on first use; the store is SQLite.

var (
	mariaOnce sync.Once
	mariaSrv  *mariadbtest.Server
	mariaDB   *ownedDB
	mariaErr  error
)

// stopMariaDB stops the MariaDB server if a test started it (TestMain calls it).
func stopMariaDB() {
	if mariaSrv != nil {
		if err := mariaSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

func mariaOwned() (*ownedDB, error) {
	mariaOnce.Do(func() { mariaDB, mariaErr = setUpMariaOwned() })
	return mariaDB, mariaErr
}

func myOpenDSN(dsn string) (*sql.DB, error) {
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

func setUpMariaOwned() (*ownedDB, error) {
	var err error
	if mariaSrv, err = mariadbtest.Start(); err != nil {
		return nil, err
	}
	srv := mariaSrv
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adminPW := randomHex(16)
	if err := srv.Exec(ctx,
		"CREATE USER 'credsync_owner'@'%' IDENTIFIED BY '"+adminPW+"'",
		"GRANT CREATE USER ON *.* TO 'credsync_owner'@'%'", // which allows ALTER USER; not an admin
		"CREATE USER '"+userA+"'@'%' IDENTIFIED BY '"+randomHex(16)+"'",
		"CREATE USER '"+userB+"'@'%' IDENTIFIED BY '"+randomHex(16)+"'",
		"CREATE DATABASE analytics",
		"CREATE TABLE analytics.events (n INT)", "INSERT INTO analytics.events VALUES (42)",
		"GRANT SELECT ON analytics.* TO '"+userA+"'@'%'", "GRANT SELECT ON analytics.* TO '"+userB+"'@'%'",
	); err != nil {
		return nil, err
	}
	return &ownedDB{
		engine:   "mysql",
		adminDSN: srv.DSN("credsync_owner", adminPW, ""),
		adminPW:  adminPW,
		reset: func(t *testing.T) (string, string) {
			a, b := randomHex(16), randomHex(16)
			require.NoError(t, srv.Exec(ctxFor(t),
				"ALTER USER '"+userA+"'@'%' IDENTIFIED BY '"+a+"'", "ALTER USER '"+userB+"'@'%' IDENTIFIED BY '"+b+"'"))
			return a, b
		},
		login: func(ctx context.Context, user, password string) error {
			db, err := myOpenDSN(srv.DSN(user, password, "analytics"))
			if err != nil {
				return err
			}
			defer func() { _ = db.Close() }()
			var n int
			if err := db.QueryRowContext(ctx, "SELECT n FROM events").Scan(&n); err != nil {
				return err
			}
			if n != 42 {
				return fmt.Errorf("read %d", n)
			}
			return nil
		},
		isAuthErr: func(err error) bool {
			var myErr *mysql.MySQLError
			return errors.As(err, &myErr) && myErr.Number == 1045
		},
		// A session that locked the accounts table for writing: every ALTER USER waits for it.
		hold: func(t *testing.T, user string) (func() []string, func()) {
			ctx := context.Background()
			db, err := myOpenDSN(srv.AdminDSN())
			require.NoError(t, err)
			conn, err := db.Conn(ctx)
			require.NoError(t, err)
			_, err = conn.ExecContext(ctx, "LOCK TABLES mysql.global_priv WRITE")
			require.NoError(t, err)
			var once sync.Once
			release := func() {
				once.Do(func() {
					_, _ = conn.ExecContext(ctx, "UNLOCK TABLES")
					_ = conn.Close()
					_ = db.Close()
				})
			}
			t.Cleanup(release)
			waiting := func() []string {
				rows, err := db.QueryContext(ctx, `SELECT INFO FROM information_schema.PROCESSLIST
					WHERE INFO LIKE 'ALTER USER%' AND STATE LIKE 'Waiting%'`)
				require.NoError(t, err)
				defer func() { _ = rows.Close() }()
				var qs []string
				for rows.Next() {
					var q string
					require.NoError(t, rows.Scan(&q))
					if strings.Contains(q, "'"+user+"'") {
						qs = append(qs, q)
					}
				}
				require.NoError(t, rows.Err())
				return qs
			}
			return waiting, release
		},
		// MariaDB gets the mysql_native_password hash: "*" and hex of SHA1(SHA1(password)).
		sets: func(t *testing.T, stmt, password string) bool {
			h1 := sha1.Sum([]byte(password))
			h2 := sha1.Sum(h1[:])
			require.Contains(t, stmt, "IDENTIFIED BY PASSWORD '*")
			return strings.Contains(stmt, "'*"+strings.ToUpper(hex.EncodeToString(h2[:]))+"'")
		},
		store: func(t *testing.T) (string, string, func() string) {
			path := filepath.Join(t.TempDir(), "credsync.db")
			return "sqlite", path, func() string {
				var all strings.Builder
				for _, f := range []string{path, path + "-wal", path + "-shm"} {
					b, err := os.ReadFile(f)
					if os.IsNotExist(err) {
						continue
					}
					require.NoError(t, err)
					all.Write(b)
				}
				return all.String()
			}
		},
		targets: `      - {platform: databrain, name: databrain, datasource_type: mysql, fields: {host: 127.0.0.1, port: 3306, user: analytics_a}}
      - {platform: rivergen, name: rivergen, data_source_id: 1}
`,
	}, nil
}

// ---- the gateway, its fakes, and what they hold

// owned is one test's set-up: the fake vendors, a config rotating the source database, the
// gateways started on it, and every answer the test received.
type owned struct {
	db    *ownedDB
	s     *setup
	addr  string
	dump  func() string
	gws   []*gateway
	mu    sync.Mutex
	texts []string // every API answer received
}

func newOwned(t *testing.T, db *ownedDB, gate *hangGate) *owned {
	t.Helper()
	var wrap func(string, http.Handler) http.Handler
	if gate != nil {
		wrap = gate.wrap
	}
	fakes, err := demo.StartFakesWith(wrap)
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	if db.engine == "mysql" {
		fakes.Databrain.AddDatasource("databrain", "mysql")
	} else {
		fakes.Databrain.AddDatasource("databrain", "postgres")
	}
	driver, dsn, dump := db.store(t)
	o := &owned{db: db, s: &setup{fakes: fakes}, addr: freeAddr(t), dump: dump}
	env := fakes.Env(apiToken)
	env["CREDSYNC_ENCRYPTION_KEY"] = demo.NewKey()
	env["OWNED_ADMIN_DSN"] = db.adminDSN
	for k, v := range env {
		o.s.env = append(o.s.env, k+"="+v)
	}
	o.s.env = append(o.s.env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	// Short leases and vendor timeouts, as newSetup's: after a SIGKILL a target stays claimed
	// for 1.5 x timeout + 1 s.
	cfg := fmt.Sprintf(`server:
  listen: LISTEN
  api_tokens:
    - name: e2e
      token: ${CREDSYNC_API_TOKEN}
  rotation_deadline: 2m
store:
  driver: %s
  dsn: %q
  lease_ttl: 2s
platforms:
  felt: {vendor: felt, base_url: %s, token: "${FELT_API_TOKEN}", timeout: 3s}
  databrain: {vendor: databrain, base_url: %s, token: "${DATABRAIN_SERVICE_TOKEN}", timeout: 3s}
  rivergen: {vendor: rivergen, base_url: %s, token: "${RIVERGEN_ACCESS_TOKEN}", timeout: 3s}
sources:
  %s:
    rotation:
      engine: %s
      admin_dsn: ${OWNED_ADMIN_DSN}
      users: [%s, %s]
      retire_after: %s
    targets:
%s`, driver, dsn, fakes.URLs["felt"], fakes.URLs["databrain"], fakes.URLs["rivergen"],
		ownedSource, db.engine, userA, userB, ownedRetireAfter, db.targets)
	o.s.cfgPath = filepath.Join(t.TempDir(), "credsync.yaml")
	require.NoError(t, os.WriteFile(o.s.cfgPath, []byte(cfg), 0o600))
	return o
}

// start runs the replica (always the same one: replica-1 on the same address, config, store and
// key), with debug logs.
func (o *owned) start(t *testing.T) *gateway {
	t.Helper()
	g := o.s.start(t, "replica-1", o.addr)
	o.gws = append(o.gws, g)
	return g
}

func (o *owned) call(t *testing.T, g *gateway, method, path, body string) (int, []byte) {
	t.Helper()
	status, _, b := g.call(t, method, path, body, nil)
	o.mu.Lock()
	o.texts = append(o.texts, string(b))
	o.mu.Unlock()
	return status, b
}

const generateBody = `{"source":"` + ownedSource + `","generate":true}`

// generate rotates the source and waits for the rotation to end.
func (o *owned) generate(t *testing.T, g *gateway) *core.Rotation {
	t.Helper()
	status, b := o.call(t, g, "POST", "/v1/rotations?wait=30s", generateBody)
	require.Equal(t, http.StatusOK, status, "the rotation ended within the wait: %s\n%s", b, g.output())
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.NotNil(t, rot.SourceRotation, "%s", b)
	return &rot
}

func (o *owned) get(t *testing.T, g *gateway, id string) *core.Rotation {
	t.Helper()
	status, b := o.call(t, g, "GET", "/v1/rotations/"+id, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	return &rot
}

func (o *owned) waitFinished(t *testing.T, g *gateway, id string) *core.Rotation {
	t.Helper()
	var rot *core.Rotation
	require.Eventually(t, func() bool {
		rot = o.get(t, g, id)
		return rot.Status.Finished()
	}, 30*time.Second, 100*time.Millisecond, "rotation %s did not finish:\n%s", id, g.output())
	return rot
}

func (o *owned) waitPhase(t *testing.T, g *gateway, id, phase string, within time.Duration) *core.Rotation {
	t.Helper()
	var rot *core.Rotation
	require.Eventually(t, func() bool {
		rot = o.get(t, g, id)
		return rot.SourceRotation != nil && rot.SourceRotation.Phase == phase
	}, within, 100*time.Millisecond, "rotation %s did not reach phase %s:\n%s", id, phase, g.output())
	return rot
}

func (o *owned) source(t *testing.T, g *gateway) core.SourceView {
	t.Helper()
	status, b := o.call(t, g, "GET", "/v1/sources", "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var resp api.SourcesResponse
	require.NoError(t, json.Unmarshal(b, &resp))
	for _, s := range resp.Sources {
		if s.Name == ownedSource {
			require.NotNil(t, s.SourceStatus, "a rotating source shows its status")
			return s
		}
	}
	t.Fatalf("no source %s in %s", ownedSource, b)
	return core.SourceView{}
}

func (o *owned) auditActions(t *testing.T, g *gateway, id string) map[string]int {
	t.Helper()
	status, b := o.call(t, g, "GET", "/v1/audit?rotation_id="+id, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var resp api.AuditResponse
	require.NoError(t, json.Unmarshal(b, &resp))
	out := map[string]int{}
	for _, ev := range resp.Events {
		out[ev.Action]++
	}
	return out
}

// held is what one vendor holds for the source: the user and the password, read from the fake.
type held struct{ user, password string }

func (o *owned) held(t *testing.T) map[string]held {
	t.Helper()
	f := o.s.fakes
	out := map[string]held{}
	if o.db.engine == "postgres" {
		conn, ok := f.Felt.Connection("src_pg")
		require.True(t, ok)
		u, _ := conn["user"].(string)
		p, _ := conn["password"].(string)
		out["felt"] = held{u, p}
	}
	if creds, ok := f.Databrain.Credentials("databrain"); ok {
		u, _ := creds["username"].(string)
		if o.db.engine == "mysql" {
			u, _ = creds["user"].(string)
		}
		p, _ := creds["password"].(string)
		out["databrain"] = held{u, p}
	} else {
		out["databrain"] = held{}
	}
	rg, ok := f.RiverGen.Credentials(1)
	require.True(t, ok)
	out["rivergen"] = held{rg.Username, rg.Password}
	return out
}

// agreed requires every vendor to hold user and one same password, and returns it.
func (o *owned) agreed(t *testing.T, user string) string {
	t.Helper()
	h := o.held(t)
	var pw string
	for name, v := range h {
		require.Equal(t, user, v.user, "%s holds the staged user", name)
		require.NotEmpty(t, v.password, "%s holds a password", name)
		if pw == "" {
			pw = v.password
		}
		require.Equal(t, pw, v.password, "%s holds the password the others hold", name)
	}
	return pw
}

func (o *owned) requireLogin(t *testing.T, user, password, why string) {
	t.Helper()
	require.NoError(t, o.db.login(ctxFor(t), user, password), "%s logs in: %s", user, why)
}

func (o *owned) requireRefused(t *testing.T, user, password, why string) {
	t.Helper()
	err := o.db.login(ctxFor(t), user, password)
	require.True(t, o.db.isAuthErr(err), "%s is refused (%s); got %v", user, why, err)
}

// targetWant is a target's expected status and the user it holds.
type targetWant struct {
	status core.TargetStatus
	user   string
}

func requireTargets(t *testing.T, rot *core.Rotation, want map[string]targetWant) {
	t.Helper()
	require.Len(t, rot.Targets, len(want), "%+v", rot.Targets)
	for _, tr := range rot.Targets {
		require.Equal(t, want[tr.Name].status, tr.Status, "%s: %+v", tr.Name, tr)
		require.Equal(t, want[tr.Name].user, tr.User, "%s says which user it holds", tr.Name)
		if tr.Status == core.TargetSucceeded {
			require.True(t, tr.Verified, tr.Name)
		}
	}
}

// allTargets is every target of the engine's source with status, holding user.
func allTargets(db *ownedDB, status core.TargetStatus, user string) map[string]targetWant {
	names := []string{"databrain", "rivergen"}
	if db.engine == "postgres" {
		names = append(names, "felt")
	}
	out := map[string]targetWant{}
	for _, n := range names {
		out[n] = targetWant{status, user}
	}
	return out
}

// requireNoSecret looks for every secret, and every piece of PieceLen characters of one, in
// everything the gateways said: their logs (debug level), every API answer the test received,
// and now /metrics, /v1/audit and /v1/sources of the running gateway g; and in the store.
func (o *owned) requireNoSecret(t *testing.T, g *gateway, secrets ...string) {
	t.Helper()
	where := map[string]string{}
	for i, gw := range o.gws {
		where[fmt.Sprintf("the log of gateway process %d", i+1)] = gw.output()
	}
	_, b := o.call(t, g, "GET", "/v1/audit?limit=1000", "")
	require.Contains(t, string(b), "credential.staged")
	_, _ = o.call(t, g, "GET", "/v1/sources", "")
	resp, err := http.Get(g.base + "/metrics")
	require.NoError(t, err)
	m, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	where["/metrics"] = string(m)
	o.mu.Lock()
	where["the API answers"] = strings.Join(o.texts, "\n")
	o.mu.Unlock()
	where["the store"] = o.dump()
	require.Contains(t, where["the store"], ownedSource, "the store dump covers the rotations")
	for _, s := range secrets {
		require.GreaterOrEqual(t, len(s), core.PieceLen)
		for what, text := range where {
			for i := 0; i+core.PieceLen <= len(s); i++ {
				if strings.Contains(text, s[i:i+core.PieceLen]) {
					t.Fatalf("%s holds a piece of a secret (%q)", what, s[i:i+core.PieceLen])
				}
			}
		}
	}
}

// ---- the tests

// TestSourceRotation: the generated password reaches every vendor and logs in as the staged
// user; the previous user works until retire_at and is refused after; the next rotation goes
// back to the first user.
func TestSourceRotation(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		o := newOwned(t, db, nil)
		a0, b0 := db.reset(t)
		g := o.start(t)
		src := o.source(t, g)
		require.Equal(t, userA, src.ActiveUser, "before any rotation users[0] is active")

		rot := o.generate(t, g)
		sr := rot.SourceRotation
		require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
		require.Equal(t, userB, sr.User, "the user no target holds is staged")
		require.Equal(t, userA, sr.PreviousUser)
		require.Equal(t, core.PhaseRetiring, sr.Phase)
		require.NotNil(t, sr.RetireAt)
		requireTargets(t, rot, allTargets(db, core.TargetSucceeded, userB))

		pw := o.agreed(t, userB)
		checked := time.Now()
		o.requireLogin(t, userB, pw, "the staged user with the password every vendor holds")
		o.requireRefused(t, userB, b0, "the staged user's old password")
		o.requireLogin(t, userA, a0, "the previous user, until retire_at")
		require.True(t, checked.Before(*sr.RetireAt), "checked before retire_at (%s)", sr.RetireAt)
		src = o.source(t, g)
		require.Equal(t, userB, src.ActiveUser)
		require.Equal(t, userA, src.RetireUser)

		done := o.waitPhase(t, g, rot.ID, core.PhaseDone, beyondRetire+5*time.Second)
		require.NotNil(t, done.SourceRotation.RetiredAt)
		require.False(t, done.SourceRotation.RetiredAt.Before(*sr.RetireAt), "retired at %s, not before retire_at %s",
			done.SourceRotation.RetiredAt, sr.RetireAt)
		o.requireRefused(t, userA, a0, "the previous user, after its retire")
		o.requireLogin(t, userB, pw, "the staged user, after the retire")
		actions := o.auditActions(t, g, rot.ID)
		require.Equal(t, 1, actions["credential.staged"], "%v", actions)
		require.Equal(t, 1, actions["credential.retired"], "%v", actions)
		src = o.source(t, g)
		require.Equal(t, userB, src.ActiveUser)
		require.Empty(t, src.RetireUser)

		// The next rotation stages the retired user again: a new password, set on it.
		next := o.generate(t, g)
		require.Equal(t, core.RotationSucceeded, next.Status, "%+v", next.Targets)
		require.Equal(t, userA, next.SourceRotation.User)
		require.Equal(t, userB, next.SourceRotation.PreviousUser)
		pw2 := o.agreed(t, userA)
		require.NotEqual(t, pw, pw2)
		o.requireLogin(t, userA, pw2, "the user staged again")
		o.requireLogin(t, userB, pw, "the previous user, until its retire")
		require.Equal(t, userA, o.source(t, g).ActiveUser)

		o.requireNoSecret(t, g, pw, pw2, db.adminPW)
	})
}

// TestSourceRotationPartialRetiresNothing: one target refuses; the rotation is partial, says
// which target holds which user, and nothing is retired however long one waits; a new rotation
// is refused; a retry that completes it starts the retire clock.
func TestSourceRotationPartialRetiresNothing(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		o := newOwned(t, db, nil)
		a0, _ := db.reset(t)
		rg := o.s.fakes.RiverGen
		rg.SetFault(fakeutil.When(fakeutil.Method(http.MethodPatch), fakeutil.Status(http.StatusBadRequest, "",
			`{"success":false,"error":{"code":"BAD_REQUEST","message":"refused by the test"},"message":"refused by the test"}`, 0)))
		g := o.start(t)

		rot := o.generate(t, g)
		require.Equal(t, core.RotationPartial, rot.Status, "%+v", rot.Targets)
		require.Equal(t, core.PhasePropagating, rot.SourceRotation.Phase, "the barrier holds: no retire is scheduled")
		require.Nil(t, rot.SourceRotation.RetireAt)
		want := allTargets(db, core.TargetSucceeded, userB)
		want["rivergen"] = targetWant{core.TargetFailed, userA}
		requireTargets(t, rot, want)

		h := o.held(t)
		pw := h["databrain"].password
		require.NotEmpty(t, pw)
		for name, v := range h {
			if name == "rivergen" {
				require.Empty(t, v.password, "RiverGen refused the update: it holds nothing new")
				continue
			}
			require.Equal(t, held{userB, pw}, v, name)
		}
		o.requireLogin(t, userB, pw, "the staged user, for the targets that took it")
		o.requireLogin(t, userA, a0, "the previous user, for the target still on it")

		status, b := o.call(t, g, "POST", "/v1/rotations", generateBody)
		require.Equal(t, http.StatusConflict, status, "targets hold both users: a new rotation would break one: %s", b)
		src := o.source(t, g)
		require.ElementsMatch(t, []string{userA, userB}, src.InUse)
		require.Empty(t, src.RetireUser)

		time.Sleep(beyondRetire) // well past retire_after, and past a source tick
		o.requireLogin(t, userA, a0, "nothing is retired while a target holds the previous user")
		again := o.get(t, g, rot.ID)
		require.Equal(t, core.PhasePropagating, again.SourceRotation.Phase)
		require.Nil(t, again.SourceRotation.RetiredAt)

		rg.SetFault(nil)
		status, b = o.call(t, g, "POST", "/v1/rotations/"+rot.ID+"/retry", "")
		require.Equal(t, http.StatusAccepted, status, "%s", b)
		final := o.waitFinished(t, g, rot.ID)
		require.Equal(t, core.RotationSucceeded, final.Status, "%+v", final.Targets)
		requireTargets(t, final, allTargets(db, core.TargetSucceeded, userB))
		require.Equal(t, pw, o.agreed(t, userB), "the retry sent the same password")
		require.Contains(t, []string{core.PhaseRetiring, core.PhaseDone}, final.SourceRotation.Phase)
		require.NotNil(t, final.SourceRotation.RetireAt, "the retry completed it: the retire clock started")

		o.waitPhase(t, g, rot.ID, core.PhaseDone, beyondRetire+5*time.Second)
		o.requireRefused(t, userA, a0, "the previous user, retired once the retry completed the rotation")
		o.requireLogin(t, userB, pw, "the staged user")
		require.Equal(t, []string{userB}, o.source(t, g).InUse)

		o.requireNoSecret(t, g, pw, db.adminPW)
	})
}

// TestSourceRotationKilledInStaging: the password statement waits on a lock held in the
// database; the gateway is SIGKILLed with it waiting, and restarted: it stages again, with the
// sealed password (the very one the killed gateway was setting), and completes.
func TestSourceRotationKilledInStaging(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		o := newOwned(t, db, nil)
		a0, _ := db.reset(t)
		waiting, release := db.hold(t, userB)
		g1 := o.start(t)
		status, b := o.call(t, g1, "POST", "/v1/rotations", generateBody)
		require.Equal(t, http.StatusAccepted, status, "%s", b)
		var rot core.Rotation
		require.NoError(t, json.Unmarshal(b, &rot))

		var killed []string
		require.Eventually(t, func() bool { killed = waiting(); return len(killed) == 1 }, 20*time.Second, 20*time.Millisecond,
			"the gateway's password statement never waited on the lock:\n%s", g1.output())
		left := o.get(t, g1, rot.ID)
		require.Equal(t, core.PhaseStaging, left.SourceRotation.Phase)
		require.False(t, left.Status.Finished())
		f := o.s.fakes
		require.Empty(t, f.Felt.Requests(), "no target is called before the password is staged")
		require.Empty(t, f.Databrain.Requests())
		require.Empty(t, f.RiverGen.Requests())
		g1.kill(t)

		g2 := o.start(t)
		require.Eventually(t, func() bool { return strings.Contains(g2.output(), "resuming rotation") }, 10*time.Second, 20*time.Millisecond)
		// The killed gateway's statement still waits (its server session does not know its client
		// died), and the restarted gateway's waits behind it.
		require.Eventually(t, func() bool { return len(waiting()) == 2 }, 20*time.Second, 20*time.Millisecond,
			"the restarted gateway stages again:\n%s", g2.output())
		require.Equal(t, core.PhaseStaging, o.get(t, g2, rot.ID).SourceRotation.Phase)
		require.Empty(t, f.RiverGen.Requests())
		release()

		final := o.waitFinished(t, g2, rot.ID)
		require.Equal(t, core.RotationSucceeded, final.Status, "%+v", final.Targets)
		requireTargets(t, final, allTargets(db, core.TargetSucceeded, userB))
		pw := o.agreed(t, userB)
		require.True(t, db.sets(t, killed[0], pw), "the killed gateway was setting the very password every target holds: the sealed one")
		require.False(t, db.sets(t, killed[0], pw[1:]+pw[:1]), "the check tells passwords apart")
		o.requireLogin(t, userB, pw, "the database and every target agree on one password")
		o.requireLogin(t, userA, a0, "the previous user, until its retire")

		o.requireNoSecret(t, g2, pw, db.adminPW)
	})
}

// TestSourceRotationKilledInPropagating: SIGKILL with a RiverGen call in flight, restart: the
// rotation completes with the staged password, and the previous user is retired after.
func TestSourceRotationKilledInPropagating(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		gate := newHangGate()
		o := newOwned(t, db, gate)
		a0, _ := db.reset(t)
		g1 := o.start(t)
		status, b := o.call(t, g1, "POST", "/v1/rotations", generateBody)
		require.Equal(t, http.StatusAccepted, status, "%s", b)
		var rot core.Rotation
		require.NoError(t, json.Unmarshal(b, &rot))
		waitArrived(t, gate, g1)
		require.Equal(t, core.PhasePropagating, o.get(t, g1, rot.ID).SourceRotation.Phase)
		g1.kill(t) // SIGKILL with the RiverGen call in flight
		close(gate.release)

		g2 := o.start(t)
		final := o.waitFinished(t, g2, rot.ID)
		require.Equal(t, core.RotationSucceeded, final.Status, "%+v", final.Targets)
		requireTargets(t, final, allTargets(db, core.TargetSucceeded, userB))
		patches, maxInflight := gate.stats()
		require.Equal(t, 2, patches, "the interrupted RiverGen update is sent again after the restart")
		require.Equal(t, 1, maxInflight)
		pw := o.agreed(t, userB)
		o.requireLogin(t, userB, pw, "the staged password, which every target holds")
		o.requireLogin(t, userA, a0, "the previous user, until its retire")
		require.Contains(t, o.auditActions(t, g2, rot.ID), "rotation.resumed")

		o.waitPhase(t, g2, rot.ID, core.PhaseDone, beyondRetire+5*time.Second)
		o.requireRefused(t, userA, a0, "the previous user, after its retire")
		o.requireLogin(t, userB, pw, "the staged user")

		o.requireNoSecret(t, g2, pw, db.adminPW)
	})
}

// TestSourceRotationKilledInRetiring: SIGKILL after the rotation succeeded and before
// retire_at, down past retire_at: nobody retires the previous user meanwhile, and the restarted
// gateway retires it at start.
func TestSourceRotationKilledInRetiring(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		o := newOwned(t, db, nil)
		a0, _ := db.reset(t)
		g1 := o.start(t)
		rot := o.generate(t, g1)
		require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
		require.Equal(t, core.PhaseRetiring, rot.SourceRotation.Phase)
		retireAt := *rot.SourceRotation.RetireAt
		g1.kill(t)
		require.True(t, time.Now().Before(retireAt), "killed before retire_at")
		pw := o.agreed(t, userB)

		time.Sleep(time.Until(retireAt) + time.Second)
		o.requireLogin(t, userA, a0, "past retire_at with the gateway down: nobody retired it")

		restarted := time.Now()
		g2 := o.start(t)
		done := o.waitPhase(t, g2, rot.ID, core.PhaseDone, 10*time.Second)
		took := time.Since(restarted)
		require.Less(t, took, core.DefaultSourceTick, "the retire that fell due while the gateway was down runs at start, not a tick later")
		require.False(t, done.SourceRotation.RetiredAt.Before(retireAt))
		o.requireRefused(t, userA, a0, "the previous user, retired at start")
		o.requireLogin(t, userB, pw, "the staged user")
		require.Equal(t, 1, o.auditActions(t, g2, rot.ID)["credential.retired"])
		src := o.source(t, g2)
		require.Equal(t, userB, src.ActiveUser)
		require.Empty(t, src.RetireUser)
		t.Logf("retired %s after the restart", took.Round(time.Millisecond))

		o.requireNoSecret(t, g2, pw, db.adminPW)
	})
}

// credsync check reaches the source database of a source credsync rotates itself: ready with
// the admin login, unauthorized with a wrong admin password (which it does not print), not_found
// for a user the database does not have.
func TestCheckReachesTheSourceDatabase(t *testing.T) {
	forEachOwned(t, func(t *testing.T, db *ownedDB) {
		o := newOwned(t, db, nil)
		cfg, err := os.ReadFile(o.s.cfgPath)
		require.NoError(t, err)
		base := strings.Replace(string(cfg), "listen: LISTEN\n", "listen: 127.0.0.1:1\n", 1)
		check := func(t *testing.T, text string, env ...string) checkReportRow {
			t.Helper()
			r, out := sourceCheck(t, text, append(append([]string(nil), o.s.env...), env...))
			require.Equal(t, ownedSource, r.Source)
			require.Equal(t, db.engine, r.Vendor)
			require.NotContains(t, out, db.adminPW, "the admin password is never printed")
			return r
		}
		r := check(t, base)
		if db.engine == "mysql" {
			// The e2e admin has CREATE USER only (all rotating needs): it may not read
			// mysql.user, so the check cannot prove the users exist, and says so.
			require.Equal(t, core.CheckUnknown, r.Status, r.Message)
			require.Contains(t, r.Message, "GRANT SELECT ON mysql.user")
		} else {
			require.Equal(t, core.CheckReady, r.Status, r.Message)
		}

		wrong := "Wrong-" + randomHex(8)
		r = check(t, base, "OWNED_ADMIN_DSN="+strings.Replace(db.adminDSN, db.adminPW, wrong, 1))
		require.Equal(t, core.CheckUnauthorized, r.Status, r.Message)
		require.NotContains(t, r.Message, wrong)

		if db.engine == "postgres" { // MySQL's not_found needs SELECT on mysql.user: sourcedb's tests
			r = check(t, strings.Replace(base, "users: ["+userA+", "+userB+"]", "users: ["+userA+", nobody_here]", 1))
			require.Equal(t, core.CheckNotFound, r.Status, r.Message)
			require.Contains(t, r.Message, "nobody_here")
		}
	})
}

// sourceCheck runs credsync check on a config text (its listen: LISTEN made an address) and
// returns the source database's row and everything the command printed.
func sourceCheck(t *testing.T, text string, env []string) (checkReportRow, string) {
	t.Helper()
	text = strings.Replace(text, "listen: LISTEN\n", "listen: 127.0.0.1:1\n", 1)
	path := filepath.Join(t.TempDir(), "check.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	cmd := exec.Command(binary, "check", "--config", path, "--output", "json", "--timeout", "20s")
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // exits 1 when any check is not ready; the rows say which
	var rep struct {
		Targets []checkReportRow `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &rep), "stdout %s\nstderr %s", stdout.String(), stderr.String())
	for _, r := range rep.Targets {
		if r.Target == "(source database)" {
			return r, stdout.String() + stderr.String()
		}
	}
	t.Fatalf("no source database row in %s", stdout.String())
	return checkReportRow{}, ""
}

// checkReportRow is one row of credsync check --output json.
type checkReportRow struct {
	Source  string           `json:"source"`
	Target  string           `json:"target"`
	Vendor  string           `json:"vendor"`
	Status  core.CheckStatus `json:"status"`
	Message string           `json:"message"`
}
