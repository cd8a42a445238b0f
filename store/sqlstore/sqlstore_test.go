package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/pgtest"
	"github.com/credsync/credsync/store/sqlstore"
	"github.com/credsync/credsync/store/storetest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(writerProcess(path, os.Getenv(writerEnv+"_ID")))
	}
	os.Exit(pgtest.Main(m, &pg))
}

// writerEnv makes the test binary a writer process of TestSQLiteTwoProcesses instead of running
// tests: it writes writerRotations rotations to the SQLite file named by the variable.
const (
	writerEnv       = "SQLSTORE_TEST_WRITER_DB"
	writerRotations = 25
)

// writeRotations creates n rotations of source "shared" with the given ID prefix and walks each
// through the writes a gateway makes.
func writeRotations(ctx context.Context, s *sqlstore.Store, prefix string, n int) error {
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rot_%s_%03d", prefix, i)
		r := &core.Rotation{ID: id, Source: "shared", Status: core.RotationRunning, CreatedAt: time.Now(),
			Targets: []core.TargetResult{{Name: "t", Status: core.TargetPending}}}
		if _, err := s.CreateRotation(ctx, core.NewRotation{Rotation: r, SealedCredential: []byte("x"),
			Owner: prefix, LeaseTTL: time.Minute, Actor: "job", IdempotencyKey: id, RequestHash: "h"}); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		tc := core.TargetClaim{Source: "shared", Target: "t", Seq: r.Seq, RotationID: id, Holder: id}
		if _, err := s.ClaimTarget(ctx, tc, time.Minute); err != nil {
			return err
		}
		r.Targets[0].Status = core.TargetSucceeded
		r.Status = core.RotationSucceeded
		if err := s.UpdateRotation(ctx, r); err != nil {
			return err
		}
		if err := s.AppendAudit(ctx, core.AuditEvent{At: time.Now(), Action: "rotation.finished", Source: "shared", RotationID: id}); err != nil {
			return err
		}
		if err := s.ReleaseTarget(ctx, tc, 0); err != nil {
			return err
		}
		if err := s.ReleaseLease(ctx, id, prefix); err != nil {
			return err
		}
		if err := s.DeleteCredential(ctx, id); err != nil {
			return err
		}
		if _, err := s.ClaimOrphans(ctx, prefix, time.Minute, 5); err != nil {
			return err
		}
	}
	return nil
}

func writerProcess(path, prefix string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if err := writeRotations(ctx, s, prefix, writerRotations); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openSQLite(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(ctxT(t), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPostgres(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenPostgres(ctxT(t), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "credsync.db"))
	})
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		return openPostgres(t, pg.NewDatabase(t))
	})
}

// both runs a test against a fresh SQLite file and a fresh PostgreSQL database. open opens
// another Store on the same database, as another process or replica would.
func both(t *testing.T, fn func(t *testing.T, open func() *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "credsync.db")
		fn(t, func() *sqlstore.Store { return openSQLite(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pg.NewDatabase(t)
		fn(t, func() *sqlstore.Store { return openPostgres(t, dsn) })
	})
}

func TestMigrations(t *testing.T) {
	both(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := ctxT(t)
		s1 := open()
		latest := s1.LatestSchemaVersion()
		require.GreaterOrEqual(t, latest, 1)
		want := make([]int, latest)
		for i := range want {
			want[i] = i + 1
		}
		v, err := s1.SchemaVersions(ctx)
		require.NoError(t, err)
		require.Equal(t, want, v, "every migration recorded once")
		r := &core.Rotation{ID: "rot_0001", Source: "a", Status: core.RotationRunning, CreatedAt: time.Now()}
		hit, err := s1.CreateRotation(ctx, core.NewRotation{Rotation: r})
		require.NoError(t, err)
		require.Nil(t, hit)
		require.NoError(t, s1.Close())
		require.NoError(t, s1.Close(), "Close twice is fine")

		// opening again migrates nothing and keeps the data
		s2 := open()
		v, err = s2.SchemaVersions(ctx)
		require.NoError(t, err)
		require.Equal(t, want, v)
		got, err := s2.GetRotation(ctx, "rot_0001")
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Seq)
	})
}

