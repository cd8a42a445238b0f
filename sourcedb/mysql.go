package sourcedb

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB.
//
// A user is given as "name" (the account 'name'@'%') or "name@host" (the account
// 'name'@'host'; split at the last "@", so a name may hold "@" when a host is given). The admin
// login needs the CREATE USER privilege (Check also reads mysql.user). Logins use the admin
// DSN's database too: leave it empty in the admin DSN, or grant the users access to it.
//
// The statement is, for MariaDB,
//
//	ALTER USER '<name>'@'<host>' IDENTIFIED BY PASSWORD '*<hex of SHA1(SHA1(password))>'
//
// and for MySQL
//
//	ALTER USER '<name>'@'<host>' IDENTIFIED BY '<password>'
//
// MariaDB writes statements as they are to its general log and its binary log (with 10.11 both
// show IDENTIFIED BY '<password>' in clear; the tests check the general log), so it gets the
// mysql_native_password hash, which does not let anyone log in; the account's plugin becomes
// mysql_native_password, MariaDB's default. A MariaDB with a password validation plugin and
// strict_password_validation=ON refuses a hash it cannot check: the error says so. MySQL
// rewrites passwords out of its general, slow and binary logs itself (unless started with
// --log-raw), and ALTER USER ... IDENTIFIED BY keeps the account's plugin (MySQL 8's
// caching_sha2_password, whose stored form cannot be computed here), so it gets the password;
// use TLS to it. (MySQL itself is not among the servers the tests start.)
//
// ALTER USER takes no placeholders, so the statement is built as text. The account's name and
// host and the password or hash are single-quoted string literals (mysqlQuote), with ' doubled,
// which every sql_mode reads as one quote; and \ doubled unless the session's sql_mode has
// NO_BACKSLASH_ESCAPES, where a backslash is an ordinary character (and doubling it would
// change the string). The admin session's sql_mode is read on the very connection the statement
// then runs on. Control characters are refused. A name or host with non-ASCII characters is
// refused unless the session's character_set_client is utf8mb4 or utf8(mb3) (the driver's
// default), because in a character set such as GBK or SJIS a multi-byte character may end in
// the byte of a backslash and swallow the escape; the password and hash are ASCII.
type myEngine struct {
	cfg     *mysql.Config // the admin's
	db      *sql.DB       // admin connections
	mariadb atomic.Bool   // learnt by open
}

func newMySQL(dsn string) (*db, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, errUnparsable(MySQL, "a go-sql-driver/mysql DSN: user:password@tcp(host:port)/database?param=value")
	}
	cfg.Logger = &mysql.NopLogger{} // the driver would print connection trouble to stderr
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, errUnparsable(MySQL, "a go-sql-driver/mysql DSN: user:password@tcp(host:port)/database?param=value")
	}
	pool := sql.OpenDB(connector)
	// A rotation's few statements share one connection; none stays open long after.
	pool.SetMaxOpenConns(4)
	pool.SetMaxIdleConns(1)
	pool.SetConnMaxIdleTime(time.Minute)
	return &db{e: &myEngine{cfg: cfg, db: pool}}, nil
}

func (e *myEngine) name() string          { return MySQL }
func (e *myEngine) adminPassword() string { return e.cfg.Passwd }
func (e *myEngine) close() error          { return e.db.Close() }

func (e *myEngine) open(ctx context.Context) error {
	var version string
	if err := e.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}
	e.mariadb.Store(strings.Contains(strings.ToLower(version), "mariadb"))
	return nil
}

// account splits a configured user into name and host.
func account(user string) (name, host string) {
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		return user[:i], user[i+1:]
	}
	return user, "%"
}

func (e *myEngine) validUser(user string) error {
	name, host := account(user)
	if err := checkName("user name", name); err != nil {
		return err
	}
	if err := checkName("host of user "+user, host); err != nil {
		return err
	}
	return nil
}

// session is what the statement's quoting depends on, read on the connection it runs on.
type session struct {
	noBackslashEscapes bool
	utf8               bool
}

func readSession(ctx context.Context, conn *sql.Conn) (session, error) {
	var mode, charset string
	if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client").Scan(&mode, &charset); err != nil {
		return session{}, err
	}
	var s session
	for m := range strings.SplitSeq(mode, ",") {
		if strings.EqualFold(strings.TrimSpace(m), "NO_BACKSLASH_ESCAPES") {
			s.noBackslashEscapes = true
		}
	}
	switch strings.ToLower(charset) {
	case "utf8mb4", "utf8mb3", "utf8":
		s.utf8 = true
	}
	return s, nil
}

