// Package mariadbtest starts a throwaway MariaDB server for tests: mariadb-install-db into a
// temporary directory, mariadbd on 127.0.0.1 at a free port with its socket, pid file and logs in
// that directory, an admin login with a random password, and everything removed at the end. It
// needs only Debian's mariadb-server package on the machine (apt-get install mariadb-server);
// nothing has to be running or configured, and the system's MariaDB (if any) is not touched: the
// server reads no option file (--no-defaults). It never skips: a machine without the binaries
// fails the tests that need them, saying what to install.
//
// It follows internal/pgtest: mariadbd refuses to run as root without --user, so when the tests
// run as root both mariadb-install-db and mariadbd run as the "mysql" user when it exists, else as
// "nobody", in a temporary directory owned by that user. The server gets the parent-death signal:
// if the test binary dies without stopping it, the server is killed too, and a later Start removes
// the directory it left once that is an hour old.
//
// Typical use:
//
//	var db *mariadbtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &db)) }
//
//	func TestX(t *testing.T) { dsn := db.AdminDSN(); ... }
package mariadbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StartTimeout bounds how long Start waits for the server to accept connections.
const StartTimeout = 60 * time.Second

// AdminUser is the login Start creates ('admin'@'%', every privilege WITH GRANT OPTION); its
// password is random per server (AdminPassword).
const AdminUser = "admin"

// Server is one running throwaway MariaDB server.
type Server struct {
	dir      string // temporary directory: data/, tmp/, mysqld.sock, mariadbd.err, ...
	mariadbd string
	port     int
	adminPW  string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the mariadbd process has exited
	waitErr  error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Binaries finds the MariaDB server (mariadbd) and mariadb-install-db: in $MARIADB_BIN when it is
// set, else on $PATH, in /usr/sbin and in /usr/bin.
func Binaries() (mariadbd, installDB string, err error) {
	find := func(name string) (string, []string) {
		var dirs []string
		if d := os.Getenv("MARIADB_BIN"); d != "" {
			dirs = []string{d}
		} else {
			dirs = append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/usr/bin")
		}
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, dirs
			}
		}
		return "", dirs
	}
	var missing []string
	var where []string
	mariadbd, where = find("mariadbd")
	if mariadbd == "" {
		missing = append(missing, "mariadbd")
	}
	installDB, _ = find("mariadb-install-db")
	if installDB == "" {
		missing = append(missing, "mariadb-install-db")
	}
	if len(missing) > 0 {
		how := "install Debian's MariaDB server: apt-get install mariadb-server (Debian/Ubuntu), or set MARIADB_BIN to the directory holding mariadbd and mariadb-install-db"
		if os.Getenv("MARIADB_BIN") != "" {
			how = "MARIADB_BIN=" + os.Getenv("MARIADB_BIN") + " does not hold them: point it at their directory, or unset it and apt-get install mariadb-server"
		}
		return "", "", fmt.Errorf("mariadbtest: %s not found (looked in %s): %s",
			strings.Join(missing, " and "), strings.Join(where, ", "), how)
	}
	return mariadbd, installDB, nil
}

// runAs is the user the server runs as; nil when not root (it runs as ourselves).
func runAs() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	var lastErr error
	for _, name := range []string{"mysql", "nobody"} {
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
	return nil, "", fmt.Errorf("mariadbtest: running as root, and neither a mysql nor a nobody user exists to run MariaDB as: %w", lastErr)
}

// reachable reports whether every directory from dir up to / can be traversed by others.
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

// maxSocketPath keeps the socket's path within sun_path (108 bytes on Linux, with its NUL).
const maxSocketPath = 100

// Start initializes and starts a server. Call Stop when done (Main does).
func Start() (*Server, error) {
	mariadbd, installDB, err := Binaries()
	if err != nil {
		return nil, err
	}
	cred, userName, err := runAs()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if (cred != nil && !reachable(base)) || len(base)+len("/mariadbtest-0123456789/mysqld.sock") > maxSocketPath {
		base = "/tmp" // the server user could not reach the default temp dir, or the socket path would be too long
		if cred != nil && !reachable(base) {
			return nil, fmt.Errorf("mariadbtest: neither %s nor /tmp can be traversed by the %s user", os.TempDir(), userName)
		}
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, "mariadbtest-")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: temp dir: %w", err)
	}
	s := &Server{dir: dir, mariadbd: mariadbd}
	if err := s.start(installDB, cred, userName); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// removeStale removes the directories of servers whose test binary died without Stop:
// mariadbtest-* directories over an hour old whose mariadbd is not running.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "mariadbtest-*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(dir, "mariadbd.pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil && n > 0 && syscall.Kill(n, 0) == nil {
				continue // still running
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// serverOptions are given to mariadb-install-db (which passes them on to its bootstrap mariadbd)
// and to mariadbd: small, fast, durable-for-nothing.
func (s *Server) serverOptions() []string {
	return []string{
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--tmpdir=" + filepath.Join(s.dir, "tmp"),
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-doublewrite=0",
		"--performance-schema=OFF",
		"--skip-name-resolve",
	}
}

