package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"modernc.org/sqlite"
)

//go:embed migrations
var migrationFiles embed.FS

// Store is a core.Store on SQLite or PostgreSQL. It is safe for concurrent use by many
// goroutines and by several processes sharing one database.
type Store struct {
	b         backend
	dialect   dialect
	where     string // the database, for messages: a path, or host:port/database
	closeOnce sync.Once
	closeErr  error
}

// DefaultMaxConns is how many PostgreSQL connections a Store opens at most, unless the DSN names
// pool_max_conns (pgxpool's parameter; its other pool_* parameters work too).
const DefaultMaxConns = 10

// SQLiteBusyTimeoutMS is how long a SQLite write waits for another process's write lock.
const SQLiteBusyTimeoutMS = 10000

// Open opens the store named by driver, "sqlite" (dsn: a file path) or "postgres" (dsn: a
// PostgreSQL connection string, URL or key=value).
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	switch driver {
	case "sqlite", "sqlite3":
		return OpenSQLite(ctx, dsn)
	case "postgres", "postgresql", "pgx":
		return OpenPostgres(ctx, dsn)
	default:
		return nil, fmt.Errorf("sqlstore: unknown driver %q (want sqlite or postgres)", driver)
	}
}

// OpenSQLite opens (creating it if needed) the SQLite database file at path and migrates it to
// the latest schema. The connection runs in WAL mode with synchronous=FULL (a committed write
// survives power loss), foreign keys on, a busy timeout for other processes' writes, and write
// transactions that take the write lock at BEGIN (BEGIN IMMEDIATE), so two writers never
// deadlock upgrading a read lock.
//
// A new file is created readable and writable by its owner only (0600; SQLite gives the -wal
// and -shm files the same mode); an existing one keeps its mode. Connections never create the
// file (SQLite's mode=rw): once it is open, a deleted, moved or replaced file makes every call
// fail with core.ErrStoreUnavailable (see sqliteFile) instead of writing into a file that is
// gone or not the one opened.
func OpenSQLite(ctx context.Context, filePath string) (*Store, error) {
	if filePath == "" || filePath == ":memory:" {
		return nil, errors.New("sqlstore: sqlite needs a file path (an in-memory database would not be durable)")
	}
	p, query := splitSQLiteDSN(filePath)
	if p == "" || p == ":memory:" {
		return nil, errors.New("sqlstore: sqlite needs a file path (an in-memory database would not be durable)")
	}
	file := newSQLiteFile(p)
	if err := file.createPrivate(); err != nil {
		return nil, fmt.Errorf("sqlstore: create sqlite %s: %w", p, err)
	}
	params := "mode=rw&_txlock=immediate" +
		"&_busy_timeout=" + strconv.Itoa(SQLiteBusyTimeoutMS) +
		"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1"
	if query != "" {
		params = query + "&" + params
	}
	conn, err := sqlite.NewConnector(sqliteURI(p) + "?" + params)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", p, err)
	}
	db := sql.OpenDB(checkedConnector{Connector: conn, file: file})
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	sb := newSQLiteBackend(db, file)
	s := &Store{b: classifying{backend: sb, classify: file.classify}, dialect: dialectSQLite, where: "the SQLite file " + file.abs}
	if err := s.b.ping(ctx); err != nil {
		_ = s.b.close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", p, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.b.close()
		return nil, fmt.Errorf("sqlstore: sqlite %s: %w", p, err)
	}
	sb.enableStmts()
	if err := file.record(); err != nil {
		_ = s.b.close()
		return nil, fmt.Errorf("sqlstore: sqlite %s: %w", p, err)
	}
	return s, nil
}

