package e2e_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// crashAndResume kills the gateway with SIGKILL while its RiverGen call is in flight, restarts it
// and checks that the rotation completes, that the Idempotency-Key still answers with the same
// rotation, and that the secret never reached the store or the logs in clear.
func crashAndResume(t *testing.T, driver, dsn string) {
	gate := newHangGate()
	s := newSetup(t, gate, driver, dsn)
	addr := freeAddr(t)
	g1 := s.start(t, "replica-1", addr)

	const secret = "crash-Pw-5e1f9a-never-in-clear"
	body := `{"source":"warehouse-pg","credential":{"type":"password","password":"` + secret + `"}}`
	status, _, b := g1.call(t, "POST", "/v1/rotations", body, map[string]string{"Idempotency-Key": "crash-1"})
	require.Equal(t, 202, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))

	waitArrived(t, gate, g1)
	g1.kill(t) // SIGKILL with the RiverGen call in flight
	close(gate.release)

	g2 := s.start(t, "replica-1", addr) // the same replica comes back
	final := g2.waitFinished(t, rot.ID)
	assertAllSucceeded(t, final)
	patches, maxInflight := gate.stats()
	require.Equal(t, 2, patches, "the interrupted RiverGen update is sent again after the restart")
	require.Equal(t, 1, maxInflight)
	creds, ok := s.fakes.RiverGen.Credentials(1)
	require.True(t, ok)
	require.Equal(t, secret, creds.Password)

	status, hdr, b := g2.call(t, "POST", "/v1/rotations", body, map[string]string{"Idempotency-Key": "crash-1"})
	require.Equal(t, 200, status, "%s", b)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	var again core.Rotation
	require.NoError(t, json.Unmarshal(b, &again))
	require.Equal(t, rot.ID, again.ID, "the same Idempotency-Key after a restart returns the same rotation")
	status, _, _ = g2.call(t, "POST", "/v1/rotations", strings.Replace(body, secret, "other", 1), map[string]string{"Idempotency-Key": "crash-1"})
	require.Equal(t, 409, status)

	status, _, b = g2.call(t, "GET", "/v1/audit?rotation_id="+rot.ID, "", nil)
	require.Equal(t, 200, status)
	require.Contains(t, string(b), "rotation.resumed")

	require.NotContains(t, g1.output()+g2.output(), secret, "no secret in the logs")
}

func TestCrashAndResumeSQLite(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "credsync.db")
	crashAndResume(t, "sqlite", dbPath)
	for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		require.NotContains(t, string(b), "crash-Pw-5e1f9a", "%s holds the secret in clear", filepath.Base(f))
	}
}

func TestCrashAndResumePostgres(t *testing.T) {
	dsn := pg.NewDatabase(t)
	crashAndResume(t, "postgres", dsn)
	dump := dumpPostgres(t, dsn)
	require.NotEmpty(t, dump)
	require.Contains(t, dump, "warehouse-pg", "the dump covers the rotation tables")
	require.NotContains(t, dump, "crash-Pw-5e1f9a", "a PostgreSQL table holds the secret in clear")
}

// dumpPostgres returns every row of every table of the public schema as JSON text.
func dumpPostgres(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	_ = rows.Close()
	require.NotEmpty(t, tables)
	var out strings.Builder
	for _, tbl := range tables {
		r, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT row_to_json(t)::text FROM %q t`, tbl))
		require.NoError(t, err)
		for r.Next() {
			var line string
			require.NoError(t, r.Scan(&line))
			out.WriteString(line + "\n")
		}
		require.NoError(t, r.Err())
		_ = r.Close()
	}
	return out.String()
}

// TestTwoReplicasOnePostgres kills the replica working a rotation; the other takes it over once
// the lease expires and finishes it, and the vendor never sees two calls of it at once.
func TestTwoReplicasOnePostgres(t *testing.T) {
	gate := newHangGate()
	s := newSetup(t, gate, "postgres", pg.NewDatabase(t))
	a := s.start(t, "replica-a", freeAddr(t))
	b := s.start(t, "replica-b", freeAddr(t))

	status, _, body := a.call(t, "POST", "/v1/rotations", `{"source":"warehouse-pg","credential":{"type":"password","password":"two-replicas-pw"}}`, nil)
	require.Equal(t, 202, status, "%s", body)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(body, &rot))
	waitArrived(t, gate, a)
	a.kill(t)
	close(gate.release)

	final := b.waitFinished(t, rot.ID)
	assertAllSucceeded(t, final)
	patches, maxInflight := gate.stats()
	require.Equal(t, 2, patches)
	require.Equal(t, 1, maxInflight, "no rotation is ever sent twice at once")
	require.Contains(t, b.output(), "resuming rotation", "replica b took the rotation over")

	// Both replicas answer for every rotation: the store is shared.
	status, _, _ = b.call(t, "GET", "/v1/rotations/"+rot.ID, "", nil)
	require.Equal(t, 200, status)
}

// TestSIGTERMLeavesWorkForTheNextStart: SIGTERM stops accepting, waits the grace period for the
// in-flight call, exits 0, and the next start finishes the rotation.
func TestSIGTERMLeavesWorkForTheNextStart(t *testing.T) {
	gate := newHangGate()
	s := newSetup(t, gate, "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	addr := freeAddr(t)
	g1 := s.start(t, "replica-1", addr)
	status, _, b := g1.call(t, "POST", "/v1/rotations", `{"source":"warehouse-pg","credential":{"type":"password","password":"sigterm-pw"}}`, nil)
	require.Equal(t, 202, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	waitArrived(t, gate, g1)

	require.NoError(t, g1.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, g1.cmd.Wait(), "a graceful stop exits 0:\n%s", g1.output())
	require.Contains(t, g1.output(), "resumes at the next start")
	close(gate.release)

	g2 := s.start(t, "replica-1", addr)
	assertAllSucceeded(t, g2.waitFinished(t, rot.ID))
}
