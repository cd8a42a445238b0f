// Package sourcedb talks to the user accounts of a source database whose credentials credsync
// rotates itself (DESIGN.md, "Rotating at the source"): it sets a password on a user and proves
// it by logging in with it (Stage), logs in as a user (Login), and replaces a user's password with
// a random one nobody keeps (Retire). Two engines: "postgres" (PostgreSQL, through pgx) and
// "mysql" (MySQL and MariaDB, through go-sql-driver/mysql).
//
// Secrets: the package logs nothing. Every error it returns is built from scrubbed text (see
// core.Scrubber): the admin DSN's password and every password of the operation (and what was
// derived from it and sent to the server) are redacted from driver and server messages, a
// server's syntax error (which can quote the statement) is replaced by a fixed text, and an admin
// DSN that does not parse is reported without its text or the parser's message. The errors do
// not wrap the drivers' errors either (those could be printed by a caller that unwraps): they
// match, with errors.Is, only ErrAuth, ErrNoUser, ErrCannotCheck, ErrClosed, context.Canceled and
// context.DeadlineExceeded.
//
// What the servers may log: a password is never sent in clear text to PostgreSQL or MariaDB,
// only a verifier computed here (a SCRAM-SHA-256 secret, a mysql_native_password hash), so a
// server that logs statements (log_statement=ddl, the general log, the binary log, an audit
// plugin) logs that verifier, from which the password cannot be recovered; see the engines'
// documentation for MySQL, which gets the clear password and rewrites it out of its logs itself.
//
// Passwords given to Stage and Login must be printable ASCII (space to tilde): the generated
// ones (package sourcedb/password) are. That keeps the verifiers exact without Unicode
// normalization (SASLprep is the identity on printable ASCII) and keeps every quoted literal
// safe under any client character set.
package sourcedb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb/password"
)

// The engines Open accepts.
const (
	Postgres = "postgres" // PostgreSQL 10 or later (SCRAM-SHA-256); tested with 15
	MySQL    = "mysql"    // MySQL 5.7 or later and MariaDB 10.2 or later (ALTER USER); tested with MariaDB 10.11
)

// DB is the user accounts of one source database, reached through an admin login that may
// change their passwords. It is safe for concurrent use.
type DB interface {
	// Stage sets password on user, then logs in as user with it over a new connection (not the
	// admin's) and runs SELECT 1. An error says which step failed (a *StageError). Staging the
	// same password again is harmless, so a rotation resumed after a crash may repeat it: when
	// setting the password fails but logging in with it works, it was set before and Stage
	// succeeds.
	Stage(ctx context.Context, user string, password core.Secret) error
	// Login logs in as user with password over a new connection and runs SELECT 1. A refused
	// password gives an error matching ErrAuth.
	Login(ctx context.Context, user string, password core.Secret) error
	// Retire replaces user's password with a fresh random one (64 characters with symbols, so
	// that vendor password policies accept it) that is never returned, stored or logged: after
	// it nobody can log in as user. Sessions already open stay open.
	Retire(ctx context.Context, user string) error
	// Check verifies that the admin login works and that each of users exists and may log in,
	// for config validation (credsync check) before any rotation. Every problem is reported
	// (errors.Join).
	Check(ctx context.Context, users ...string) error
	// Close releases the admin connections. Afterwards every method fails with ErrClosed.
	Close() error
}

var (
	// ErrAuth is matched by errors of a login the server refused (wrong password, unknown user).
	ErrAuth = errors.New("authentication failed")
	// ErrNoUser is matched by errors about a user that does not exist.
	ErrNoUser = errors.New("no such user")
	// ErrCannotCheck is matched by a Check error that says the admin may not look the users up
	// (MySQL without SELECT on mysql.user): nothing is wrong with the rotation, the check just
	// cannot prove the users exist.
	ErrCannotCheck = errors.New("cannot look the users up")
	// ErrClosed is returned by the methods of a closed DB.
	ErrClosed = errors.New("sourcedb: closed")
)

// Step names a step of Stage.
type Step string