// mysqlQuote returns s as a single-quoted MySQL string literal for a session: ' doubled (read as
// one quote in every sql_mode), \ doubled unless NO_BACKSLASH_ESCAPES (then a backslash is an
// ordinary character). s holds no control characters (checked by the callers), so no other
// character needs an escape.
func mysqlQuote(s string, noBackslashEscapes bool) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			b.WriteString("''")
		case c == '\\' && !noBackslashEscapes:
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// nativeHash is MariaDB's (and MySQL 5's) mysql_native_password hash, PASSWORD(p): "*" and the
// upper-case hex of SHA1(SHA1(p)).
func nativeHash(p string) string {
	h1 := sha1.Sum([]byte(p))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

func (e *myEngine) setPassword(ctx context.Context, user, password string) (string, error) {
	sent := password
	if e.mariadb.Load() {
		sent = nativeHash(password)
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return sent, err
	}
	defer conn.Close()
	s, err := readSession(ctx, conn)
	if err != nil {
		return sent, err
	}
	name, host := account(user)
	if !s.utf8 && !isASCII(name+host) {
		return sent, fmt.Errorf("the user %q is not ASCII and the admin session's character set is not utf8mb4: "+
			"remove charset= from the admin DSN", user)
	}
	stmt := "ALTER USER " + mysqlQuote(name, s.noBackslashEscapes) + "@" + mysqlQuote(host, s.noBackslashEscapes)
	if e.mariadb.Load() {
		stmt += " IDENTIFIED BY PASSWORD " + mysqlQuote(sent, s.noBackslashEscapes)
	} else {
		stmt += " IDENTIFIED BY " + mysqlQuote(sent, s.noBackslashEscapes)
	}
	// No arguments: the driver sends the text as it is (no prepared statement, no interpolation).
	if _, err = conn.ExecContext(ctx, stmt); err != nil {
		return sent, withWarnings(ctx, conn, err)
	}
	return sent, nil
}

// A failed ALTER USER often says only "Operation ALTER USER failed" (1396); the reason, if it
// is not that the user does not exist, is in the session's diagnostics: SHOW WARNINGS.
type alterError struct {
	err      error
	warnings []warning
}

type warning struct {
	level string
	code  int
	msg   string
}

func (e *alterError) Error() string { return e.err.Error() }
func (e *alterError) Unwrap() error { return e.err }

func withWarnings(ctx context.Context, conn *sql.Conn, err error) error {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return err
	}
	rows, qerr := conn.QueryContext(ctx, "SHOW WARNINGS")
	if qerr != nil {
		return err
	}
	defer rows.Close()
	ae := &alterError{err: err}
	for rows.Next() {
		var w warning
		if rows.Scan(&w.level, &w.code, &w.msg) == nil {
			ae.warnings = append(ae.warnings, w)
		}
	}
	return ae
}

// loginConfig is the admin's configuration with the user and password replaced: the same
// network, address, database, TLS, timeouts and parameters.
func (e *myEngine) loginConfig(user, password string) *mysql.Config {
	cfg := e.cfg.Clone()
	cfg.User, _ = account(user)
	cfg.Passwd = password
	return cfg
}

func (e *myEngine) login(ctx context.Context, user, password string) error {
	connector, err := mysql.NewConnector(e.loginConfig(user, password))
	if err != nil {
		return err
	}
	pool := sql.OpenDB(connector)
	defer pool.Close()
	var one int
	if err := pool.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

func (e *myEngine) check(ctx context.Context, user string) error {
	name, host := account(user)
	var n int
	if err := e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", name, host).Scan(&n); err != nil {
		var myErr *mysql.MySQLError
		if errors.As(err, &myErr) && myErr.Number == 1142 { // ER_TABLEACCESS_DENIED_ERROR
			// Rotating needs only CREATE USER (ALTER USER); looking a user up needs more.
			return kindError{"the admin may not read mysql.user, so whether the user exists is not known " +
				"(rotating does not need it; GRANT SELECT ON mysql.user to the admin for this check)", ErrCannotCheck}
		}
		return fmt.Errorf("cannot read mysql.user (grant the admin SELECT on it): %w", err)
	}
	if n == 0 {
		return kindError{fmt.Sprintf("user %s@%s does not exist", mysqlQuote(name, true), mysqlQuote(host, true)), ErrNoUser}
	}
	return nil
}

func (e *myEngine) classify(err error) (string, []error) {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return err.Error(), nil
	}
	var ae *alterError
	if errors.As(err, &ae) && myErr.Number == 1396 {
		// ER_CANNOT_USER, "Operation ALTER USER failed for 'x'@'%'": why is in the warnings
		// (MariaDB); none but 1410 (not allowed to create a user) means there is no such user.
		var why []string
		for _, w := range ae.warnings {
			if w.code == 1396 || w.code == 1410 || (w.level != "Error" && w.level != "Warning") {
				continue
			}
			why = append(why, describe(w.code, w.msg))
		}
		if len(why) > 0 {
			return strings.Join(why, "; ") + " (" + err.Error() + ")", nil
		}
		return "the user does not exist (" + err.Error() + ")", []error{ErrNoUser}
	}
	switch myErr.Number {
	case 1045, 3118, 4151: // ER_ACCESS_DENIED_ERROR; account locked (MySQL, MariaDB)
		return err.Error(), []error{ErrAuth}
	case 1396:
		return "the user does not exist (" + err.Error() + ")", []error{ErrNoUser}
	}
	return describe(int(myErr.Number), err.Error()), nil
}

// describe is the text of a server error or warning: withheld when it may quote the statement,
// explained when the remedy is not obvious.
func describe(code int, msg string) string {
	if code == 1064 { // ER_PARSE_ERROR: "... near '<the statement>'"
		return "the server reported a syntax error (Error 1064); its message is not shown, as it quotes the statement"
	}
	text := msg
	if !strings.HasPrefix(msg, "Error ") {
		text = fmt.Sprintf("Error %d: %s", code, msg)
	}
	if code == 1290 && strings.Contains(msg, "strict-password-validation") { // ER_OPTION_PREVENTS_STATEMENT
		text += ": a password validation plugin cannot check the password hash credsync sends MariaDB " +
			"(so that the password is not written to its logs); set strict_password_validation=OFF " +
			"(the generated passwords are long and random) or unload the plugin"
	}
	return text
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
