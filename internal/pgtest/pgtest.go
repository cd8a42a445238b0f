// Package pgtest starts a throwaway PostgreSQL server for tests: initdb into a temporary
// directory, postgres on 127.0.0.1 at a free port, one fresh database per test, and everything
// removed at the end. It needs only the PostgreSQL server binaries on the machine (Debian:
// apt-get install postgresql-15); nothing has to be running or configured. It never skips: a
// machine without the binaries fails the tests that need them, saying what to install.
//
// initdb and postgres refuse to run as root, so when the tests run as root (as in CI) both run
// as the "postgres" user when it exists, else as "nobody", in a temporary directory owned by
// that user. The server is started with trust authentication, fsync off (unless Options.Durable) and a socket directory
// inside the temporary directory, so it touches nothing outside it. It gets the parent-death
// signal: if the test binary dies without stopping it (a panic in a test), the server quits too,
// and a later Start removes the directory it left once that is an hour old.
//
// The server trusts every login until RequirePasswords: then only the superuser (what DSN
// connects as) is trusted, and every other role must log in with its password (SCRAM-SHA-256),
// for tests of code that sets and checks passwords.
//
// For fault tests, Pause and Resume freeze and thaw a server (SIGSTOP and SIGCONT to the
// postmaster and each of its processes), Halt and Restart stop it and start it again on the same
// port and data. Use a server of the test's own (Start) for them, not the shared one.
//
// Typical use:
//
//	var pg *pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
//
//	func TestX(t *testing.T) { dsn := pg.NewDatabase(t); ... }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// StartTimeout bounds how long Start waits for the server to accept connections.
const StartTimeout = 30 * time.Second

// superuser is the database superuser initdb creates.
const superuser = "postgres"

// Server is one running throwaway PostgreSQL server.
type Server struct {
	dir     string // temporary directory: data/, sock/, postgres.log
	binDir  string
	port    int
	cred    *syscall.Credential // the user postgres runs as; nil: ourselves
	durable bool                // fsync and synchronous commit on
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the postgres process has exited
	waitErr error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
	dbSeq    atomic.Int64
}

// BinDir finds the PostgreSQL server binaries: $PG_BIN, else `pg_config --bindir`, else the
// newest /usr/lib/postgresql/*/bin. The directory must hold initdb and postgres.
func BinDir() (string, error) {
	var tried []string
	ok := func(dir string) bool {
		tried = append(tried, dir)
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if ok(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("pgtest: PG_BIN=%s holds no initdb and postgres: point it at the PostgreSQL server binaries "+
			"(e.g. /usr/lib/postgresql/15/bin after `apt-get install postgresql-15`)", dir)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" && ok(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { // newest major version first
		return pgMajor(dirs[i]) > pgMajor(dirs[j])
	})
	for _, dir := range dirs {
		if ok(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL server binaries (initdb, postgres) not found via $PG_BIN, `pg_config --bindir` "+
		"or /usr/lib/postgresql/*/bin (checked: %s): install them, e.g. `apt-get install postgresql-15` on Debian/Ubuntu, "+
		"or set PG_BIN to their directory", nonEmpty(strings.Join(tried, ", "), "none"))
}

var majorRe = regexp.MustCompile(`/postgresql/(\d+)/`)

func pgMajor(dir string) int {
	m := majorRe.FindStringSubmatch(dir + "/")
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// runAs is the user initdb and postgres run as; nil when not root (they run as ourselves).
func runAs() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	var lastErr error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lastErr = err
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			lastErr = fmt.Errorf("user %s has unusable ids %s:%s", name, u.Uid, u.Gid)
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, name, nil
	}
	return nil, "", fmt.Errorf("pgtest: running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as: %w", lastErr)
}

// reachable reports whether every directory from dir up to / can be traversed by others
// (the unprivileged server user).
func reachable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// Start initializes and starts a server. Call Stop when done (Main does).
func Start() (*Server, error) { return StartWith(Options{}) }

// Options change how a server runs.
type Options struct {
	// Durable keeps fsync, synchronous_commit and full_page_writes on, as in production (for
	// benchmarks of writes); by default they are off, which is faster and enough for tests.
	Durable bool
}