// The steps of Stage.
const (
	StepSetPassword Step = "set the password"
	StepLogin       Step = "log in with the new password"
)

// StageError is the error of Stage: which user, which step, and why (already scrubbed).
type StageError struct {
	Engine string
	User   string
	Step   Step
	Err    error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("sourcedb: %s: stage user %q: %s: %v", e.Engine, e.User, e.Step, e.Err)
}

func (e *StageError) Unwrap() error { return e.Err }

// Open connects to a source database with the admin DSN (a pgx connection string for
// "postgres", a go-sql-driver/mysql DSN for "mysql") and checks that the admin login works.
// Logins as the users are derived from the admin DSN: the same host, port, database, TLS and
// other settings, with the user and password replaced (in the drivers' parsed configurations,
// never by editing the string).
func Open(ctx context.Context, engine, adminDSN string) (DB, error) {
	var d *db
	var err error
	switch engine {
	case Postgres:
		d, err = newPostgres(adminDSN)
	case MySQL:
		d, err = newMySQL(adminDSN)
	default:
		return nil, fmt.Errorf("sourcedb: unknown engine %q: want %q or %q (MySQL and MariaDB)", engine, Postgres, MySQL)
	}
	if err != nil {
		return nil, err
	}
	if err := d.open(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// errUnparsable is what Open says of an admin DSN that does not parse: neither its text nor the
// parser's message, which may quote it, password included.
func errUnparsable(engine, want string) error {
	return fmt.Errorf("sourcedb: %s: the admin DSN does not parse (neither it nor the parser's message is shown: "+
		"they may hold its password); expected %s", engine, want)
}

// engine is what differs between the vendors. Its methods return the drivers' own errors; db
// scrubs them.
type engine interface {
	name() string
	adminPassword() string
	// open checks the admin login (and learns what it needs about the server).
	open(ctx context.Context) error
	// validUser rejects a user name the engine cannot address exactly.
	validUser(user string) error
	// setPassword sets the password; sent is the value that went into the statement (the
	// password itself or a verifier derived from it), to be scrubbed from errors too.
	setPassword(ctx context.Context, user, password string) (sent string, err error)
	// login logs in as user over a new connection and runs SELECT 1.
	login(ctx context.Context, user, password string) error
	// check says whether user exists and may log in; the admin login works.
	check(ctx context.Context, user string) error
	// classify says what a driver error means: its kinds (ErrAuth, ErrNoUser) and its text,
	// replaced when the original may quote a statement.
	classify(err error) (text string, kinds []error)
	close() error
}

// db implements DB around an engine: the checks of arguments, the steps of Stage, and the
// scrubbing of every error.
type db struct {
	e      engine
	closed atomic.Bool
}

func (d *db) open(ctx context.Context) error {
	if err := d.e.open(ctx); err != nil {
		return d.fail(err, nil, "log in as the admin")
	}
	return nil
}

func (d *db) Stage(ctx context.Context, user string, pw core.Secret) error {
	if err := d.args(user, &pw); err != nil {
		return err
	}
	p := pw.Reveal()
	sent, err := d.e.setPassword(ctx, user, p)
	if err != nil {
		serr := d.scrub(err, []string{p, sent})
		// Resumed after a crash, or the server refuses to set the same password twice (a
		// password-reuse policy): if the password already logs in, the step is done.
		if !errors.Is(serr, ErrNoUser) && ctx.Err() == nil && d.e.login(ctx, user, p) == nil {
			return nil
		}
		return &StageError{Engine: d.e.name(), User: user, Step: StepSetPassword, Err: serr}
	}
	if err := d.e.login(ctx, user, p); err != nil {
		return &StageError{Engine: d.e.name(), User: user, Step: StepLogin, Err: d.scrub(err, []string{p, sent})}
	}
	return nil
}

func (d *db) Login(ctx context.Context, user string, pw core.Secret) error {
	if err := d.args(user, &pw); err != nil {
		return err
	}
	p := pw.Reveal()
	if err := d.e.login(ctx, user, p); err != nil {
		return d.fail(err, []string{p}, "log in as %q", user)
	}
	return nil
}

// retirePolicy makes the password Retire sets: long, and with symbols so that a server's
// password policy (MySQL's validate_password wants a special character) accepts it.
var retirePolicy = password.Policy{Length: 64, Symbols: true}

// generate is password.Generate; tests wrap it to see what Retire set.
var generate = password.Generate

func (d *db) Retire(ctx context.Context, user string) error {
	if err := d.args(user, nil); err != nil {
		return err
	}
	pw, err := generate(retirePolicy)
	if err != nil {
		return fmt.Errorf("sourcedb: %s: retire user %q: %w", d.e.name(), user, err)
	}
	p := pw.Reveal()
	if sent, err := d.e.setPassword(ctx, user, p); err != nil {
		return d.fail(err, []string{p, sent}, "retire user %q: set a random password", user)
	}
	return nil
}

func (d *db) Check(ctx context.Context, users ...string) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.e.open(ctx); err != nil {
		return d.fail(err, nil, "log in as the admin")
	}
	var errs []error
	for _, u := range users {
		if err := d.e.validUser(u); err != nil {
			errs = append(errs, fmt.Errorf("sourcedb: %s: %w", d.e.name(), err))
			continue
		}
		if err := d.e.check(ctx, u); err != nil {
			errs = append(errs, d.fail(err, nil, "check user %q", u))
		}
	}
	return errors.Join(errs...)
}

func (d *db) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.e.close()
}

