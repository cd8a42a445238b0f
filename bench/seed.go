package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver the seeder writes with

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/pgtest"
	"github.com/credsync/credsync/store/sqlstore"
)

// Seeding a store with history. Submitting a million rotations through the API would take
// hours, so the harness writes the rows a finished rotation leaves behind directly, in big
// transactions (SQLite) or COPY (PostgreSQL), into a store the gateway's own sqlstore.Open has
// created and migrated. The rows are those the gateway writes for a password rotation that
// succeeded on every target (TestSeedMatchesGateway compares them with a real one):
//
//	rotations         status succeeded, finished_at set, sealed_credential NULL (deleted when
//	                  every target succeeded), lease released (NULL), targets '[]'
//	rotation_targets  one row per target: the JSON of its core.TargetResult, and its status
//	audit_events      rotation.submitted, one target.finished per target, rotation.finished
//	events            the outbox's rotation.succeeded (no notification configured: no delivery)
//	source_seqs       each source's last seq
//	target_last       each target's newest outcome (its source's last rotation)
//	target_claims     each target's last claim, released (inflight_until in the past)

// seedPlan is Rotations finished rotations over Sources, in turn: rotation k is source
// k % len(Sources), seq k / len(Sources) + 1, created one millisecond after rotation k-1.
type seedPlan struct {
	Sources   []src
	Rotations int
	// Start is the first rotation's creation time.
	Start time.Time
}

// seedBatch is how many rotations one transaction (SQLite) or one COPY round (PostgreSQL) writes.
const seedBatch = 5000

// seedRows is what a batch of rotations writes, table by table.
type seedRows struct {
	rotations, targets, audit, events [][]any
}

var (
	seedRotationCols = []string{"id", "source", "seq", "status", "created_at", "finished_at", "actor", "credential_type", "targets",
		"sealed_credential", "lease_owner", "lease_until"}
	seedTargetCols = []string{"rotation_id", "idx", "state", "status"}
	seedAuditCols  = []string{"occurred_at", "actor", "action", "source", "rotation_id", "target", "status", "detail"}
	seedEventCols  = []string{"id", "type", "created_at", "payload"}
	seedLastCols   = []string{"source", "target", "seq", "rotation_id", "state", "status", "verified", "finished_at", "error"}
	seedClaimCols  = []string{"source", "target", "seq", "rotation_id", "inflight", "inflight_until", "holder", "want_seq"}
	seedSeqCols    = []string{"source", "last_seq"}
)

// seededRotation is one rotation of the plan: its id, source, seq and its times.
type seededRotation struct {
	ID      string
	Source  *src
	Seq     int64
	Created time.Time
}

func (p *seedPlan) rotation(k int) seededRotation {
	created := p.Start.Add(time.Duration(k) * time.Millisecond).UTC().Truncate(time.Microsecond)
	ms := created.UnixMilli()
	// The id as core's idGen makes it: milliseconds, a counter, 4 random bytes (here from k).
	id := fmt.Sprintf("rot_%011x%04x%08x", ms, 0, uint32(k)*2654435761)
	s := &p.Sources[k%len(p.Sources)]
	return seededRotation{ID: id, Source: s, Seq: int64(k/len(p.Sources) + 1), Created: created}
}

// targetStates are the finished targets of rotation r, as the engine records them.
func (r seededRotation) targetStates() []core.TargetResult {
	out := make([]core.TargetResult, len(r.Source.Targets))
	for i, t := range r.Source.Targets {
		started := r.Created.Add(3*time.Millisecond + time.Duration(i)*time.Microsecond)
		finished := started.Add(10 * time.Millisecond)
		out[i] = core.TargetResult{Name: t.Name, Platform: t.Vendor, Vendor: t.Vendor, Status: core.TargetSucceeded,
			Verified: t.Verify, Attempts: 1, StartedAt: &started, FinishedAt: &finished}
	}
	return out
}

func (r seededRotation) finished() time.Time {
	return r.Created.Add(16*time.Millisecond + time.Duration(len(r.Source.Targets))*time.Microsecond)
}

// maxSeedEventTargets is core's maxEventTargets: the targets one event lists.
const maxSeedEventTargets = 100

