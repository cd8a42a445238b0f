package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/sqlstore"
)

// storeAtVersion makes a database of dialect with the schema migrations 1..version applied, as
// a binary of that version left it, and returns it with a function that opens it as the current
// binary does (migrating it to the newest schema).
func storeAtVersion(t *testing.T, dialect string, version int) (*sql.DB, func() *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	var db *sql.DB
	var open func() *sqlstore.Store
	if dialect == "sqlite" {
		path := filepath.Join(t.TempDir(), "old.db")
		var err error
		db, err = sql.Open("sqlite", path)
		require.NoError(t, err)
		open = func() *sqlstore.Store {
			s, err := sqlstore.OpenSQLite(ctx, path)
			require.NoError(t, err)
			return s
		}
	} else {
		dsn := pg.NewDatabase(t)
		var err error
		db, err = sql.Open("pgx", dsn)
		require.NoError(t, err)
		open = func() *sqlstore.Store {
			s, err := sqlstore.OpenPostgres(ctx, dsn)
			require.NoError(t, err)
			return s
		}
	}
	stmts, names, err := sqlstore.MigrationStatements(dialect, version)
	require.NoError(t, err)
	require.Len(t, stmts, version)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`)
	require.NoError(t, err)
	for i, m := range stmts {
		for _, st := range m {
			_, err := db.ExecContext(ctx, st)
			require.NoError(t, err, "%s: %s", names[i], st)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)`, i+1, names[i])
		require.NoError(t, err)
	}
	return db, open
}

// TestMigration5Backfills: a database written by schema 4 gets its targets' status column and
// each target's last finished outcome from the history already there.
func TestMigration5Backfills(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			db, open := storeAtVersion(t, dialect, 4)
			targets := `[]`
			if dialect == "postgres" {
				targets = `'[]'::jsonb`
			} else {
				targets = `'[]'`
			}
			for i, r := range []struct{ id, status, a, b string }{
				{"rot_0001", "partial", `{"name":"a","status":"succeeded"}`, `{"name":"b","status":"failed"}`},
				{"rot_0002", "running", `{"name":"a","status":"failed"}`, `{"name":"b","status":"running"}`},
			} {
				_, err := db.ExecContext(ctx, `INSERT INTO rotations (id, source, seq, status, created_at, actor, credential_type, targets)
					VALUES ($1, 's', $2, $3, 1, '', 'password', `+targets+`)`, r.id, i+1, r.status)
				require.NoError(t, err)
				for idx, st := range []string{r.a, r.b} {
					_, err := db.ExecContext(ctx, `INSERT INTO rotation_targets (rotation_id, idx, state) VALUES ($1, $2, $3)`, r.id, idx, st)
					require.NoError(t, err)
				}
			}
			require.NoError(t, db.Close())

			s := open()
			defer func() { _ = s.Close() }()
			lo, err := s.LastOutcomes(ctx)
			require.NoError(t, err)
			require.Equal(t, "rot_0002", lo["s"]["a"].RotationID, "the newest finished outcome")
			require.Equal(t, core.TargetFailed, lo["s"]["a"].Status)
			require.Equal(t, "rot_0001", lo["s"]["b"].RotationID, "b is still running in the newer one")
			p, err := s.GetRotationPage(ctx, "rot_0002", core.TargetPage{Status: core.TargetRunning})
			require.NoError(t, err)
			require.Len(t, p.Targets, 1, "the status column was filled from the stored states")
			require.Equal(t, map[core.TargetStatus]int{core.TargetFailed: 1, core.TargetRunning: 1}, p.TargetCounts)
		})
	}
}

// TestMigration10MovesLastOutcomesIntoColumns: the last outcomes a schema-9 binary kept as each
// target's whole state JSON read back, after the migration, exactly as that JSON said (status,
// verified, finished_at to the nanosecond, the error). (Writes after it: storetest's
// LastOutcomes case.)
func TestMigration10MovesLastOutcomesIntoColumns(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			db, open := storeAtVersion(t, dialect, 9)
			fin := time.Date(2026, 11, 30, 9, 15, 42, 123456789, time.UTC)
			states := map[string]core.TargetResult{
				"ok":      {Name: "ok", Platform: "p", Vendor: "rivergen", Status: core.TargetSucceeded, Verified: true, Attempts: 1, FinishedAt: &fin},
				"failed":  {Name: "failed", Platform: "p", Vendor: "felt", Status: core.TargetFailed, Attempts: 3, FinishedAt: &fin, Error: &core.Error{Code: "vendor_rejected", Message: "HTTP 422: nope", VendorStatus: 422}},
				"skipped": {Name: "skipped", Platform: "p", Vendor: "felt", Status: core.TargetSuperseded},
			}
			for name, st := range states {
				b, err := json.Marshal(st)
				require.NoError(t, err)
				_, err = db.ExecContext(ctx, `INSERT INTO target_last (source, target, seq, rotation_id, state) VALUES ('s', $1, 1, 'rot_0001', $2)`, name, string(b))
				require.NoError(t, err)
			}
			require.NoError(t, db.Close())

			s := open()
			defer func() { _ = s.Close() }()
			lo, err := s.LastOutcomes(ctx)
			require.NoError(t, err)
			require.Len(t, lo["s"], len(states))
			for name, st := range states {
				want := core.LastOutcomeOf("rot_0001", st)
				got := lo["s"][name]
				require.Equal(t, want.Status, got.Status, name)
				require.Equal(t, want.Verified, got.Verified, name)
				require.Equal(t, want.Error, got.Error, name)
				if want.FinishedAt == nil {
					require.Nil(t, got.FinishedAt, name)
				} else {
					require.NotNil(t, got.FinishedAt, name)
					require.True(t, want.FinishedAt.Equal(*got.FinishedAt), "%s: %v, want %v", name, got.FinishedAt, want.FinishedAt)
				}
			}
		})
	}
}
