package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/credsync/credsync/core"
)

// Errors that are the database's condition rather than the call's (the server is down or
// unreachable, the disk is full, the file read-only, deleted or replaced) are wrapped in a
// *core.StoreUnavailableError saying what is wrong and what to do. The classifying backend does
// it for every statement, so every Store method's error carries it.

// classifySQLite turns SQLite's result codes of unavailability into a StoreUnavailableError.
func (f *sqliteFile) classify(err error) error {
	var se *sqlite.Error
	if err == nil || errors.Is(err, core.ErrStoreUnavailable) || !errors.As(err, &se) {
		return err
	}
	code := se.Code()
	switch code & 0xff {
	case sqlite3.SQLITE_FULL:
		return f.unavailable(fmt.Sprintf("the disk holding the SQLite file %s is full: free space there; "+
			"writes succeed again without a restart", f.abs), err)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		if ierr := f.check(); ierr != nil {
			return fmt.Errorf("%w (%v)", ierr, err)
		}
		readOnly, full := f.diagnose()
		switch {
		case readOnly != "" || code&0xff == sqlite3.SQLITE_READONLY:
			why := "read-only"
			if readOnly != "" {
				why += " (" + readOnly + ")"
			}
			return f.unavailable(fmt.Sprintf("the SQLite file %s is %s: make it, its -wal and -shm files and its directory "+
				"writable by credsync again (file mode and owner, chattr -i, a read-only mount); writes succeed again "+
				"without a restart", f.abs, why), err)
		case full != "":
			return f.unavailable(fmt.Sprintf("the disk holding the SQLite file %s is full (%s): free space there; "+
				"writes succeed again without a restart", f.abs, full), err)
		case code&0xff == sqlite3.SQLITE_CANTOPEN:
			return f.unavailable(fmt.Sprintf("cannot open the SQLite file %s: check that it and its directory exist and "+
				"are readable and writable by credsync", f.abs), err)
		case code&0xff == sqlite3.SQLITE_CORRUPT || code&0xff == sqlite3.SQLITE_NOTADB:
			return f.unavailable(fmt.Sprintf("the SQLite file %s is damaged or not a credsync database: restore it "+
				"from a backup and restart credsync", f.abs), err)
		}
		return f.unavailable(fmt.Sprintf("reading or writing the SQLite file %s failed (I/O error): check the disk "+
			"(dmesg) and the file; every call is tried again as it comes", f.abs), err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return f.unavailable(fmt.Sprintf("the SQLite file %s stayed locked by another process for over %d ms: "+
			"stop the other writer (only credsync processes should open it)", f.abs, SQLiteBusyTimeoutMS), err)
	}
	return err
}

// pgWhere names a PostgreSQL store in messages: host, port and database, never the password.
func pgWhere(cc *pgconn.Config) string {
	return fmt.Sprintf("the PostgreSQL store at %s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// classifyPG turns PostgreSQL's and the connection's failures of unavailability into a
// StoreUnavailableError; where is pgWhere.
func classifyPG(where string, err error) error {
	if err == nil || errors.Is(err, core.ErrStoreUnavailable) {
		return err
	}
	un := func(what, todo string) error {
		return &core.StoreUnavailableError{Message: where + " " + what + ": " + todo, Err: err}
	}
	const back = "credsync reconnects by itself once it is back"
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		switch {
		case strings.HasPrefix(c, "08"):
			return un("dropped the connection ("+c+")", "check the server and the network; "+back)
		case c == "57P01" || c == "57P02":
			return un("is shutting down or restarting ("+c+")", back)
		case c == "57P03":
			return un("does not accept connections yet ("+c+": starting up or in recovery)", back)
		case c == "53100":
			return un("is out of disk space ("+c+")", "free space on the database server; writes succeed again without a restart")
		case c == "53200":
			return un("is out of memory ("+c+")", "check the database server")
		case c == "53300":
			return un("refuses more connections ("+c+" too_many_connections)", "raise max_connections or lower pool_max_conns in store.dsn")
		case strings.HasPrefix(c, "58"):
			return un("has a system or I/O error ("+c+")", "check the database server's disk and log")
		case c == "25006":
			return un("takes no writes ("+c+" read_only_sql_transaction: a standby, or default_transaction_read_only)", "point store.dsn at the primary")
		case c == "28000" || c == "28P01":
			return un("refused the login ("+c+")", "check the user and password of store.dsn")
		case c == "3D000":
			return un("has no such database ("+c+")", "create it, or fix the database name in store.dsn")
		}
		return err // the statement's own error: a bug or a constraint
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return un("refuses connections (connection refused)", "check that PostgreSQL is running and listening; "+back)
	case errors.As(err, &ce):
		return un("cannot be reached", "check that PostgreSQL is running and reachable from this gateway; "+back)
	case errors.As(err, &ne) && ne.Timeout():
		return un("did not answer in time", "check that PostgreSQL is running, reachable and not overloaded; "+back)
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return un("dropped the connection", "check the server and the network; "+back)
	}
	return err
}

// classifying is a backend whose every error goes through classify, unless the call's own
// context ended (that is the caller giving up or timing out: store/guard tells which).
type classifying struct {
	backend
	classify func(error) error
}

func (c classifying) wrap(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	return c.classify(err)
}

func (c classifying) exec(ctx context.Context, q string, args ...any) (int64, error) {
	n, err := c.backend.exec(ctx, q, args...)
	return n, c.wrap(ctx, err)
}

func (c classifying) query(ctx context.Context, q string, args ...any) (rows, error) {
	rs, err := c.backend.query(ctx, q, args...)
	if err != nil {
		return nil, c.wrap(ctx, err)
	}
	return classifiedRows{rs, c, ctx}, nil
}

func (c classifying) queryRow(ctx context.Context, q string, args ...any) row {
	return classifiedRow{c.backend.queryRow(ctx, q, args...), c, ctx}
}

func (c classifying) inTx(ctx context.Context, fn func(q querier) error) error {
	return c.wrap(ctx, c.backend.inTx(ctx, fn))
}

func (c classifying) write(ctx context.Context, s string, args ...any) (int64, error) {
	n, err := c.backend.write(ctx, s, args...)
	return n, c.wrap(ctx, err)
}

func (c classifying) writeRow(ctx context.Context, dest []any, s string, args ...any) error {
	return c.wrap(ctx, c.backend.writeRow(ctx, dest, s, args...))
}

func (c classifying) ping(ctx context.Context) error { return c.wrap(ctx, c.backend.ping(ctx)) }

type classifiedRows struct {
	rows
	c   classifying
	ctx context.Context
}

func (r classifiedRows) Scan(dest ...any) error { return r.c.wrap(r.ctx, r.rows.Scan(dest...)) }
func (r classifiedRows) Err() error             { return r.c.wrap(r.ctx, r.rows.Err()) }

type classifiedRow struct {
	row
	c   classifying
	ctx context.Context
}

func (r classifiedRow) Scan(dest ...any) error { return r.c.wrap(r.ctx, r.row.Scan(dest...)) }
