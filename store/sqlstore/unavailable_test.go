package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/sqlstore"
)

func newRotation(id string) core.NewRotation {
	return core.NewRotation{Rotation: &core.Rotation{ID: id, Source: "a", Status: core.RotationRunning, CreatedAt: time.Now(),
		Targets: []core.TargetResult{{Name: "t", Status: core.TargetPending}}}}
}

// requireUnavailable checks err wraps core.ErrStoreUnavailable with a message for people that
// holds every piece of want.
func requireUnavailable(t *testing.T, err error, want ...string) {
	t.Helper()
	require.ErrorIs(t, err, core.ErrStoreUnavailable)
	var ue *core.StoreUnavailableError
	require.ErrorAs(t, err, &ue)
	for _, w := range want {
		require.Contains(t, ue.Message, w)
	}
}

func TestSQLiteFileModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credsync.db")
	s := openSQLite(t, path)
	_, err := s.CreateRotation(ctxT(t), newRotation("rot_1"))
	require.NoError(t, err)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s is created readable and writable by its owner only", filepath.Base(f))
	}

	// An existing file keeps the mode its owner gave it.
	shared := filepath.Join(dir, "shared.db")
	require.NoError(t, os.WriteFile(shared, nil, 0o640))
	require.NoError(t, os.Chmod(shared, 0o640)) // whatever the umask
	openSQLite(t, shared)
	fi, err := os.Stat(shared)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestSQLiteDeletedFileRefusesEveryCall(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credsync.db")
	s := openSQLite(t, path)
	ctx := ctxT(t)
	_, err := s.CreateRotation(ctx, newRotation("rot_1"))
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))

	require.NoError(t, os.Remove(path))
	_, err = s.CreateRotation(ctx, newRotation("rot_2"))
	requireUnavailable(t, err, path, "was deleted", "restore", "restart")
	requireUnavailable(t, s.Ping(ctx), path, "was deleted")
	requireUnavailable(t, s.SetRotationStatus(ctx, "rot_1", core.RotationFailed, nil), "was deleted")
	time.Sleep(150 * time.Millisecond) // past the read check's cache
	_, err = s.GetRotation(ctx, "rot_1")
	requireUnavailable(t, err, "was deleted")
	_, err = s.ListRotations(ctx, core.ListFilter{})
	requireUnavailable(t, err, "was deleted")
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "no connection created a new, empty database in its place")
}

func TestSQLiteMovedFileComesBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credsync.db")
	s := openSQLite(t, path)
	ctx := ctxT(t)
	_, err := s.CreateRotation(ctx, newRotation("rot_1"))
	require.NoError(t, err)

	require.NoError(t, os.Rename(path, path+".moved"))
	_, err = s.CreateRotation(ctx, newRotation("rot_2"))
	requireUnavailable(t, err, path, "is missing", "move it back")
	requireUnavailable(t, s.Ping(ctx), "is missing")

	// Another file in its place is not the one opened.
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	requireUnavailable(t, s.Ping(ctx), path, "not the file credsync opened")
	require.NoError(t, os.Remove(path))

	require.NoError(t, os.Rename(path+".moved", path))
	require.NoError(t, s.Ping(ctx), "the file opened is back at its path")
	_, err = s.CreateRotation(ctx, newRotation("rot_3"))
	require.NoError(t, err)
	got, err := s.ListRotations(ctx, core.ListFilter{})
	require.NoError(t, err)
	require.Len(t, got, 2, "rot_1 and rot_3; rot_2 was refused")
}

func TestReadinessIsAWrite(t *testing.T) {
	both(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		ctx := ctxT(t)
		require.NoError(t, s.Ping(ctx))
		require.NoError(t, s.Ping(ctx), "the readiness row is rewritten, not inserted again")
	})
}

func TestNotFoundIsNotUnavailable(t *testing.T) {
	both(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		_, err := s.GetRotation(ctxT(t), "rot_missing")
		require.ErrorIs(t, err, core.ErrNotFound)
		require.NotErrorIs(t, err, core.ErrStoreUnavailable)
		_, err = s.CreateRotation(ctxT(t), core.NewRotation{})
		require.Error(t, err)
		require.NotErrorIs(t, err, core.ErrStoreUnavailable, "a bad call is not the store's condition")
	})
}

func TestPostgresUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	_, err = sqlstore.OpenPostgres(ctxT(t), fmt.Sprintf("postgres://postgres:hunter2-secret@127.0.0.1:%d/credsync?sslmode=disable&connect_timeout=5", port))
	requireUnavailable(t, err, fmt.Sprintf("127.0.0.1:%d/credsync", port), "refuses connections")
	require.NotContains(t, err.Error(), "hunter2-secret")
}

func TestPostgresErrorClasses(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string // "" : not unavailability
	}{
		{&pgconn.PgError{Code: "57P01"}, "shutting down"},
		{&pgconn.PgError{Code: "57P03"}, "does not accept connections yet"},
		{&pgconn.PgError{Code: "08006"}, "dropped the connection"},
		{&pgconn.PgError{Code: "53100"}, "out of disk space"},
		{&pgconn.PgError{Code: "53300"}, "refuses more connections"},
		{&pgconn.PgError{Code: "25006"}, "takes no writes"},
		{&pgconn.PgError{Code: "58030"}, "I/O error"},
		{&pgconn.PgError{Code: "28P01"}, "refused the login"},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), "dropped the connection"},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "dropped the connection"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "refuses connections"},
		{&pgconn.PgError{Code: "23505"}, ""}, // unique violation: the call's own error
		{&pgconn.PgError{Code: "42P01"}, ""}, // undefined table: a bug
		{errors.New("something else"), ""},
		{context.Canceled, ""},
	} {
		err := sqlstore.ClassifyPG("the PostgreSQL store at h:5432/db", c.err)
		if c.want == "" {
			require.NotErrorIs(t, err, core.ErrStoreUnavailable, "%v", c.err)
			require.Equal(t, c.err, err)
			continue
		}
		requireUnavailable(t, err, "the PostgreSQL store at h:5432/db", c.want)
		require.ErrorIs(t, err, c.err, "the cause stays in the chain")
	}
}
