package faults

// The store fault tests: the real gateway on a SQLite file or a PostgreSQL server of its own,
// with store.timeout 1s, while the store fails for real (the file deleted, made immutable, its
// disk filled; the server stopped, frozen). Each checks that every API call answers 503
// store_unavailable with Retry-After within store.timeout and a margin (never 500, never a
// hang, never a 202 for work the store would lose), that /readyz says 503, and that once the
// store is back the gateway takes rotations again and finishes them, without a restart.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/pgtest"
)

const (
	storeTimeout = time.Second
	// storeSlack absorbs a loaded machine (2 shared cores, the race detector) on top of
	// store.timeout: an answer later than that is a hang.
	storeSlack = 2 * time.Second
)

func newStoreStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	o.timeout, o.maxAttempts, o.storeTimeout = time.Second, 1, storeTimeout
	return newStack(t, o)
}

// requireRoot skips a test that needs root, saying for what; CI runs these tests as root.
func requireRoot(t *testing.T, forWhat string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (uid 0) %s; CI runs the fault tests as root: sudo -E go test -run '%s' ./faults/", forWhat, t.Name())
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
}

func rotationBody(password string) string {
	return `{"source":"` + source + `","credential":{"type":"password","password":"` + password + `"}}`
}

// accepted submits a rotation that the gateway must take (202) and returns its id.
func (s *stack) accepted(t *testing.T, password string) string {
	t.Helper()
	status, _, b := s.call(t, http.MethodPost, "/v1/rotations", rotationBody(password), nil)
	require.Equal(t, http.StatusAccepted, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	return rot.ID
}

// finished waits for a rotation to end and returns it.
func (s *stack) finished(t *testing.T, id string) *core.Rotation {
	t.Helper()
	var rot core.Rotation
	require.Eventually(t, func() bool {
		status, _, b := s.call(t, http.MethodGet, "/v1/rotations/"+id, "", nil)
		return status == http.StatusOK && json.Unmarshal(b, &rot) == nil && rot.Status.Finished()
	}, 30*time.Second, 50*time.Millisecond, "rotation %s did not finish", id)
	return &rot
}

// ready reports whether /readyz answers 200.
func (s *stack) ready(t *testing.T) bool {
	status, _, _ := s.call(t, http.MethodGet, "/readyz", "", nil)
	return status == http.StatusOK
}

type apiCall struct{ method, path, body string }

// storeCalls are API calls that each need the store: the first two a write (a submission,
// readiness), the others reads.
func storeCalls(id string) []apiCall {
	return []apiCall{
		{http.MethodPost, "/v1/rotations", rotationBody("refused-while-down-1")},
		{http.MethodGet, "/readyz", ""},
		{http.MethodGet, "/v1/rotations", ""},
		{http.MethodGet, "/v1/rotations/" + id, ""},
		{http.MethodPost, "/v1/rotations/" + id + "/retry", ""},
		{http.MethodGet, "/v1/sources", ""},
		{http.MethodGet, "/v1/audit", ""},
		{http.MethodGet, "/", ""},
	}
}

// requireUnavailable makes the calls at once and checks each answers 503 store_unavailable
// with Retry-After and a message holding every piece of want, within store.timeout + slack.
// It returns the slowest answer's time.
func (s *stack) requireUnavailable(t *testing.T, calls []apiCall, want ...string) time.Duration {
	t.Helper()
	type answer struct {
		c      apiCall
		status int
		hdr    http.Header
		body   []byte
		took   time.Duration
	}
	answers := make([]answer, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			status, hdr, b := s.call(t, c.method, c.path, c.body, nil)
			answers[i] = answer{c, status, hdr, b, time.Since(start)}
		}()
	}
	wg.Wait()
	var slowest time.Duration
	for _, a := range answers {
		what := a.c.method + " " + a.c.path
		require.Equal(t, http.StatusServiceUnavailable, a.status, "%s: %s", what, a.body)
		var body struct {
			Error struct{ Code, Message string }
		}
		require.NoError(t, json.Unmarshal(a.body, &body), "%s: %s", what, a.body)
		require.Equal(t, "store_unavailable", body.Error.Code, "%s: %s", what, a.body)
		for _, w := range want {
			require.Contains(t, body.Error.Message, w, what)
		}
		require.Equal(t, "5", a.hdr.Get("Retry-After"), what)
		require.Less(t, a.took, storeTimeout+storeSlack, "%s answered after %s", what, a.took)
		slowest = max(slowest, a.took)
	}
	status, _, _ := s.call(t, http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusOK, status, "/healthz is liveness only")
	return slowest
}