func TestConcurrentOpen(t *testing.T) {
	// replicas starting at once: every open succeeds and the schema is migrated once
	both(t, func(t *testing.T, open func() *sqlstore.Store) {
		const n = 4
		var wg sync.WaitGroup
		stores := make([]*sqlstore.Store, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("open %d: %v", i, r)
					}
				}()
				stores[i] = open()
			}(i)
		}
		wg.Wait()
		for _, s := range stores {
			require.NotNil(t, s)
		}
		v, err := stores[0].SchemaVersions(ctxT(t))
		require.NoError(t, err)
		require.Len(t, v, stores[0].LatestSchemaVersion())
	})
}

func TestTwoStoresWriteConcurrently(t *testing.T) {
	// two Store values on one database, as two gateway processes: concurrent writes all land,
	// sequence numbers stay unique, and each sees the other's writes
	both(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := ctxT(t)
		stores := []*sqlstore.Store{open(), open()}
		const perStore, perGoroutine = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, 2*perStore)
		for si, s := range stores {
			for g := 0; g < perStore; g++ {
				wg.Add(1)
				go func(prefix string, s *sqlstore.Store) {
					defer wg.Done()
					if err := writeRotations(ctx, s, prefix, perGoroutine); err != nil {
						errs <- err
					}
				}(fmt.Sprintf("s%d_g%d", si, g), s)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		const total = 2 * perStore * perGoroutine
		for _, s := range stores {
			rs, err := s.ListRotations(ctx, core.ListFilter{Limit: 1000})
			require.NoError(t, err)
			require.Len(t, rs, total)
			seqs := map[int64]bool{}
			for _, r := range rs {
				require.False(t, seqs[r.Seq], "seq %d given twice", r.Seq)
				seqs[r.Seq] = true
				require.Equal(t, core.RotationSucceeded, r.Status)
				require.True(t, r.Seq >= 1 && r.Seq <= total)
			}
			evs, err := s.ListAudit(ctx, core.AuditFilter{Limit: 1000})
			require.NoError(t, err)
			require.Len(t, evs, total)
		}
	})
}

func TestSQLiteTwoProcesses(t *testing.T) {
	// two writer processes and this one write to one SQLite file at the same time (each opening,
	// so migrating, it too): no SQLITE_BUSY, no lost write, unique seqs
	path := filepath.Join(t.TempDir(), "credsync.db")
	ctx := ctxT(t)
	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	for _, id := range []string{"p1", "p2"} {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path, writerEnv+"_ID="+id)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		procs, outs = append(procs, cmd), append(outs, out)
	}
	s := openSQLite(t, path)
	require.NoError(t, writeRotations(ctx, s, "p0", writerRotations))
	for i, cmd := range procs {
		require.NoError(t, cmd.Wait(), "writer process %d: %s", i+1, outs[i])
	}
	const total = 3 * writerRotations
	rs, err := s.ListRotations(ctx, core.ListFilter{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, rs, total)
	seqs := map[int64]bool{}
	for _, r := range rs {
		require.False(t, seqs[r.Seq], "seq %d given twice", r.Seq)
		seqs[r.Seq] = true
		require.Equal(t, core.RotationSucceeded, r.Status)
		_, err := s.SealedCredential(ctx, r.ID)
		require.ErrorIs(t, err, core.ErrNotFound)
	}
	require.Len(t, seqs, total)
	evs, err := s.ListAudit(ctx, core.AuditFilter{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, evs, total)
	v, err := s.SchemaVersions(ctx)
	require.NoError(t, err)
	require.Len(t, v, s.LatestSchemaVersion())
}

func TestSealedCredentialStoredAsGiven(t *testing.T) {
	// the store keeps the sealed bytes it is given, in the sealed_credential column, and
	// nothing else of the credential: what is on disk is exactly what the caller sealed
	path := filepath.Join(t.TempDir(), "credsync.db")
	s := openSQLite(t, path)
	ctx := ctxT(t)
	r := &core.Rotation{ID: "rot_0001", Source: "a", Status: core.RotationRunning, CreatedAt: time.Now()}
	_, err := s.CreateRotation(ctx, core.NewRotation{Rotation: r, SealedCredential: []byte("SEALED-BYTES")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var sealed []byte
	require.NoError(t, db.QueryRowContext(ctx, `SELECT sealed_credential FROM rotations WHERE id = 'rot_0001'`).Scan(&sealed))
	require.Equal(t, []byte("SEALED-BYTES"), sealed, "stored as given")
}

func TestSQLiteSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credsync.db")
	openSQLite(t, path)
	_, err := os.Stat(path + "-wal")
	require.NoError(t, err, "WAL mode leaves a -wal file beside the database")

	_, err = sqlstore.OpenSQLite(ctxT(t), "")
	require.Error(t, err)
	_, err = sqlstore.OpenSQLite(ctxT(t), ":memory:")
	require.Error(t, err, "an in-memory store would not be durable")
	_, err = sqlstore.OpenSQLite(ctxT(t), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	require.Error(t, err)
}

func TestOpen(t *testing.T) {
	ctx := ctxT(t)
	s, err := sqlstore.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "x.db"))
	require.NoError(t, err)
	require.Equal(t, "sqlite", s.Dialect())
	require.NoError(t, s.Close())
	s, err = sqlstore.Open(ctx, "postgres", pg.NewDatabase(t)+"&pool_max_conns=2")
	require.NoError(t, err)
	require.Equal(t, "postgres", s.Dialect())
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())
	require.Error(t, s.Ping(ctx), "closed")
	_, err = sqlstore.Open(ctx, "mysql", "x")
	require.Error(t, err)
	_, err = sqlstore.OpenPostgres(ctx, pg.DSN("postgres")+"&pool_max_conns=zero")
	require.Error(t, err)
}