// StartWith is Start with options.
func StartWith(o Options) (*Server, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, userName, err := runAs()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if cred != nil && !reachable(base) {
		base = "/tmp" // the server user could not reach the default temp dir
		if !reachable(base) {
			return nil, fmt.Errorf("pgtest: neither %s nor /tmp can be traversed by the %s user", os.TempDir(), userName)
		}
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	s := &Server{dir: dir, binDir: binDir, durable: o.Durable}
	if err := s.start(cred, userName); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// removeStale removes the directories of servers whose test binary died without Stop (the
// server itself quit on the parent-death signal): pgtest-* directories over an hour old whose
// postmaster is not running.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "pgtest-*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pid), "\n")
			if n, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && n > 0 && syscall.Kill(n, 0) == nil {
				continue // still running
			}
		}
		_ = os.RemoveAll(dir)
	}
}

func (s *Server) start(cred *syscall.Credential, userName string) error {
	s.cred = cred
	data, sock := filepath.Join(s.dir, "data"), filepath.Join(s.dir, "sock")
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Mkdir(sock, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		for _, p := range []string{s.dir, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: chown %s to %s: %w", p, userName, err)
			}
		}
	}

	initdb := exec.Command(filepath.Join(s.binDir, "initdb"), "-D", data, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	s.prepare(initdb, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb (as %s) failed: %w\n%s", nonEmpty(userName, "current user"), err, tail(out, 30))
	}

	logPath := filepath.Join(s.dir, "postgres.log")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("pgtest: find a free port: %w", err)
		}
		s.port = port
		if lastErr = s.launch(data, sock, logPath, cred); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

// launch starts postgres and waits until it accepts connections.
func (s *Server) launch(data, sock, logPath string, cred *syscall.Credential) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	sync := "off"
	if s.durable {
		sync = "on"
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), "-D", data, "-p", strconv.Itoa(s.port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync="+sync, "-c", "synchronous_commit="+sync, "-c", "full_page_writes="+sync,
		"-c", "max_connections=200", "-c", "shared_buffers=32MB",
		"-c", "max_parallel_workers_per_gather=0", "-c", "dynamic_shared_memory_type=mmap",
		"-c", "logging_collector=off", "-c", "log_min_messages=warning")
	s.prepare(cmd, cred)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies without Stop (a panic in a test), the server gets SIGQUIT
	// (immediate shutdown) instead of outliving it. The parent-death signal belongs to the
	// thread that forked, so that thread stays locked, and alive, until postgres exits.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(StartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("pgtest: postgres exited during start-up (%v); log:\n%s", s.waitErr, s.logTail(40))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("pgtest: postgres did not accept connections on 127.0.0.1:%d within %s (last error: %v); log:\n%s",
		s.port, StartTimeout, lastErr, s.logTail(40))
}

