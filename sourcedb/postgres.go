package sourcedb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL.
//
// The admin login needs the CREATEROLE attribute (PostgreSQL 15: it may then change the
// password of any role that is not a superuser; 16 and later also want ADMIN OPTION on the
// role) or to be a superuser. Each operation opens its own admin connection and closes it, so
// no admin session stays open between rotations.
//
// The statement is
//
//	ALTER ROLE "<role>" WITH PASSWORD E'SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>'
//
// ALTER ROLE is a utility statement, which takes no bind parameters, so it is built as text:
//
//   - the role with pgx.Identifier.Sanitize: inside double quotes, with every double quote
//     doubled, any byte string is exactly one identifier (quoted identifiers have no other
//     escape). Sanitize drops NUL bytes, so names with control characters are refused before;
//     names longer than 63 bytes too, since PostgreSQL would truncate them to another role's.
//   - the password is not sent at all: what is sent is its SCRAM-SHA-256 verifier, computed
//     here as PostgreSQL's own client (libpq's PQencryptPasswordConn, pg_fe_scram_build_secret)
//     does (scram.go). PostgreSQL stores a value in that form as it is, so the clear password
//     never reaches the server: not its log when it logs DDL (log_statement=ddl, or
//     log_min_error_statement when the statement fails), nor pg_stat_activity or
//     pg_stat_statements. The verifier does not let anyone log in, and recovering a random
//     32-character password from it is out of reach.
//   - the verifier is written as an E” string literal with ' and \ doubled (pgQuote). An E”
//     literal treats backslash as an escape whatever standard_conforming_strings says, so the
//     doubling is right in both settings; a NUL byte, which no PostgreSQL string can hold, is
//     refused. The verifier is base64 and punctuation ($ : =), so there is nothing to double in
//     practice; the quoting does not rely on that.
//
// Multi-byte characters cannot hide a quote: the admin connection must use client_encoding
// UTF8 (pgx's default; checked), in which no byte of a multi-byte character is ASCII.
type pgEngine struct {
	cfg *pgx.ConnConfig // the admin's
}

// pgMaxName is NAMEDATALEN-1, the longest identifier PostgreSQL keeps whole.
const pgMaxName = 63

func newPostgres(dsn string) (*db, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errUnparsable(Postgres, "a URL (postgres://user:password@host:port/database?sslmode=...) or key=value pairs (host=... user=... ...)")
	}
	return &db{e: &pgEngine{cfg: cfg}}, nil
}

func (e *pgEngine) name() string          { return Postgres }
func (e *pgEngine) adminPassword() string { return e.cfg.Password }
func (e *pgEngine) close() error          { return nil }

// admin opens an admin connection.
func (e *pgEngine) admin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, e.cfg)
	if err != nil {
		return nil, err
	}
	if enc := conn.PgConn().ParameterStatus("client_encoding"); enc != "UTF8" {
		pgClose(ctx, conn)
		return nil, fmt.Errorf("the admin connection uses client_encoding %s: it must be UTF8 (remove client_encoding from the admin DSN)", enc)
	}
	return conn, nil
}

func (e *pgEngine) open(ctx context.Context) error {
	conn, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer pgClose(ctx, conn)
	return conn.Ping(ctx)
}

func (e *pgEngine) validUser(user string) error {
	if err := checkName("role name", user); err != nil {
		return err
	}
	if len(user) > pgMaxName {
		return fmt.Errorf("the role name %q is longer than %d bytes: PostgreSQL would cut it short and address another role", user, pgMaxName)
	}
	return nil
}

func (e *pgEngine) setPassword(ctx context.Context, user, password string) (string, error) {
	verifier, err := scramSHA256Secret(password)
	if err != nil {
		return "", err
	}
	lit, err := pgQuote(verifier)
	if err != nil {
		return verifier, err
	}
	conn, err := e.admin(ctx)
	if err != nil {
		return verifier, err
	}
	defer pgClose(ctx, conn)
	// No arguments: pgx sends it with the simple protocol, and caches no statement holding it.
	_, err = conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" WITH PASSWORD "+lit)
	return verifier, err
}

// loginConfig is the admin's configuration with the user and password replaced: the same hosts
// and ports (fallbacks included), database, TLS and runtime parameters.
func (e *pgEngine) loginConfig(user, password string) *pgx.ConnConfig {
	cfg := e.cfg.Copy()
	cfg.User = user
	cfg.Password = password
	return cfg
}

func (e *pgEngine) login(ctx context.Context, user, password string) error {
	conn, err := pgx.ConnectConfig(ctx, e.loginConfig(user, password))
	if err != nil {
		return err
	}
	defer pgClose(ctx, conn)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// pgClose closes a connection, also when ctx is done (a few seconds more, to say goodbye).
func pgClose(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// errNoLogin and errExpired are what check finds wrong with a role that exists.
var (
	errNoLogin = errors.New("the role may not log in (NOLOGIN): ALTER ROLE ... LOGIN")
	errExpired = errors.New("the role's password has expired (VALID UNTIL is past), and setting a password does not change that: ALTER ROLE ... VALID UNTIL 'infinity'")
)

func (e *pgEngine) check(ctx context.Context, user string) error {
	conn, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer pgClose(ctx, conn)
	var canLogin, expired bool
	err = conn.QueryRow(ctx, `SELECT rolcanlogin, coalesce(rolvaliduntil < now(), false) FROM pg_catalog.pg_roles WHERE rolname = $1`, user).
		Scan(&canLogin, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return kindError{fmt.Sprintf("role %q does not exist", user), ErrNoUser}
	case err != nil:
		return err
	case !canLogin:
		return errNoLogin
	case expired:
		return errExpired
	}
	return nil
}

func (e *pgEngine) classify(err error) (string, []error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err.Error(), nil
	}
	switch {
	case pgErr.Code == "28P01" || pgErr.Code == "28000": // invalid_password, invalid_authorization_specification
		return err.Error(), []error{ErrAuth}
	case pgErr.Code == "42704": // undefined_object: role "x" does not exist
		return err.Error(), []error{ErrNoUser}
	case pgErr.Code == "42601": // syntax_error: "at or near" quotes the statement
		return "the server reported a syntax error (SQLSTATE 42601); its message is not shown, as it may quote the statement", nil
	}
	return err.Error(), nil
}

// pgQuote returns s as a PostgreSQL escape string literal, E'...', with ' and \ doubled: right
// whether standard_conforming_strings is on or off, since E” always treats backslash as an
// escape. NUL, which no PostgreSQL string may hold, is refused.
func pgQuote(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("a string literal may not hold a NUL byte")
	}
	var b strings.Builder
	b.Grow(len(s) + 3)
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}