func (s *Server) start(installDB string, cred *syscall.Credential, userName string) error {
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	if err := os.Mkdir(filepath.Join(s.dir, "tmp"), 0o755); err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	if cred != nil {
		for _, p := range []string{s.dir, filepath.Join(s.dir, "tmp")} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("mariadbtest: chown %s to %s: %w", p, userName, err)
			}
		}
	}

	// --no-defaults must come first. root@localhost gets no password and no unix_socket
	// plugin, so that the test process (whoever it runs as) can log in over the socket once to
	// create the admin login.
	args := append([]string{"--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"}, s.serverOptions()...)
	install := exec.Command(installDB, args...)
	s.prepare(install, cred)
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadbtest: mariadb-install-db (as %s) failed: %w\n%s", nonEmpty(userName, "current user"), err, tail(out, 30))
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("mariadbtest: find a free port: %w", err)
		}
		s.port = port
		if lastErr = s.launch(cred); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return lastErr
	}
	if err := s.createAdmin(); err != nil {
		s.kill()
		return err
	}
	return nil
}

// launch starts mariadbd and waits until it accepts connections on its socket.
func (s *Server) launch(cred *syscall.Credential) error {
	logPath := s.logPath()
	_ = os.Remove(logPath)
	args := append([]string{"--no-defaults"}, s.serverOptions()...)
	args = append(args,
		"--port="+strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--skip-networking=0",
		"--socket="+s.socketPath(),
		"--pid-file="+filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error="+logPath,
		"--max-connections=200",
	)
	cmd := exec.Command(s.mariadbd, args...)
	s.prepare(cmd, cred)
	out, err := os.OpenFile(filepath.Join(s.dir, "mariadbd.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies without Stop, the server is killed instead of outliving it. The
	// parent-death signal belongs to the thread that forked, so that thread stays locked, and
	// alive, until mariadbd exits.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
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
		return fmt.Errorf("mariadbtest: start mariadbd: %w", err)
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(StartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("mariadbtest: mariadbd exited during start-up (%v); log:\n%s", s.waitErr, s.LogTail(40))
		default:
		}
		if lastErr = s.rootExec(context.Background(), "SELECT 1"); lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("mariadbtest: mariadbd did not accept connections on %s within %s (last error: %v); log:\n%s",
		s.socketPath(), StartTimeout, lastErr, s.LogTail(40))
}

// createAdmin creates the admin login over the socket as root.
func (s *Server) createAdmin() error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	s.adminPW = hex.EncodeToString(b[:]) // hex: needs no quoting in SQL or in a DSN
	for _, stmt := range []string{
		"CREATE USER '" + AdminUser + "'@'%' IDENTIFIED BY '" + s.adminPW + "'",
		"GRANT ALL PRIVILEGES ON *.* TO '" + AdminUser + "'@'%' WITH GRANT OPTION",
	} {
		if err := s.rootExec(context.Background(), stmt); err != nil {
			return fmt.Errorf("mariadbtest: create the admin login: %w", err)
		}
	}
	return nil
}

// rootExec runs one statement as root over the socket.
func (s *Server) rootExec(ctx context.Context, stmt string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.socketPath()
	cfg.Timeout = 2 * time.Second
	cfg.Logger = &mysql.NopLogger{}
	return execOnce(ctx, cfg, stmt)
}

func execOnce(ctx context.Context, cfg *mysql.Config, stmts ...string) error {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs statements in order as the admin over TCP. Each may run on another connection of a
// small pool: do not rely on session state (SET SESSION ...) between them.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	cfg, err := mysql.ParseDSN(s.AdminDSN())
	if err != nil {
		return err
	}
	cfg.Logger = &mysql.NopLogger{}
	return execOnce(ctx, cfg, stmts...)
}

// prepare sets the working directory, environment and user of a server command.
func (s *Server) prepare(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.Dir = s.dir
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
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

func (s *Server) logPath() string    { return filepath.Join(s.dir, "mariadbd.err") }
func (s *Server) socketPath() string { return filepath.Join(s.dir, "mysqld.sock") }

// LogTail returns the last lines of the server's error log.
func (s *Server) LogTail(lines int) string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(b, lines)
}

// Dir is the server's temporary directory (data/ is its data directory). A file the server
// writes there (SET GLOBAL general_log_file = ...) can be read by the tests.
func (s *Server) Dir() string { return s.dir }

// Port is the TCP port the server listens on (at 127.0.0.1).
func (s *Server) Port() int { return s.port }

// AdminPassword is the admin login's password.
func (s *Server) AdminPassword() string { return s.adminPW }

// AdminDSN returns a go-sql-driver/mysql DSN for the admin login over TCP, with no database.
func (s *Server) AdminDSN() string { return s.DSN(AdminUser, s.adminPW, "") }

// DSN returns a go-sql-driver/mysql DSN for user and password over TCP to database db (none
// when empty), built with mysql.Config.FormatDSN.
func (s *Server) DSN(user, password, db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	cfg.DBName = db
	cfg.Timeout = 10 * time.Second
	return cfg.FormatDSN()
}

// Stop shuts the server down (SIGTERM: a normal shutdown) and removes its directory. It is
// safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(30 * time.Second):
				s.kill()
				s.stopErr = errors.New("mariadbtest: mariadbd did not stop within 30s after SIGTERM; killed it")
			}
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("mariadbtest: remove %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

// kill ends the mariadbd process group at once and waits for it.
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
		fmt.Fprintln(os.Stderr, "FAIL: mariadbtest could not start MariaDB")
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
