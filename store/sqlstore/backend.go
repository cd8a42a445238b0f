package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier runs statements, inside a transaction or on their own. Queries are written once for
// both dialects with PostgreSQL's $1 placeholders (modernc's SQLite binds $N positionally too)
// and two tokens that dialect.rewrite replaces:
//
//	@now        the current time in microseconds: the database's clock on PostgreSQL, this
//	            process's clock on SQLite (one machine, one clock)
//	@skiplocked FOR UPDATE SKIP LOCKED on PostgreSQL, nothing on SQLite
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

// backend is one database: statements on their own for reads, a transaction for writes.
type backend interface {
	querier
	// inTx runs fn in one write transaction: BEGIN IMMEDIATE on SQLite (one writer at a time,
	// also across processes), READ COMMITTED on PostgreSQL. fn's error rolls it back.
	inTx(ctx context.Context, fn func(q querier) error) error
	// write runs one statement as a transaction of its own and returns the rows it changed.
	write(ctx context.Context, s string, args ...any) (int64, error)
	// writeRow is write for a statement that returns one row, scanned into dest.
	writeRow(ctx context.Context, dest []any, s string, args ...any) error
	ping(ctx context.Context) error
	close() error
}

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// pgNow is the database clock in microseconds since the Unix epoch. clock_timestamp() rather
// than now(): a transaction that waited for a row lock still compares against the real time.
const pgNow = "(CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT))"

// rewrite turns a shared query into this dialect's SQL (see querier).
func (d dialect) rewrite(q string, args []any) (string, []any) {
	if d == dialectPostgres {
		q = strings.ReplaceAll(q, "@now", pgNow)
		return strings.ReplaceAll(q, "@skiplocked", "FOR UPDATE SKIP LOCKED"), args
	}
	if strings.Contains(q, "@now") {
		args = append(args[:len(args):len(args)], time.Now().UnixMicro())
		q = strings.ReplaceAll(q, "@now", "$"+strconv.Itoa(len(args)))
	}
	return strings.ReplaceAll(q, "@skiplocked", ""), args
}

// ---- SQLite (database/sql + modernc.org/sqlite) ----

// sqlQuerier runs statements on the database (tx nil) or inside tx, each through the
// statement cache: prepared once per connection and reused, instead of parsed again on every
// use (parsing and preparing were about a quarter of the gateway's CPU under load).
type sqlQuerier struct {
	db    *sql.DB
	tx    *sql.Tx
	stmts *stmtCache
}

// stmt is q's prepared form of s, or nil to run s unprepared: the cached statement, bound to
// the transaction if there is one (database/sql reuses the statement already prepared on the
// transaction's connection, and the transaction closes its binding when it ends). The cache is
// an optimisation only: a statement it cannot prepare runs unprepared, and fails there if it
// is wrong.
func (q sqlQuerier) stmt(ctx context.Context, s string) *sql.Stmt {
	if q.stmts == nil {
		return nil
	}
	st := q.stmts.get(ctx, s)
	if st == nil || q.tx == nil {
		return st
	}
	return q.tx.StmtContext(ctx, st)
}