// splitSQLiteDSN splits store.dsn into the file path and the query string it may carry (extra
// driver parameters); a file: URI gives its path.
func splitSQLiteDSN(dsn string) (filePath, query string) {
	if strings.HasPrefix(dsn, "file:") {
		if u, err := url.Parse(dsn); err == nil {
			filePath = u.Path
			if filePath == "" {
				filePath = u.Opaque
			}
			return filePath, u.RawQuery
		}
	}
	filePath, query, _ = strings.Cut(dsn, "?")
	return filePath, query
}

// sqliteURI is the file: URI of a path, as SQLite reads it (RFC 3986 percent-escapes).
func sqliteURI(filePath string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filePath)
}

// OpenPostgres connects to PostgreSQL and migrates the database to the latest schema (under
// an advisory lock, so replicas starting together migrate once).
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse error quotes the DSN with the password redacted only on a best-effort
		// basis: keep the DSN out of the message and give only the underlying cause.
		if cause := errors.Unwrap(err); cause != nil {
			return nil, fmt.Errorf("sqlstore: postgres: cannot parse the connection string: %w", cause)
		}
		return nil, errors.New("sqlstore: postgres: cannot parse the connection string")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: postgres: %w", err)
	}
	cc := cfg.ConnConfig
	where := fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
	pgw := pgWhere(&cc.Config)
	s := &Store{b: classifying{backend: newPGBackend(pool), classify: func(err error) error { return classifyPG(pgw, err) }},
		dialect: dialectPostgres, where: pgw}
	if err := s.b.ping(ctx); err != nil {
		_ = s.b.close()
		return nil, fmt.Errorf("sqlstore: postgres %s: %w", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.b.close()
		return nil, fmt.Errorf("sqlstore: postgres %s: %w", where, err)
	}
	return s, nil
}

// Dialect names the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.String() }

// Where names the database for people: "the SQLite file /abs/path" or "the PostgreSQL store at
// host:port/database" (never a password).
func (s *Store) Where() string { return s.where }

// Close releases the database connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.b.close() })
	if s.closeErr != nil {
		return fmt.Errorf("sqlstore: close: %w", s.closeErr)
	}
	return nil
}

// migration is one embedded schema file, migrations/<dialect>/NNNN_name.sql.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the dialect's migrations in version order.
func (d dialect) migrations() ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), stmts: splitSQL(string(body))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// splitSQL splits a migration file into statements: "--" comment lines are dropped, and
// statements end with ";" (migration files hold no ";" inside a statement).
func splitSQL(body string) []string {
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, st := range strings.Split(b.String(), ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// migrationLockKey is the pg_advisory_xact_lock key that serializes migrations of replicas
// starting at once ("credsync" in ASCII, as a number).
const migrationLockKey = 0x6372656473796e63

// migrate applies the migrations not yet recorded in schema_migrations, all in one transaction.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.dialect.migrations()
	if err != nil {
		return err
	}
	return s.b.inTx(ctx, func(q querier) error {
		if s.dialect == dialectPostgres {
			if _, err := q.exec(ctx, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(migrationLockKey, 10)+")"); err != nil {
				return fmt.Errorf("migrate: take the migration lock: %w", err)
			}
		}
		if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		applied, err := appliedVersions(ctx, q)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			for i, st := range m.stmts {
				if _, err := q.exec(ctx, st); err != nil {
					return fmt.Errorf("migrate: %s statement %d: %w", m.name, i+1, err)
				}
			}
			if _, err := q.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, @now)`,
				m.version, m.name); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.name, err)
			}
		}
		return nil
	})
}

func appliedVersions(ctx context.Context, q querier) ([]int, error) {
	rs, err := q.query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rs.Close()
	var out []int
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// SchemaVersions returns the migration versions applied to the database, ascending.
func (s *Store) SchemaVersions(ctx context.Context) ([]int, error) {
	v, err := appliedVersions(ctx, s.b)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return v, nil
}

// LatestSchemaVersion is the highest migration version this build carries for the store's
// dialect.
func (s *Store) LatestSchemaVersion() int {
	ms, err := s.dialect.migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}