func TestPostgresErrorsHideThePassword(t *testing.T) {
	ctx := ctxT(t)
	_, err := sqlstore.OpenPostgres(ctx, fmt.Sprintf("postgres://postgres:hunter2-secret@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=abc", pg.Port()))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2-secret")
	_, err = sqlstore.OpenPostgres(ctx, fmt.Sprintf("postgres://postgres:hunter2-secret@127.0.0.1:%d/no_such_db?sslmode=disable", pg.Port()))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2-secret")
}

func TestPostgresUsesDatabaseClock(t *testing.T) {
	// lease expiry is the database's arithmetic: the stored lease_until is within a second of
	// the database's now() + ttl
	ctx := ctxT(t)
	dsn := pg.NewDatabase(t)
	s := openPostgres(t, dsn)
	r := &core.Rotation{ID: "rot_0001", Source: "a", Status: core.RotationRunning, CreatedAt: time.Now()}
	_, err := s.CreateRotation(ctx, core.NewRotation{Rotation: r, Owner: "me", LeaseTTL: time.Hour})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var skew float64
	require.NoError(t, conn.QueryRow(ctx, `SELECT abs(lease_until / 1e6 - (EXTRACT(EPOCH FROM now()) + 3600))
		FROM rotations WHERE id = 'rot_0001'`).Scan(&skew))
	require.Less(t, skew, 5.0)
}

// TestPostgresWriteBatch: writes that queue up go to PostgreSQL as one batch (one transaction);
// a statement that fails aborts that transaction, and then each statement is sent alone, so the
// failure reaches its own caller only and the others still commit.
func TestPostgresWriteBatch(t *testing.T) {
	s := openPostgres(t, pg.NewDatabase(t))
	ctx := ctxT(t)
	audit := func(detail string) sqlstore.Stmt {
		return sqlstore.Stmt{SQL: `INSERT INTO audit_events (occurred_at, action, detail) VALUES (@now, 'test', $1)`, Args: []any{detail}}
	}
	count := func() int {
		evs, err := s.ListAudit(ctx, core.AuditFilter{})
		require.NoError(t, err)
		return len(evs)
	}

	ns, errs := sqlstore.WriteBatch(ctx, s, []sqlstore.Stmt{audit("a"), audit("b"), audit("c")})
	require.Equal(t, []error{nil, nil, nil}, errs)
	require.Equal(t, []int64{1, 1, 1}, ns)
	require.Equal(t, 3, count())

	// PostgreSQL text cannot hold a NUL byte: the second statement fails.
	ns, errs = sqlstore.WriteBatch(ctx, s, []sqlstore.Stmt{audit("d"), audit("bad\x00"), audit("e")})
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	require.NoError(t, errs[2])
	require.Equal(t, []int64{1, 0, 1}, ns)
	require.Equal(t, 5, count(), "the statements around the failed one are committed")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, errs = sqlstore.WriteBatch(canceled, s, []sqlstore.Stmt{audit("late")})
	require.ErrorIs(t, errs[0], context.Canceled, "a caller that gave up while queued is not written")
	require.Equal(t, 5, count())
}