// args checks what every method is given; pw is nil for Retire.
func (d *db) args(user string, pw *core.Secret) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.e.validUser(user); err != nil {
		return fmt.Errorf("sourcedb: %s: %w", d.e.name(), err)
	}
	if pw != nil {
		if err := checkPassword(pw.Reveal()); err != nil {
			return fmt.Errorf("sourcedb: %s: user %q: %w", d.e.name(), user, err)
		}
	}
	return nil
}

// fail is "sourcedb: <engine>: <what>: <scrubbed err>".
func (d *db) fail(err error, secrets []string, format string, args ...any) error {
	s := d.scrub(err, secrets).(*safeError)
	s.msg = fmt.Sprintf("sourcedb: %s: %s: %s", d.e.name(), fmt.Sprintf(format, args...), s.msg)
	return s
}

// scrub turns a driver error into a safeError: its text classified and scrubbed of the admin
// password and secrets, its kinds kept, the driver error itself dropped.
func (d *db) scrub(err error, secrets []string) error {
	text, kinds := d.e.classify(err)
	for _, k := range []error{ErrAuth, ErrNoUser, ErrCannotCheck, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	sc := core.NewScrubber(append(secrets, d.e.adminPassword())...)
	return &safeError{msg: sc.String(text), kinds: kinds}
}

// kindError is an error of an engine's own with a kind (ErrAuth, ErrNoUser).
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return e.kind }

// closeTimeout bounds the goodbye of a connection whose context is done.
const closeTimeout = 5 * time.Second

// safeError is an error whose text has been scrubbed. It matches its kinds with errors.Is and
// errors.As but holds nothing else: not the driver error it came from.
type safeError struct {
	msg   string
	kinds []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.kinds }

// maxPasswordLen bounds what Stage and Login accept (password.MaxLength is 128).
const maxPasswordLen = 1024

// checkPassword accepts printable ASCII only; its errors never quote the password.
func checkPassword(p string) error {
	if p == "" {
		return errors.New("the password is empty")
	}
	if len(p) > maxPasswordLen {
		return fmt.Errorf("the password is longer than %d characters", maxPasswordLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("the password holds a character other than printable ASCII (at byte %d): generated passwords never do", i)
		}
	}
	return nil
}

// checkName accepts a user (or host) name: not empty, valid UTF-8, no control characters (a
// NUL would be dropped or cut the name short somewhere, a newline would forge log lines).
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is empty", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("the %s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("the %s %q holds a control character", what, s)
		}
	}
	return nil
}