// prepare sets the working directory, environment and user of a server command.
func (s *Server) prepare(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.Dir = s.dir
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=" + os.Getenv("PATH")}
	if cred != nil {
		env = append(env, "HOME="+s.dir)
	} else if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not in the test's process group: no ^C from the terminal
	if cred != nil {
		cmd.SysProcAttr.Credential = cred
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func (s *Server) logTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(b, lines)
}

// Port is the TCP port the server listens on (at 127.0.0.1).
func (s *Server) Port() int { return s.port }

// DSN returns a pgx connection string for database db as the superuser.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=10", superuser, s.port, db)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates an empty database for t and returns its DSN. The database is dropped
// (its connections terminated) when t's cleanup runs.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%s", s.dbSeq.Add(1), name)
	if err := s.admin(fmt.Sprintf(`CREATE DATABASE %q`, name)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.admin(fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name)); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// admin runs one statement in the postgres database.
func (s *Server) admin(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// hbaRequirePasswords is the pg_hba.conf of RequirePasswords: the superuser is trusted (DSN
// has no password), every other role gives its password, checked by SCRAM-SHA-256.
const hbaRequirePasswords = `# written by pgtest.RequirePasswords
local all postgres trust
host  all postgres 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
`

// RequirePasswords makes the server check passwords from now on: every role but the superuser
// must log in with its password (SCRAM-SHA-256; PostgreSQL 15 stores new passwords as SCRAM
// verifiers), while DSN and NewDatabase keep working without one. It rewrites pg_hba.conf,
// reloads the configuration and returns once a wrong password is refused. It lasts for the
// server's life (Restart too) and may be called again.
func (s *Server) RequirePasswords() error {
	hba := filepath.Join(s.dir, "data", "pg_hba.conf")
	// Rewriting the existing file keeps its owner (the server's user) and mode.
	if err := os.WriteFile(hba, []byte(hbaRequirePasswords), 0o600); err != nil {
		return fmt.Errorf("pgtest: write %s: %w", hba, err)
	}
	if err := s.admin("SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pgtest: reload the configuration: %w", err)
	}
	// The reload is asynchronous. A role that does not exist tells the two apart: trusted, it is
	// refused as unknown (28000); with passwords, PostgreSQL runs a mock authentication and
	// answers that the password is wrong (28P01).
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cfg, err := pgx.ParseConfig(s.DSN("postgres"))
		if err != nil {
			cancel()
			return err
		}
		cfg.User, cfg.Password = "pgtest_password_probe", "wrong"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		cancel()
		if conn != nil {
			_ = conn.Close(context.Background())
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "28P01" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: pg_hba.conf reloaded, but passwords are still not checked after 20s (last login: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pause freezes the server: SIGSTOP to the postmaster, then to every process it forked (each
// backend and auxiliary process: they call setsid, so they are not in its process group), so it
// neither answers nor closes a connection, as a hung host or a partition that drops packets.
// The kernel still accepts new connections. Only this server's processes are signalled, never
// other servers of the same user. Resume thaws it. Linux only (it reads /proc).
func (s *Server) Pause() error {
	pid, err := s.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil { // first: it forks no more
		return fmt.Errorf("pgtest: SIGSTOP postgres: %w", err)
	}
	return signalChildren(pid, syscall.SIGSTOP)
}

// Resume ends a Pause: SIGCONT to the postmaster's processes, then to the postmaster.
func (s *Server) Resume() error {
	pid, err := s.pid()
	if err != nil {
		return err
	}
	if err := signalChildren(pid, syscall.SIGCONT); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("pgtest: SIGCONT postgres: %w", err)
	}
	return nil
}

func (s *Server) pid() (int, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, errors.New("pgtest: the server is not running")
	}
	select {
	case <-s.exited:
		return 0, errors.New("pgtest: the server has exited")
	default:
	}
	return s.cmd.Process.Pid, nil
}

// signalChildren sends sig to every process whose parent is ppid.
func signalChildren(ppid int, sig syscall.Signal) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("pgtest: list processes (Pause and Resume need Linux's /proc): %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		if p, err := strconv.Atoi(fields[1]); err == nil && p == ppid {
			if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("pgtest: signal %v to postgres process %d: %w", sig, pid, err)
			}
		}
	}
	return nil
}

// Halt shuts the server down as an operator would (fast shutdown: sessions are ended, clients
// get admin_shutdown, then connection refused) and keeps its data; Restart starts it again on
// the same port.
func (s *Server) Halt() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("pgtest: the server is not running")
	}
	_ = s.Resume()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("pgtest: stop postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(15 * time.Second):
		s.kill()
		return errors.New("pgtest: postgres did not stop within 15s after SIGINT; killed it")
	}
}

// Restart starts a halted server again, on the same port and data, and waits until it accepts
// connections.
func (s *Server) Restart() error {
	select {
	case <-s.exited:
	default:
		return errors.New("pgtest: Restart needs a halted server (Halt)")
	}
	return s.launch(filepath.Join(s.dir, "data"), filepath.Join(s.dir, "sock"), filepath.Join(s.dir, "postgres.log"), s.cred)
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and removes its
// directory. It is safe to call more than once, also on a paused or halted server.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.Resume()
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(15 * time.Second):
				s.kill()
				s.stopErr = errors.New("pgtest: postgres did not stop within 15s after SIGINT; killed it")
			}
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pgtest: remove %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

// kill ends the postgres process group at once and waits for it.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// Main runs a test binary around one server: it starts the server into *s, runs the tests,
// stops the server (also when tests fail) and returns the exit code for os.Exit. A server that
// cannot start fails the whole binary with the reason.
func Main(m *testing.M, s **Server) int {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, "FAIL: pgtest could not start PostgreSQL")
		return 1
	}
	*s = srv
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	return m.Run()
}
