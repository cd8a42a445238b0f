package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/sqlstore"
)

// TestMigration5Backfills: a database written by schema 4 gets its targets' status column and
// each target's last finished outcome from the history already there.
func TestMigration5Backfills(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			var db *sql.DB
			var open func() *sqlstore.Store
			if dialect == "sqlite" {
				path := filepath.Join(t.TempDir(), "v4.db")
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
			stmts, names, err := sqlstore.MigrationStatements(dialect, 4)
			require.NoError(t, err)
			require.Len(t, stmts, 4)
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