// rows appends rotation k's rows to out and returns its target states (JSON).
func (p *seedPlan) rows(k int, out *seedRows) ([]string, error) {
	r := p.rotation(k)
	fin := r.finished()
	states := r.targetStates()
	out.rotations = append(out.rotations, []any{r.ID, r.Source.Name, r.Seq, string(core.RotationSucceeded), r.Created.UnixMicro(),
		fin.UnixMicro(), "bench", string(core.TypePassword), "[]", nil, nil, nil})
	out.audit = append(out.audit, []any{r.Created.Add(46 * time.Microsecond).UnixMicro(), "bench", "rotation.submitted", r.Source.Name, r.ID,
		"", "", fmt.Sprintf("%s to %d target(s)", core.TypePassword, len(states))})
	js := make([]string, len(states))
	ev := core.Event{Type: "rotation." + string(core.RotationSucceeded), Time: fin.Add(time.Millisecond), Source: r.Source.Name, RotationID: r.ID}
	ev.ID = fmt.Sprintf("evt_%013x%012x", ev.Time.UnixMilli(), uint64(k)*11400714819323198485>>16)
	for i, t := range states {
		b, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode target %d of %s: %w", i, r.ID, err)
		}
		js[i] = string(b)
		out.targets = append(out.targets, []any{r.ID, i, js[i], string(t.Status)})
		out.audit = append(out.audit, []any{t.FinishedAt.UnixMicro(), "", "target.finished", r.Source.Name, r.ID, t.Name, string(t.Status), ""})
		if len(ev.Targets) < maxSeedEventTargets {
			ev.Targets = append(ev.Targets, core.EventTarget{Name: t.Name, Platform: t.Platform, Status: string(t.Status)})
		}
	}
	out.audit = append(out.audit, []any{fin.Add(time.Millisecond).UnixMicro(), "", "rotation.finished", r.Source.Name, r.ID, "", string(core.RotationSucceeded), ""})
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event of %s: %w", r.ID, err)
	}
	out.events = append(out.events, []any{ev.ID, ev.Type, ev.Time.UnixMicro(), string(payload)})
	return js, nil
}

// last are the rows that hold one per source or target: its last rotation's.
func (p *seedPlan) last() (seqs, lasts, claims [][]any, err error) {
	if p.Rotations == 0 {
		return nil, nil, nil, nil
	}
	first := max(0, p.Rotations-len(p.Sources))
	for k := first; k < p.Rotations; k++ {
		r := p.rotation(k)
		states := r.targetStates()
		seqs = append(seqs, []any{r.Source.Name, r.Seq})
		for i, t := range r.Source.Targets {
			// As sqlstore's lastArgs writes them: no error, finished_at as its JSON text.
			lasts = append(lasts, []any{r.Source.Name, t.Name, r.Seq, r.ID, "", string(states[i].Status), states[i].Verified,
				states[i].FinishedAt.Format(time.RFC3339Nano), nil})
			claims = append(claims, []any{r.Source.Name, t.Name, r.Seq, r.ID, false,
				r.Created.Add(12 * time.Millisecond).UnixMicro(), fmt.Sprintf("vm:bench/%016x", uint64(k)*31+uint64(i)), int64(0)})
		}
	}
	return seqs, lasts, claims, nil
}