func (q sqlQuerier) exec(ctx context.Context, s string, args ...any) (int64, error) {
	s, args = dialectSQLite.rewrite(s, args)
	st := q.stmt(ctx, s)
	var (
		res sql.Result
		err error
	)
	switch {
	case st != nil:
		res, err = st.ExecContext(ctx, args...)
	case q.tx != nil:
		res, err = q.tx.ExecContext(ctx, s, args...)
	default:
		res, err = q.db.ExecContext(ctx, s, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) query(ctx context.Context, s string, args ...any) (rows, error) {
	s, args = dialectSQLite.rewrite(s, args)
	st := q.stmt(ctx, s)
	var (
		r   *sql.Rows
		err error
	)
	switch {
	case st != nil:
		r, err = st.QueryContext(ctx, args...)
	case q.tx != nil:
		r, err = q.tx.QueryContext(ctx, s, args...)
	default:
		r, err = q.db.QueryContext(ctx, s, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (q sqlQuerier) queryRow(ctx context.Context, s string, args ...any) row {
	s, args = dialectSQLite.rewrite(s, args)
	st := q.stmt(ctx, s)
	switch {
	case st != nil:
		return st.QueryRowContext(ctx, args...)
	case q.tx != nil:
		return q.tx.QueryRowContext(ctx, s, args...)
	default:
		return q.db.QueryRowContext(ctx, s, args...)
	}
}

// maxStmts bounds the statement cache. Queries are constants but for the IN lists of source
// filters, whose text varies with the number of sources: past the bound a query runs unprepared.
const maxStmts = 512

// stmtCache holds one prepared statement per query text for the life of the database handle.
// It is switched on after the migrations (enableStmts): a statement prepared outside a migration's
// transaction would not see the tables that transaction creates.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: make(map[string]*sql.Stmt)} }

// get returns s prepared, or nil when the cache is full or s cannot be prepared now (the
// caller runs s unprepared). The lock is not held while preparing, which waits for a free
// connection.
func (c *stmtCache) get(ctx context.Context, s string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[s]
	full := len(c.m) >= maxStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, s)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[s]; ok { // prepared meanwhile by another caller
		_ = st.Close()
		return prev
	}
	c.m[s] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, st := range c.m {
		_ = st.Close()
		delete(c.m, s)
	}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

type sqliteBackend struct {
	sqlQuerier
	db *sql.DB
	// file is checked before every write batch and, at most every readCheckEvery, before reads:
	// nothing is read from or written to a file deleted or replaced under the open handle.
	file *sqliteFile
	// writer lets one write transaction of this process at a time ask SQLite for the write
	// lock (a one-slot semaphore); other processes are waited for by busy_timeout.
	writer chan struct{}

	// Group commit: write transactions that arrive while one commits are queued and run
	// together in the next transaction, each in its own savepoint, so that one fsync serves
	// them all. Every caller still returns only after its own writes are committed.
	group *grouper[*txRequest]
}

type txRequest struct {
	ctx  context.Context
	fn   func(q querier) error
	done chan error
}

func newSQLiteBackend(db *sql.DB, file *sqliteFile) *sqliteBackend {
	b := &sqliteBackend{sqlQuerier: sqlQuerier{db: db}, db: db, file: file, writer: make(chan struct{}, 1)}
	b.group = &grouper[*txRequest]{run: b.commitGroup}
	return b
}

func (b *sqliteBackend) exec(ctx context.Context, s string, args ...any) (int64, error) {
	if err := b.file.checkRecent(); err != nil {
		return 0, err
	}
	return b.sqlQuerier.exec(ctx, s, args...)
}

func (b *sqliteBackend) query(ctx context.Context, s string, args ...any) (rows, error) {
	if err := b.file.checkRecent(); err != nil {
		return nil, err
	}
	return b.sqlQuerier.query(ctx, s, args...)
}

func (b *sqliteBackend) queryRow(ctx context.Context, s string, args ...any) row {
	if err := b.file.checkRecent(); err != nil {
		return errRow{err}
	}
	return b.sqlQuerier.queryRow(ctx, s, args...)
}

// errRow is a row that failed before its query ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (b *sqliteBackend) inTx(ctx context.Context, fn func(q querier) error) error {
	done := make(chan error, 1)
	b.group.add(&txRequest{ctx: ctx, fn: fn, done: done})
	return <-done
}

func (b *sqliteBackend) commitGroup(batch []*txRequest) {
	finish := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	b.writer <- struct{}{}
	defer func() { <-b.writer }()
	// Nothing is committed to a file that is no longer the one opened: it would be lost.
	if err := b.file.check(); err != nil {
		finish(err)
		return
	}
	// The transaction itself outlives any one caller's context: a caller that gave up is
	// skipped below, the others still commit. It ends when the last of them gives up.
	ctx, cancel := batchContext(batch, func(r *txRequest) context.Context { return r.ctx })
	defer cancel()
	tx, err := b.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the DSN sets _txlock=immediate
	if err != nil {
		finish(fmt.Errorf("begin: %w", err))
		return
	}
	q := sqlQuerier{db: b.db, tx: tx, stmts: b.stmts}
	results := make([]error, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = fmt.Errorf("waiting for the write lock: %w", err)
			continue
		}
		if len(batch) == 1 {
			results[i] = r.fn(q)
			continue
		}
		if _, err := tx.ExecContext(r.ctx, "SAVEPOINT w"); err != nil {
			results[i] = fmt.Errorf("savepoint: %w", err)
			continue
		}
		if err := r.fn(q); err != nil {
			results[i] = err
			if _, rerr := tx.ExecContext(context.Background(), "ROLLBACK TO w"); rerr != nil {
				_ = tx.Rollback()
				finish(fmt.Errorf("roll back a failed write: %w (after: %v)", rerr, err))
				return
			}
		}
		if _, err := tx.ExecContext(context.Background(), "RELEASE w"); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if len(batch) == 1 && results[0] != nil {
		_ = tx.Rollback()
		finish(results[0])
		return
	}
	if err := tx.Commit(); err != nil {
		finish(fmt.Errorf("commit: %w", err))
		return
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// write joins the group commit: on SQLite a write outside it would contend for the one writer.
func (b *sqliteBackend) write(ctx context.Context, s string, args ...any) (int64, error) {
	var n int64
	err := b.inTx(ctx, func(q querier) error {
		var err error
		n, err = q.exec(ctx, s, args...)
		return err
	})
	return n, err
}

func (b *sqliteBackend) writeRow(ctx context.Context, dest []any, s string, args ...any) error {
	return b.inTx(ctx, func(q querier) error { return q.queryRow(ctx, s, args...).Scan(dest...) })
}

func (b *sqliteBackend) ping(ctx context.Context) error {
	if err := b.file.check(); err != nil {
		return err
	}
	return b.db.PingContext(ctx)
}

// enableStmts switches the statement cache on; called once the schema is migrated, before the
// store is used.
func (b *sqliteBackend) enableStmts() { b.stmts = newStmtCache(b.db) }

func (b *sqliteBackend) close() error {
	if b.stmts != nil {
		b.stmts.close()
	}
	err := b.db.Close()
	if ferr := b.file.close(); err == nil {
		err = ferr
	}
	return err
}

// batchContext bounds the work done for a batch of callers: it ends when the last caller's
// deadline passes, not with any one caller; without a deadline on some caller, never.
func batchContext[R any](batch []R, ctxOf func(R) context.Context) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, r := range batch {
		d, ok := ctxOf(r).Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.Background(), last)
}

// ---- group commit, shared by both backends ----

// maxGroup bounds how many queued requests one batch carries.
const maxGroup = 256

// grouper queues requests that arrive while a batch is being written and hands them to run as
// the next batch: leader and followers. A request that finds no batch running leads: it runs
// the next batch (its own request is the first of it) and, while requests keep queueing, up to
// leadBatches batches; then it hands the lead to the first request still waiting, whose caller
// goes on. So no goroutine is started per batch and no caller is held for a whole burst. run
// must answer every request of its batch.
type grouper[R any] struct {
	run     func([]R)
	mu      sync.Mutex
	pending []*groupSlot[R]
	leading bool
}

type groupSlot[R any] struct {
	r    R
	lead chan struct{} // closed: this caller runs the next batch
	ran  chan struct{} // closed: the batch holding r has run
}

// add queues r and returns once the batch holding r has run.
func (g *grouper[R]) add(r R) {
	s := &groupSlot[R]{r: r, lead: make(chan struct{}), ran: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, s)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		select {
		case <-s.ran:
			return
		case <-s.lead:
		}
	}
	for n := 1; g.runBatch(n == leadBatches); n++ {
	}
}

// leadBatches is how many batches one caller runs at most while requests keep queueing. Handing
// the lead on after every batch leaves the store idle until the next leader is scheduled (with
// many runnable goroutines on 2 CPUs that cost 10,000 targets at 50 ms about 0.5 s); never
// handing it on held one caller for a whole burst.
const leadBatches = 8

// runBatch runs the next batch. If requests are left it hands the lead to the first of them
// when handOff is set, or else reports that this caller runs the next batch too.
func (g *grouper[R]) runBatch(handOff bool) bool {
	g.mu.Lock()
	batch := g.pending[:min(len(g.pending), maxGroup)]
	g.pending = g.pending[len(batch):]
	g.mu.Unlock()
	rs := make([]R, len(batch))
	for i, s := range batch {
		rs[i] = s.r
	}
	g.run(rs)
	for _, s := range batch {
		close(s.ran)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		g.leading = false
		return false
	}
	if handOff {
		close(g.pending[0].lead)
		return false
	}
	return true
}

// ---- PostgreSQL (pgx) ----

type pgBackend struct {
	pool *pgxpool.Pool
	// Single-statement writes that arrive while a batch is in flight are queued and sent
	// together as the next batch: one round trip and one commit for all of them (see write).
	group *grouper[*pgWrite]
}

func newPGBackend(pool *pgxpool.Pool) *pgBackend {
	b := &pgBackend{pool: pool}
	b.group = &grouper[*pgWrite]{run: b.writeBatch}
	return b
}

type pgWrite struct {
	ctx  context.Context
	sql  string
	args []any
	dest []any // the returned row is scanned into dest; nil: no row
	n    int64
	done chan error
}

func (b *pgBackend) exec(ctx context.Context, s string, args ...any) (int64, error) {
	return pgQuerier{b.pool}.exec(ctx, s, args...)
}

func (b *pgBackend) query(ctx context.Context, s string, args ...any) (rows, error) {
	return pgQuerier{b.pool}.query(ctx, s, args...)
}

func (b *pgBackend) queryRow(ctx context.Context, s string, args ...any) row {
	return pgQuerier{b.pool}.queryRow(ctx, s, args...)
}

func (b *pgBackend) inTx(ctx context.Context, fn func(q querier) error) error {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(pgQuerier{tx}); err != nil {
		// Not canceled with ctx (the rollback frees the connection), but bounded: a server that
		// stopped answering must not hold this caller.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgRollbackTimeout)
		_ = tx.Rollback(rctx)
		cancel()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// write runs one statement as a transaction of its own. Statements queued while a batch is in
// flight go together in the next one: a pipeline ending in a single Sync, which PostgreSQL runs
// as one implicit transaction. The caller returns once its statement is committed.
func (b *pgBackend) write(ctx context.Context, s string, args ...any) (int64, error) {
	w := b.queue(ctx, nil, s, args)
	return w.n, <-w.done
}

func (b *pgBackend) writeRow(ctx context.Context, dest []any, s string, args ...any) error {
	return <-b.queue(ctx, dest, s, args).done
}

func (b *pgBackend) queue(ctx context.Context, dest []any, s string, args []any) *pgWrite {
	s, args = dialectPostgres.rewrite(s, args)
	w := &pgWrite{ctx: ctx, sql: s, args: args, dest: dest, done: make(chan error, 1)}
	b.group.add(w)
	return w
}

// pgBatchTimeout bounds one batch of writes when a caller has no deadline. A batch is not
// canceled with any one caller: the others' statements still commit; it ends when the last of
// them gives up (store/guard gives each a deadline: store.timeout).
const pgBatchTimeout = 30 * time.Second

// pgRollbackTimeout bounds the rollback of a failed transaction.
const pgRollbackTimeout = 5 * time.Second

func (b *pgBackend) writeBatch(ws []*pgWrite) {
	live := ws[:0:0]
	for _, w := range ws {
		if err := w.ctx.Err(); err != nil {
			w.done <- fmt.Errorf("waiting to write: %w", err)
			continue
		}
		live = append(live, w)
	}
	if len(live) == 1 {
		b.writeEach(live)
		return
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := batchContext(live, func(w *pgWrite) context.Context { return w.ctx })
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), pgBatchTimeout)
		defer cancel()
	}
	batch := &pgx.Batch{}
	for _, w := range live {
		batch.Queue(w.sql, w.args...)
	}
	br := b.pool.SendBatch(ctx, batch)
	var err error
	for _, w := range live {
		if w.dest != nil {
			if err = br.QueryRow().Scan(w.dest...); err != nil {
				break
			}
			continue
		}
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err != nil {
			break
		}
		w.n = tag.RowsAffected()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		for _, w := range live {
			w.done <- nil
		}
	case errors.As(err, &pgErr):
		// A statement failed (or a deadlock with another replica aborted the batch), so the
		// whole batch rolled back: send each statement alone, so that only its own caller
		// sees its error.
		b.writeEach(live)
	default:
		// The connection failed: whether the commit landed is unknown, so every caller gets
		// the error (and the engine treats each write as uncertain).
		for _, w := range live {
			w.done <- fmt.Errorf("batch of %d writes: %w", len(live), err)
		}
	}
}

func (b *pgBackend) writeEach(ws []*pgWrite) {
	for _, w := range ws {
		if w.dest != nil {
			w.done <- b.pool.QueryRow(w.ctx, w.sql, w.args...).Scan(w.dest...)
			continue
		}
		tag, err := b.pool.Exec(w.ctx, w.sql, w.args...)
		w.n = tag.RowsAffected()
		w.done <- err
	}
}

func (b *pgBackend) ping(ctx context.Context) error { return b.pool.Ping(ctx) }
func (b *pgBackend) close() error                   { b.pool.Close(); return nil }

// pgQuerier runs statements on the pool or in a pgx.Tx.
type pgQuerier struct {
	c interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (q pgQuerier) exec(ctx context.Context, s string, args ...any) (int64, error) {
	s, args = dialectPostgres.rewrite(s, args)
	tag, err := q.c.Exec(ctx, s, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgQuerier) query(ctx context.Context, s string, args ...any) (rows, error) {
	s, args = dialectPostgres.rewrite(s, args)
	return q.c.Query(ctx, s, args...)
}

func (q pgQuerier) queryRow(ctx context.Context, s string, args ...any) row {
	s, args = dialectPostgres.rewrite(s, args)
	return q.c.QueryRow(ctx, s, args...)
}