// vendorWrites is how many credential updates all three vendors received.
func (s *stack) vendorWrites() int {
	n := 0
	for v := range map[string]bool{"felt": true, "databrain": true, "rivergen": true} {
		n += s.writes(v)
	}
	return n
}

// TestStoreFaultSQLiteDeleted: `rm` of the database file under the running gateway. SQLite
// would go on writing into the deleted file, and everything would be gone at the next start;
// the gateway refuses every call instead, saying the file cannot come back.
func TestStoreFaultSQLiteDeleted(t *testing.T) {
	s := newStoreStack(t, stackOptions{})
	before := s.rotate(t, "before-the-delete-1")
	require.Equal(t, core.RotationSucceeded, before.Status)
	require.True(t, s.ready(t))
	writes := s.vendorWrites()

	require.NoError(t, os.Remove(s.dbPath))
	// A write is refused at once; reads check the file at most every 100 ms.
	s.requireUnavailable(t, storeCalls(before.ID)[:1], s.dbPath, "was deleted", "cannot come back", "restore", "restart")
	time.Sleep(150 * time.Millisecond)
	s.requireUnavailable(t, storeCalls(before.ID), s.dbPath, "was deleted")
	require.Equal(t, writes, s.vendorWrites(), "no vendor was called for a rotation the store could not keep")
	_, err := os.Stat(s.dbPath)
	require.ErrorIs(t, err, os.ErrNotExist, "no new, empty database was created in its place")
}

// TestStoreFaultSQLiteReadOnly: the database, its -wal and -shm files and their directory made
// immutable (chattr +i: root ignores file modes, not this attribute). Writes (a submission,
// readiness) are refused; reads are still answered. Undone, the gateway takes rotations again
// without a restart.
func TestStoreFaultSQLiteReadOnly(t *testing.T) {
	requireRoot(t, "to set the immutable attribute (chattr +i)")
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Fatalf("chattr is not installed (e2fsprogs): %v", err)
	}
	s := newStoreStack(t, stackOptions{})
	first := s.rotate(t, "before-read-only-1")
	require.Equal(t, core.RotationSucceeded, first.Status)
	files := []string{s.dbPath, s.dbPath + "-wal", s.dbPath + "-shm", filepath.Dir(s.dbPath)}
	for _, f := range files {
		_, err := os.Stat(f)
		require.NoError(t, err)
	}
	run(t, "chattr", append([]string{"+i"}, files...)...)
	t.Cleanup(func() { _ = exec.Command("chattr", append([]string{"-i"}, files...)...).Run() })

	s.requireUnavailable(t, storeCalls(first.ID)[:2], s.dbPath, "read-only", "chattr -i", "without a restart")
	status, _, b := s.call(t, http.MethodGet, "/v1/rotations/"+first.ID, "", nil)
	require.Equal(t, http.StatusOK, status, "what the read-only file holds is still read: %s", b)

	run(t, "chattr", append([]string{"-i"}, files...)...)
	require.Eventually(t, func() bool { return s.ready(t) }, 5*time.Second, 50*time.Millisecond, "ready again once writable")
	rot := s.finished(t, s.accepted(t, "after-read-only-1"))
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
}