// generate sends the plan's rows in batches of seedBatch rotations; it stops when ctx ends.
func (p *seedPlan) generate(ctx context.Context, out chan<- *seedRows) error {
	defer close(out)
	for start := 0; start < p.Rotations; start += seedBatch {
		b := &seedRows{}
		for k := start; k < min(start+seedBatch, p.Rotations); k++ {
			if _, err := p.rows(k, b); err != nil {
				return err
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return fmt.Errorf("seed: %w", ctx.Err())
		}
	}
	return nil
}

// seedStore creates and migrates the store with the gateway's own sqlstore.Open, then writes the
// plan's rows. An empty plan (no rotations) leaves a migrated, empty store.
func seedStore(ctx context.Context, st store, path string, p *seedPlan) error {
	dsn := st.DSN
	if st.Driver == "sqlite" {
		dsn = path
	}
	s, err := sqlstore.Open(ctx, st.Driver, dsn)
	if err != nil {
		return fmt.Errorf("seed: open the store: %w", err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if p.Rotations == 0 {
		return nil
	}
	if st.Driver == "sqlite" {
		return seedSQLite(ctx, path, p)
	}
	return seedPostgres(ctx, st.DSN, p)
}

// rowWriter writes rows into one table.
type rowWriter func(ctx context.Context, table string, cols []string, rows [][]any) error

// seedWith runs the generator beside w: one goroutine encodes, the caller writes.
func seedWith(ctx context.Context, p *seedPlan, w rowWriter, commit func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *seedRows, 2)
	genErr := make(chan error, 1)
	go func() { genErr <- p.generate(ctx, ch) }()
	for b := range ch {
		for _, t := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{{"rotations", seedRotationCols, b.rotations}, {"rotation_targets", seedTargetCols, b.targets},
			{"audit_events", seedAuditCols, b.audit}, {"events", seedEventCols, b.events}} {
			if err := w(ctx, t.table, t.cols, t.rows); err != nil {
				cancel()
				<-genErr
				return err
			}
		}
		if err := commit(ctx); err != nil {
			cancel()
			<-genErr
			return err
		}
	}
	if err := <-genErr; err != nil {
		return err
	}
	seqs, lasts, claims, err := p.last()
	if err != nil {
		return err
	}
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{{"source_seqs", seedSeqCols, seqs}, {"target_last", seedLastCols, lasts}, {"target_claims", seedClaimCols, claims}} {
		for start := 0; start < len(t.rows); start += seedBatch {
			if err := w(ctx, t.table, t.cols, t.rows[start:min(start+seedBatch, len(t.rows))]); err != nil {
				return err
			}
		}
	}
	return commit(ctx)
}

// sqliteParams bounds one INSERT's bound parameters (SQLite's limit is 32766).
const sqliteParams = 30000

// seedSQLite writes the plan into the SQLite file at path, one transaction per batch. The
// seeding connection runs with synchronous=OFF (a crash while seeding loses only the seed);
// the gateway opens the file with its own settings afterwards.
func seedSQLite(ctx context.Context, path string, p *seedPlan) (err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw")
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("seed %s: close: %w", path, cerr)
		}
	}()
	db.SetMaxOpenConns(1)
	for _, pragma := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-262144"} {
		if _, err := db.ExecContext(ctx, pragma); err != nil {
			return fmt.Errorf("seed %s: %s: %w", path, pragma, err)
		}
	}
	var tx *sql.Tx
	begin := func(ctx context.Context) error {
		var err error
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("seed %s: begin: %w", path, err)
		}
		return nil
	}
	if err := begin(ctx); err != nil {
		return err
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	write := func(ctx context.Context, table string, cols []string, rows [][]any) error {
		per := max(1, sqliteParams/len(cols))
		for start := 0; start < len(rows); start += per {
			chunk := rows[start:min(start+per, len(rows))]
			one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
			args := make([]any, 0, len(chunk)*len(cols))
			for _, r := range chunk {
				args = append(args, r...)
			}
			q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+", ", len(chunk)), ", ")
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("seed %s: insert into %s: %w", path, table, err)
			}
		}
		return nil
	}
	// The next transaction is begun with ctx, not with seedWith's (canceled when it returns).
	commit := func(context.Context) error {
		if err := tx.Commit(); err != nil {
			tx = nil
			return fmt.Errorf("seed %s: commit: %w", path, err)
		}
		return begin(ctx)
	}
	if err := seedWith(ctx, p, write, commit); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		tx = nil
		return fmt.Errorf("seed %s: commit: %w", path, err)
	}
	tx = nil
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("seed %s: checkpoint: %w", path, err)
	}
	return nil
}

// seedPostgres writes the plan with COPY, then runs VACUUM ANALYZE: the state autovacuum keeps a
// history grown over months in. Without it autovacuum vacuums the freshly loaded gigabytes during
// the measurement (PostgreSQL vacuums tables after many inserts), and the reads meet it: with
// ANALYZE alone one run's GET /v1/rotations/{id} had 4 of 300 reads over 360 ms (p50 1.5 ms).
func seedPostgres(ctx context.Context, dsn string, p *seedPlan) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("seed postgres: %w", err)
	}
	defer pool.Close()
	write := func(ctx context.Context, table string, cols []string, rows [][]any) error {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("seed postgres: copy into %s: %w", table, err)
		}
		return nil
	}
	if err := seedWith(ctx, p, write, func(context.Context) error { return nil }); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("seed postgres: analyze: %w", err)
	}
	return nil
}

// storeBytes is the store's size on disk: the SQLite file with its -wal, or the sum of
// pg_total_relation_size over the tables of the database's public schema.
func storeBytes(ctx context.Context, st store, path string) (int64, error) {
	if st.Driver == "sqlite" {
		var total int64
		for _, f := range []string{path, path + "-wal"} {
			fi, err := os.Stat(f)
			if err != nil {
				if os.IsNotExist(err) && f != path {
					continue
				}
				return 0, fmt.Errorf("size of %s: %w", f, err)
			}
			total += fi.Size()
		}
		return total, nil
	}
	conn, err := pgx.Connect(ctx, st.DSN)
	if err != nil {
		return 0, fmt.Errorf("size of the postgres store: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int64
	if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of the postgres store: %w", err)
	}
	return n, nil
}

// createDatabase makes a fresh database on pg and returns its DSN.
func createDatabase(ctx context.Context, pg *pgtest.Server, name string) (string, error) {
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return pg.DSN(name), nil
}