// TestStoreFaultDiskFull: the SQLite file on a 2 MiB tmpfs that another file fills. Writes are
// refused, reads answered. Once the filler is removed, the gateway takes rotations again
// without a restart.
func TestStoreFaultDiskFull(t *testing.T) {
	requireRoot(t, "to mount a 2 MiB tmpfs (mount -t tmpfs)")
	dir := t.TempDir()
	run(t, "mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir)
	t.Cleanup(func() { // after the gateway closed the store: cleanups run last first
		if err := exec.Command("umount", dir).Run(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	s := newStoreStack(t, stackOptions{dbDir: dir})
	first := s.rotate(t, "before-the-disk-fills-1")
	require.Equal(t, core.RotationSucceeded, first.Status)

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	s.requireUnavailable(t, storeCalls(first.ID)[:2], s.dbPath, "is full", "free space")
	status, _, b := s.call(t, http.MethodGet, "/v1/rotations/"+first.ID, "", nil)
	require.Equal(t, http.StatusOK, status, "reads need no room: %s", b)

	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool { return s.ready(t) }, 5*time.Second, 50*time.Millisecond, "ready again once there is room")
	rot := s.finished(t, s.accepted(t, "after-the-disk-fills-1"))
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
}

// fill writes path until its filesystem has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling %s: %v", path, err)
			return
		}
	}
}

// startPostgres starts a PostgreSQL server of the test's own (it is stopped and frozen), and
// returns it with the DSN of its postgres database.
func startPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv, srv.DSN("postgres")
}

// TestStoreFaultPostgresStopped: the PostgreSQL server shut down (fast shutdown: sessions ended,
// then connection refused), then started again.
func TestStoreFaultPostgresStopped(t *testing.T) {
	srv, dsn := startPostgres(t)
	s := newStoreStack(t, stackOptions{pgDSN: dsn})
	first := s.rotate(t, "before-the-stop-1")
	require.Equal(t, core.RotationSucceeded, first.Status)

	require.NoError(t, srv.Halt())
	took := s.requireUnavailable(t, storeCalls(first.ID), fmt.Sprintf("the PostgreSQL store at 127.0.0.1:%d/postgres", srv.Port()))
	t.Logf("stopped PostgreSQL: slowest 503 after %s", took)

	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return s.ready(t) }, 10*time.Second, 50*time.Millisecond, "ready again once PostgreSQL is back")
	rot := s.finished(t, s.accepted(t, "after-the-restart-1"))
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
}

// TestStoreFaultPostgresFrozen: the PostgreSQL server and every backend SIGSTOPped: connections
// stay open and nothing answers. Every API call still answers 503 within store.timeout; once
// thawed, the gateway works again.
func TestStoreFaultPostgresFrozen(t *testing.T) {
	srv, dsn := startPostgres(t)
	s := newStoreStack(t, stackOptions{pgDSN: dsn})
	first := s.rotate(t, "before-the-freeze-1")
	require.Equal(t, core.RotationSucceeded, first.Status)

	require.NoError(t, srv.Pause())
	t.Cleanup(func() { _ = srv.Resume() }) // before Stop, should the test end early
	took := s.requireUnavailable(t, storeCalls(first.ID), "did not answer within 1s (store.timeout)")
	t.Logf("frozen PostgreSQL: slowest 503 after %s", took)
	require.GreaterOrEqual(t, took, storeTimeout/2, "the answers waited for the store, up to store.timeout")
	// Again, with the pool's connections now all cut off: still no hang.
	s.requireUnavailable(t, storeCalls(first.ID), "did not answer within 1s")

	require.NoError(t, srv.Resume())
	require.Eventually(t, func() bool { return s.ready(t) }, 10*time.Second, 50*time.Millisecond, "ready again once PostgreSQL is thawed")
	rot := s.finished(t, s.accepted(t, "after-the-thaw-1"))
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot.Targets)
}
