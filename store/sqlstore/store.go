package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/credsync/credsync/core"
)

var _ core.Store = (*Store)(nil)

// finishedStatuses is the SQL list of finished rotation statuses (core.RotationStatus.Finished).
var finishedStatuses = "('" + string(core.RotationSucceeded) + "', '" + string(core.RotationPartial) + "', '" +
	string(core.RotationFailed) + "', '" + string(core.RotationSuperseded) + "')"

const rotationColumns = `id, source, seq, status, created_at, finished_at, actor, credential_type, source_rotation`

// targetChunk is how many target rows one INSERT writes.
const targetChunk = 400

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func ttlMicros(ttl time.Duration) int64 { return ttl.Microseconds() }

// sealedArg stores an empty sealed credential as NULL: "no credential", as for nil.
func sealedArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func scanRotation(r interface{ Scan(...any) error }) (*core.Rotation, error) {
	var (
		rot      core.Rotation
		status   string
		created  int64
		finished sql.NullInt64
		ctype    string
		srcRot   sql.NullString
	)
	if err := r.Scan(&rot.ID, &rot.Source, &rot.Seq, &status, &created, &finished, &rot.Actor, &ctype, &srcRot); err != nil {
		return nil, err
	}
	if srcRot.Valid && srcRot.String != "" {
		var st core.SourceRotationState
		if err := json.Unmarshal([]byte(srcRot.String), &st); err != nil {
			return nil, fmt.Errorf("decode source_rotation of %s: %w", rot.ID, err)
		}
		rot.SourceRotation = &st
	}
	rot.Status = core.RotationStatus(status)
	rot.Type = core.CredentialType(ctype)
	rot.CreatedAt = fromMicros(created)
	if finished.Valid {
		t := fromMicros(finished.Int64)
		rot.FinishedAt = &t
	}
	rot.Targets = []core.TargetResult{}
	return &rot, nil
}

// loadTargets fills in the targets of rotations read by scanRotation.
func loadTargets(ctx context.Context, q querier, rots []*core.Rotation) error {
	if len(rots) == 0 {
		return nil
	}
	byID := make(map[string]*core.Rotation, len(rots))
	ph := make([]string, len(rots))
	args := make([]any, len(rots))
	for i, r := range rots {
		byID[r.ID] = r
		ph[i] = "$" + strconv.Itoa(i+1)
		args[i] = r.ID
	}
	rs, err := q.query(ctx, `SELECT rotation_id, idx, state FROM rotation_targets WHERE rotation_id IN (`+
		strings.Join(ph, ", ")+`) ORDER BY rotation_id, idx`, args...)
	if err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id    string
			idx   int
			state string
		)
		if err := rs.Scan(&id, &idx, &state); err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		var t core.TargetResult
		if err := json.Unmarshal([]byte(state), &t); err != nil {
			return fmt.Errorf("decode target %d of rotation %s: %w", idx, id, err)
		}
		r := byID[id]
		if idx != len(r.Targets) {
			return fmt.Errorf("rotation %s: target %d missing", id, len(r.Targets))
		}
		r.Targets = append(r.Targets, t)
	}
	return rs.Err()
}

// upsertLastSQL records a finished target of rotation $1 as target $2's last outcome (the
// columns lastArgs makes: $3 status, $4 verified, $5 finished_at, $6 error), unless a newer
// rotation (higher seq) of the source already left one.
const upsertLastSQL = `INSERT INTO target_last (source, target, seq, rotation_id, state, status, verified, finished_at, error)
	SELECT source, $2, seq, id, '', $3, $4, $5, $6 FROM rotations WHERE id = $1
	ON CONFLICT (source, target) DO UPDATE SET ` + lastUpdateSQL

// lastUpdateSQL is the ON CONFLICT update of a target_last row, which a newer outcome wins.
const lastUpdateSQL = `seq = excluded.seq, rotation_id = excluded.rotation_id,
	status = excluded.status, verified = excluded.verified, finished_at = excluded.finished_at, error = excluded.error
	WHERE excluded.seq >= target_last.seq`

// lastArgs are the target_last columns of a finished target: status, verified, finished_at (the
// RFC 3339 text its JSON holds, or nil) and error (its JSON, or nil).
func lastArgs(t core.TargetResult) ([]any, error) {
	var fin, errJSON any
	if t.FinishedAt != nil {
		fin = t.FinishedAt.Format(time.RFC3339Nano)
	}
	if t.Error != nil {
		b, err := json.Marshal(t.Error)
		if err != nil {
			return nil, fmt.Errorf("encode the error of target %s: %w", t.Name, err)
		}
		errJSON = string(b)
	}
	return []any{string(t.Status), t.Verified, fin, errJSON}, nil
}

// scanLast reads a target_last row's outcome columns (after rotation_id) into a LastOutcome.
func scanLast(rid, status string, verified bool, fin, errJSON sql.NullString) (core.LastOutcome, error) {
	lo := core.LastOutcome{RotationID: rid, Status: core.TargetStatus(status), Verified: verified}
	if fin.Valid {
		at, err := time.Parse(time.RFC3339Nano, fin.String)
		if err != nil {
			return lo, fmt.Errorf("finished_at: %w", err)
		}
		lo.FinishedAt = &at
	}
	if errJSON.Valid {
		lo.Error = new(core.Error)
		if err := json.Unmarshal([]byte(errJSON.String), lo.Error); err != nil {
			return lo, fmt.Errorf("error: %w", err)
		}
	}
	return lo, nil
}

// writeTargets upserts every target row of a rotation, in chunks.
func writeTargets(ctx context.Context, q querier, id string, ts []core.TargetResult) error {
	for start := 0; start < len(ts); start += targetChunk {
		end := min(start+targetChunk, len(ts))
		vals := make([]string, 0, end-start)
		args := make([]any, 0, 4*(end-start))
		for i := start; i < end; i++ {
			b, err := json.Marshal(ts[i])
			if err != nil {
				return fmt.Errorf("encode target %d: %w", i, err)
			}
			n := len(args)
			vals = append(vals, fmt.Sprintf("($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4))
			args = append(args, id, i, string(b), string(ts[i].Status))
		}
		if _, err := q.exec(ctx, `INSERT INTO rotation_targets (rotation_id, idx, state, status) VALUES `+strings.Join(vals, ", ")+
			` ON CONFLICT (rotation_id, idx) DO UPDATE SET state = excluded.state, status = excluded.status`, args...); err != nil {
			return fmt.Errorf("write targets: %w", err)
		}
		for i := start; i < end; i++ {
			if ts[i].Status.Finished() {
				last, err := lastArgs(ts[i])
				if err != nil {
					return err
				}
				if _, err := q.exec(ctx, upsertLastSQL, append([]any{id, ts[i].Name}, last...)...); err != nil {
					return fmt.Errorf("record the last outcome of target %s: %w", ts[i].Name, err)
				}
			}
		}
	}
	return nil
}

func finishedArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// errIdempotencyHit rolls back a CreateRotation that lost the race for its idempotency key.
var errIdempotencyHit = errors.New("idempotency key already used")

// CreateRotation implements core.Store: in one transaction it checks the idempotency key, takes
// the source's next sequence number (an upsert on source_seqs, which also serializes creations
// of one source), inserts the rotation with its sealed credential and lease, and records the
// idempotency key. A key taken by a concurrent transaction is caught by the key's primary key
// and rolls everything back, so a hit records nothing.
func (s *Store) CreateRotation(ctx context.Context, n core.NewRotation) (*core.IdempotencyHit, error) {
	r := n.Rotation
	if r == nil {
		return nil, errors.New("sqlstore: create rotation: no rotation")
	}
	if s.dialect == dialectPostgres && n.IdempotencyKey == "" && r.SourceRotation == nil {
		return nil, s.createRotationPG(ctx, n)
	}
	var (
		hit *core.IdempotencyHit
		seq int64
	)
	err := s.b.inTx(ctx, func(q querier) error {
		hit = nil
		if n.IdempotencyKey != "" {
			h, err := findIdempotencyKey(ctx, q, n.Actor, n.IdempotencyKey)
			if err != nil {
				return err
			}
			if h != nil {
				hit = h
				return errIdempotencyHit
			}
		}
		if err := q.queryRow(ctx, `INSERT INTO source_seqs (source, last_seq) VALUES ($1, 1)
			ON CONFLICT (source) DO UPDATE SET last_seq = source_seqs.last_seq + 1
			RETURNING last_seq`, r.Source).Scan(&seq); err != nil {
			return fmt.Errorf("next seq of source %s: %w", r.Source, err)
		}
		if _, err := q.exec(ctx, `INSERT INTO rotations (id, source, seq, status, created_at, finished_at, actor,
				credential_type, targets, sealed_credential, lease_owner, lease_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', $9, NULLIF($10, ''),
				CASE WHEN $10 = '' THEN NULL ELSE @now + $11 END)`,
			r.ID, r.Source, seq, string(r.Status), micros(r.CreatedAt), finishedArg(r.FinishedAt), r.Actor,
			string(r.Type), sealedArg(n.SealedCredential), n.Owner, ttlMicros(n.LeaseTTL)); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if err := writeTargets(ctx, q, r.ID, r.Targets); err != nil {
			return err
		}
		if r.SourceRotation != nil {
			b, err := json.Marshal(r.SourceRotation)
			if err != nil {
				return fmt.Errorf("encode source_rotation: %w", err)
			}
			if _, err := q.exec(ctx, `UPDATE rotations SET source_rotation = $2 WHERE id = $1`, r.ID, string(b)); err != nil {
				return fmt.Errorf("record source_rotation: %w", err)
			}
		}
		if n.Audit != nil {
			if _, err := q.exec(ctx, appendAuditSQL, auditArgs(*n.Audit)...); err != nil {
				return fmt.Errorf("append audit event: %w", err)
			}
		}
		if n.IdempotencyKey == "" {
			return nil
		}
		inserted, err := q.exec(ctx, `INSERT INTO idempotency_keys (actor, idem_key, rotation_id, request_hash, created_at)
			VALUES ($1, $2, $3, $4, @now) ON CONFLICT (actor, idem_key) DO NOTHING`,
			n.Actor, n.IdempotencyKey, r.ID, n.RequestHash)
		if err != nil {
			return fmt.Errorf("record idempotency key: %w", err)
		}
		if inserted == 0 { // a concurrent request took the key first and committed
			h, err := findIdempotencyKey(ctx, q, n.Actor, n.IdempotencyKey)
			if err != nil {
				return err
			}
			if h == nil {
				return errors.New("idempotency key conflict but no row")
			}
			hit = h
			return errIdempotencyHit
		}
		return nil
	})
	if errors.Is(err, errIdempotencyHit) {
		return hit, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: create rotation %s: %w", r.ID, err)
	}
	r.Seq = seq
	return nil, nil
}

// createRotationPG is CreateRotation without an idempotency key on PostgreSQL: one statement
// (its data-modifying CTEs take the source's next sequence number and insert the rotation, its
// targets and its audit event), so it joins the batch of queued writes: one round trip, no transaction of its own.
func (s *Store) createRotationPG(ctx context.Context, n core.NewRotation) error {
	r := n.Rotation
	states := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("sqlstore: create rotation %s: encode target %d: %w", r.ID, i, err)
		}
		states[i] = string(b)
	}
	args := []any{r.ID, r.Source, string(r.Status), micros(r.CreatedAt), finishedArg(r.FinishedAt), r.Actor,
		string(r.Type), sealedArg(n.SealedCredential), n.Owner, ttlMicros(n.LeaseTTL), states}
	auditCTE := ""
	if n.Audit != nil {
		auditCTE = `,
		aud AS (` + insertAudit(len(args)+1) + `)`
		args = append(args, auditArgs(*n.Audit)...)
	}
	var seq int64
	err := s.b.writeRow(ctx, []any{&seq}, `WITH next AS (
			INSERT INTO source_seqs (source, last_seq) VALUES ($2, 1)
			ON CONFLICT (source) DO UPDATE SET last_seq = source_seqs.last_seq + 1
			RETURNING last_seq),
		rot AS (
			INSERT INTO rotations (id, source, seq, status, created_at, finished_at, actor,
				credential_type, targets, sealed_credential, lease_owner, lease_until)
			SELECT $1, $2, next.last_seq, $3, $4, $5, $6, $7, '[]', $8, NULLIF($9, ''),
				CASE WHEN $9 = '' THEN NULL ELSE @now + $10 END
			FROM next
			RETURNING seq),
		tgt AS (
			INSERT INTO rotation_targets (rotation_id, idx, state, status)
			SELECT $1, ord - 1, state, COALESCE(state::jsonb ->> 'status', '') FROM unnest($11::text[]) WITH ORDINALITY AS t(state, ord))`+auditCTE+`
		SELECT seq FROM rot`, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: create rotation %s: %w", r.ID, err)
	}
	r.Seq = seq
	return nil
}

// UpdateRotation implements core.Store: it replaces the status, finish time and targets.
func (s *Store) UpdateRotation(ctx context.Context, r *core.Rotation) error {
	var n int64
	err := s.b.inTx(ctx, func(q querier) error {
		var err error
		n, err = q.exec(ctx, `UPDATE rotations SET status = $2, finished_at = $3 WHERE id = $1`,
			r.ID, string(r.Status), finishedArg(r.FinishedAt))
		if err != nil || n == 0 {
			return err
		}
		if _, err := q.exec(ctx, `DELETE FROM rotation_targets WHERE rotation_id = $1 AND idx >= $2`, r.ID, len(r.Targets)); err != nil {
			return fmt.Errorf("drop targets: %w", err)
		}
		return writeTargets(ctx, q, r.ID, r.Targets)
	})
	if err != nil {
		return fmt.Errorf("sqlstore: update rotation %s: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: update rotation %s: %w", r.ID, core.ErrNotFound)
	}
	return nil
}

// SetRotationStatus implements core.Store: one statement on the rotation's row.
func (s *Store) SetRotationStatus(ctx context.Context, id string, status core.RotationStatus, finishedAt *time.Time) error {
	n, err := s.b.write(ctx, `UPDATE rotations SET status = $2, finished_at = $3 WHERE id = $1`, id, string(status), finishedArg(finishedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: set status of rotation %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: set status of rotation %s: %w", id, core.ErrNotFound)
	}
	return nil
}

// UpdateTarget implements core.Store: it replaces one target's row.
func (s *Store) UpdateTarget(ctx context.Context, rotationID string, idx int, t core.TargetResult) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("sqlstore: update target %d of %s: encode: %w", idx, rotationID, err)
	}
	n, err := s.b.write(ctx, `UPDATE rotation_targets SET state = $3, status = $4 WHERE rotation_id = $1 AND idx = $2`, rotationID, idx, string(b), string(t.Status))
	if err != nil {
		return fmt.Errorf("sqlstore: update target %d of %s: %w", idx, rotationID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: update target %d of %s: %w", idx, rotationID, core.ErrNotFound)
	}
	return nil
}

// FinishTarget implements core.Store. On PostgreSQL it is one statement (the audit row is
// inserted from the UPDATE's RETURNING, so only when the target exists) and joins the batch of
// queued writes; on SQLite two statements in one transaction of the group commit.
func (s *Store) FinishTarget(ctx context.Context, rotationID string, idx int, t core.TargetResult, ev core.AuditEvent) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("sqlstore: finish target %d of %s: encode: %w", idx, rotationID, err)
	}
	last, err := lastArgs(t)
	if err != nil {
		return fmt.Errorf("sqlstore: finish target %d of %s: %w", idx, rotationID, err)
	}
	args := append([]any{rotationID, idx, string(b)}, auditArgs(ev)...)
	args = append(args, string(t.Status), t.Name)
	var n int64
	if s.dialect == dialectPostgres {
		// One statement: the target row, its audit event and its last outcome, the last two
		// only when the target exists.
		n, err = s.b.write(ctx, `WITH upd AS (
				UPDATE rotation_targets SET state = $3, status = $12 WHERE rotation_id = $1 AND idx = $2 RETURNING 1),
			aud AS (INSERT INTO audit_events (occurred_at, actor, action, source, rotation_id, target, status, detail)
				SELECT $4::bigint, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text FROM upd)
			INSERT INTO target_last (source, target, seq, rotation_id, state, status, verified, finished_at, error)
				SELECT r.source, $13::text, r.seq, r.id, '', $12::text, $14::boolean, $15::text, $16::text FROM rotations r, upd WHERE r.id = $1
			ON CONFLICT (source, target) DO UPDATE SET `+lastUpdateSQL, append(args, last[1:]...)...)
		if err == nil && n == 0 {
			// Nothing was inserted into target_last: the target is missing, or a newer rotation
			// holds its last outcome. Tell them apart.
			err = s.b.queryRow(ctx, `SELECT count(*) FROM rotation_targets WHERE rotation_id = $1 AND idx = $2`, rotationID, idx).Scan(&n)
		}
	} else {
		err = s.b.inTx(ctx, func(q querier) error {
			if n, err = q.exec(ctx, `UPDATE rotation_targets SET state = $3, status = $4 WHERE rotation_id = $1 AND idx = $2`,
				rotationID, idx, string(b), string(t.Status)); err != nil || n == 0 {
				return err
			}
			if _, err := q.exec(ctx, appendAuditSQL, args[3:11]...); err != nil {
				return err
			}
			_, err := q.exec(ctx, upsertLastSQL, append([]any{rotationID, t.Name}, last...)...)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("sqlstore: finish target %d of %s: %w", idx, rotationID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: finish target %d of %s: %w", idx, rotationID, core.ErrNotFound)
	}
	return nil
}

// GetRotation implements core.Store.
func (s *Store) GetRotation(ctx context.Context, id string) (*core.Rotation, error) {
	r, err := scanRotation(s.b.queryRow(ctx, `SELECT `+rotationColumns+` FROM rotations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: rotation %s: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: %w", id, err)
	}
	if err := loadTargets(ctx, s.b, []*core.Rotation{r}); err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: %w", id, err)
	}
	return r, nil
}

// ListRotations implements core.Store: newest (highest ID) first.
func (s *Store) ListRotations(ctx context.Context, f core.ListFilter) ([]*core.Rotation, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.Sources != nil {
		where = append(where, inSources(&args, f.Sources))
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = core.DefaultListLimit
	}
	q := `SELECT ` + rotationColumns + ` FROM rotations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
	rs, err := s.b.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list rotations: %w", err)
	}
	defer rs.Close()
	out := make([]*core.Rotation, 0)
	for rs.Next() {
		r, err := scanRotation(rs)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list rotations: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list rotations: %w", err)
	}
	rs.Close()
	if err := loadCounts(ctx, s.b, out); err != nil {
		return nil, fmt.Errorf("sqlstore: list rotations: %w", err)
	}
	return out, nil
}

// loadCounts sets TargetCounts of rots from their target rows' statuses (the index
// rotation_targets_status: no row is decoded).
func loadCounts(ctx context.Context, q querier, rots []*core.Rotation) error {
	if len(rots) == 0 {
		return nil
	}
	byID := make(map[string]*core.Rotation, len(rots))
	ph := make([]string, len(rots))
	args := make([]any, len(rots))
	for i, r := range rots {
		byID[r.ID] = r
		r.TargetCounts, r.Targets = map[core.TargetStatus]int{}, []core.TargetResult{}
		ph[i] = "$" + strconv.Itoa(i+1)
		args[i] = r.ID
	}
	rs, err := q.query(ctx, `SELECT rotation_id, status, count(*) FROM rotation_targets WHERE rotation_id IN (`+
		strings.Join(ph, ", ")+`) GROUP BY rotation_id, status`, args...)
	if err != nil {
		return fmt.Errorf("count targets: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id, status string
			n          int
		)
		if err := rs.Scan(&id, &status, &n); err != nil {
			return fmt.Errorf("count targets: %w", err)
		}
		byID[id].TargetCounts[core.TargetStatus(status)] = n
	}
	return rs.Err()
}

// GetRotationPage implements core.Store: the rotation row, its per-status counts, and one page
// of its target rows (limit + 1 read, to know whether another page follows).
func (s *Store) GetRotationPage(ctx context.Context, id string, p core.TargetPage) (*core.Rotation, error) {
	after, limit, err := p.Bounds()
	if err != nil {
		return nil, err
	}
	r, err := scanRotation(s.b.queryRow(ctx, `SELECT `+rotationColumns+` FROM rotations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: rotation %s: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: %w", id, err)
	}
	if err := loadCounts(ctx, s.b, []*core.Rotation{r}); err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: %w", id, err)
	}
	q := `SELECT idx, state FROM rotation_targets WHERE rotation_id = $1 AND idx > $2`
	args := []any{id, after, limit + 1}
	if p.Status != "" {
		q += ` AND status = $4`
		args = append(args, string(p.Status))
	}
	rs, err := s.b.query(ctx, q+` ORDER BY idx LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: read targets: %w", id, err)
	}
	defer rs.Close()
	r.Targets = make([]core.TargetResult, 0, min(limit, 64))
	last := -1
	for rs.Next() {
		var (
			idx   int
			state string
		)
		if err := rs.Scan(&idx, &state); err != nil {
			return nil, fmt.Errorf("sqlstore: get rotation %s: read targets: %w", id, err)
		}
		if len(r.Targets) == limit {
			r.NextTargets = strconv.Itoa(last)
			break
		}
		var t core.TargetResult
		if err := json.Unmarshal([]byte(state), &t); err != nil {
			return nil, fmt.Errorf("sqlstore: decode target %d of rotation %s: %w", idx, id, err)
		}
		r.Targets = append(r.Targets, t)
		last = idx
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get rotation %s: read targets: %w", id, err)
	}
	return r, nil
}

// LastOutcomes implements core.Store: one row per target that ever finished.
func (s *Store) LastOutcomes(ctx context.Context) (map[string]map[string]core.LastOutcome, error) {
	rs, err := s.b.query(ctx, `SELECT source, target, rotation_id, status, verified, finished_at, error FROM target_last`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: last outcomes: %w", err)
	}
	defer rs.Close()
	out := map[string]map[string]core.LastOutcome{}
	var (
		source, target, rid, status string
		verified                    bool
		fin, errJSON                sql.NullString
		bySource                    map[string]core.LastOutcome
	)
	for rs.Next() {
		if err := rs.Scan(&source, &target, &rid, &status, &verified, &fin, &errJSON); err != nil {
			return nil, fmt.Errorf("sqlstore: last outcomes: %w", err)
		}
		lo, err := scanLast(rid, status, verified, fin, errJSON)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: last outcome of %s/%s: %w", source, target, err)
		}
		if bySource = out[source]; bySource == nil {
			bySource = map[string]core.LastOutcome{}
			out[source] = bySource
		}
		bySource[target] = lo
	}
	return out, rs.Err()
}

// PurgeHistory implements core.Store: one transaction of at most limit rotations, oldest
// finished first (index rotations_finished_at); their target rows and idempotency keys go with
// them (ON DELETE CASCADE).
func (s *Store) PurgeHistory(ctx context.Context, finishedBefore time.Time, limit int) (int, error) {
	n, err := s.b.write(ctx, `DELETE FROM rotations WHERE id IN (
		SELECT id FROM rotations WHERE finished_at IS NOT NULL AND finished_at < $1 ORDER BY finished_at LIMIT $2)`,
		micros(finishedBefore), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge history: %w", err)
	}
	return int(n), nil
}

// PurgeAudit implements core.Store: at most limit events, oldest first.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := s.b.write(ctx, `DELETE FROM audit_events WHERE id IN (
		SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY id LIMIT $2)`, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
	}
	return int(n), nil
}

func findIdempotencyKey(ctx context.Context, q querier, actor, key string) (*core.IdempotencyHit, error) {
	var h core.IdempotencyHit
	err := q.queryRow(ctx, `SELECT rotation_id, request_hash FROM idempotency_keys WHERE actor = $1 AND idem_key = $2`,
		actor, key).Scan(&h.RotationID, &h.RequestHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	return &h, nil
}

// FindIdempotencyKey implements core.Store.
func (s *Store) FindIdempotencyKey(ctx context.Context, actor, key string) (*core.IdempotencyHit, error) {
	h, err := findIdempotencyKey(ctx, s.b, actor, key)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return h, nil
}

// SealedCredential implements core.Store.
func (s *Store) SealedCredential(ctx context.Context, rotationID string) ([]byte, error) {
	var b []byte
	err := s.b.queryRow(ctx, `SELECT sealed_credential FROM rotations WHERE id = $1`, rotationID).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: rotation %s: %w", rotationID, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: sealed credential of %s: %w", rotationID, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("sqlstore: credential of rotation %s: %w", rotationID, core.ErrNotFound)
	}
	return b, nil
}

// write runs one statement in a write transaction and returns the rows it affected.
// DeleteCredential implements core.Store. Deleting an unknown or already deleted credential is
// not an error.
func (s *Store) DeleteCredential(ctx context.Context, rotationID string) error {
	if _, err := s.b.write(ctx, `UPDATE rotations SET sealed_credential = NULL WHERE id = $1 AND sealed_credential IS NOT NULL`, rotationID); err != nil {
		return fmt.Errorf("sqlstore: delete credential of %s: %w", rotationID, err)
	}
	return nil
}

// PurgeCredentials implements core.Store.
func (s *Store) PurgeCredentials(ctx context.Context, finishedBefore time.Time) (int, error) {
	n, err := s.b.write(ctx, `UPDATE rotations SET sealed_credential = NULL
		WHERE sealed_credential IS NOT NULL AND finished_at IS NOT NULL AND finished_at < $1`, micros(finishedBefore))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge credentials: %w", err)
	}
	return int(n), nil
}

// AcquireLease implements core.Store: one conditional UPDATE, so of two replicas racing for a
// free lease exactly one matches the row (PostgreSQL re-checks the condition after the row
// lock; SQLite runs one write transaction at a time).
func (s *Store) AcquireLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.b.inTx(ctx, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE rotations SET lease_owner = $2, lease_until = @now + $3
			WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= @now)`,
			rotationID, owner, ttlMicros(ttl))
		if err != nil {
			return err
		}
		if n > 0 {
			ok = true
			return nil
		}
		var one int
		err = q.queryRow(ctx, `SELECT 1 FROM rotations WHERE id = $1`, rotationID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return core.ErrNotFound
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: acquire lease on %s: %w", rotationID, err)
	}
	return ok, nil
}

// RenewLease implements core.Store.
func (s *Store) RenewLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error) {
	n, err := s.b.write(ctx, `UPDATE rotations SET lease_until = @now + $3 WHERE id = $1 AND lease_owner = $2`,
		rotationID, owner, ttlMicros(ttl))
	if err != nil {
		return false, fmt.Errorf("sqlstore: renew lease on %s: %w", rotationID, err)
	}
	return n > 0, nil
}

// ReleaseLease implements core.Store.
func (s *Store) ReleaseLease(ctx context.Context, rotationID, owner string) error {
	if _, err := s.b.write(ctx, `UPDATE rotations SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
		rotationID, owner); err != nil {
		return fmt.Errorf("sqlstore: release lease on %s: %w", rotationID, err)
	}
	return nil
}

// ClaimOrphans implements core.Store. On PostgreSQL the candidate rows are selected FOR UPDATE
// SKIP LOCKED (the lease condition is re-checked on the locked row), so concurrent callers
// split the orphans between them; on SQLite the write transaction is exclusive. limit <= 0
// claims them all.
func (s *Store) ClaimOrphans(ctx context.Context, owner string, ttl time.Duration, limit int) ([]string, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	var ids []string
	err := s.b.inTx(ctx, func(q querier) error {
		ids = nil
		rs, err := q.query(ctx, `UPDATE rotations SET lease_owner = $1, lease_until = @now + $2
			WHERE id IN (
				SELECT id FROM rotations
				WHERE status NOT IN `+finishedStatuses+` AND (lease_owner IS NULL OR lease_until <= @now)
				ORDER BY id LIMIT $3 @skiplocked)
			RETURNING id`, owner, ttlMicros(ttl), limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim orphans: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// ClaimTarget implements core.Store. The grant is one statement: an upsert of the (source,
// target) claim row that changes an existing row only when granting is allowed (no higher seq
// granted or wanted, no live claim of another holder). The database serialises concurrent
// upserts of one row, so two claims can never both be granted. When nothing was written, a
// second statement records the request in want_seq and returns the row, which tells a newer
// rotation (final: seq and want_seq only grow) from a live claim (busy: the caller asks again).
func (s *Store) ClaimTarget(ctx context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	n, err := s.b.write(ctx, `INSERT INTO target_claims (source, target, seq, rotation_id, holder, want_seq, inflight, inflight_until)
		VALUES ($1, $2, $3, $4, $5, 0, TRUE, @now + $6)
		ON CONFLICT (source, target) DO UPDATE
		SET seq = excluded.seq, rotation_id = excluded.rotation_id, holder = excluded.holder,
		    inflight = TRUE, inflight_until = excluded.inflight_until
		WHERE target_claims.seq <= excluded.seq AND target_claims.want_seq <= excluded.seq
		  AND (target_claims.holder = excluded.holder OR target_claims.inflight_until <= @now)`,
		c.Source, c.Target, c.Seq, c.RotationID, c.Holder, ttlMicros(ttl))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: claim target %s/%s for %s: %w", c.Source, c.Target, c.RotationID, err)
	}
	if n > 0 {
		return core.ClaimGranted, nil
	}
	var seq, want int64
	if err := s.b.writeRow(ctx, []any{&seq, &want}, `UPDATE target_claims
		SET want_seq = CASE WHEN want_seq < $3 THEN $3 ELSE want_seq END
		WHERE source = $1 AND target = $2 RETURNING seq, want_seq`, c.Source, c.Target, c.Seq); err != nil {
		return 0, fmt.Errorf("sqlstore: claim target %s/%s for %s: record the wait: %w", c.Source, c.Target, c.RotationID, err)
	}
	if max(seq, want) > c.Seq {
		return core.ClaimSuperseded, nil
	}
	return core.ClaimBusy, nil
}

// RenewTargetClaim implements core.Store in one statement.
func (s *Store) RenewTargetClaim(ctx context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	var seq, want int64
	err := s.b.writeRow(ctx, []any{&seq, &want}, `UPDATE target_claims SET inflight = TRUE, inflight_until = @now + $4
		WHERE source = $1 AND target = $2 AND holder = $3 RETURNING seq, want_seq`,
		c.Source, c.Target, c.Holder, ttlMicros(ttl))
	if errors.Is(err, sql.ErrNoRows) {
		return core.ClaimLost, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: renew claim of target %s/%s for %s: %w", c.Source, c.Target, c.RotationID, err)
	}
	if max(seq, want) > c.Seq {
		return core.ClaimSuperseded, nil
	}
	return core.ClaimGranted, nil
}

// ReleaseTarget implements core.Store.
func (s *Store) ReleaseTarget(ctx context.Context, c core.TargetClaim, hold time.Duration) error {
	if _, err := s.b.write(ctx, `UPDATE target_claims SET inflight = $5, inflight_until = @now + $4
		WHERE source = $1 AND target = $2 AND holder = $3`,
		c.Source, c.Target, c.Holder, ttlMicros(hold), hold > 0); err != nil {
		return fmt.Errorf("sqlstore: release target %s/%s for %s: %w", c.Source, c.Target, c.RotationID, err)
	}
	return nil
}

// GetSourceState implements core.Store.
func (s *Store) GetSourceState(ctx context.Context, source string) (core.SourceState, error) {
	var state string
	err := s.b.queryRow(ctx, `SELECT state FROM source_state WHERE source = $1`, source).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return core.SourceState{Source: source}, nil
	}
	if err != nil {
		return core.SourceState{}, fmt.Errorf("sqlstore: source state of %s: %w", source, err)
	}
	var st core.SourceState
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		return core.SourceState{}, fmt.Errorf("sqlstore: decode source state of %s: %w", source, err)
	}
	st.Source = source
	return st, nil
}

// PutSourceState implements core.Store.
func (s *Store) PutSourceState(ctx context.Context, st core.SourceState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("sqlstore: encode source state of %s: %w", st.Source, err)
	}
	if _, err := s.b.write(ctx, `INSERT INTO source_state (source, state) VALUES ($1, $2)
		ON CONFLICT (source) DO UPDATE SET state = excluded.state`, st.Source, string(b)); err != nil {
		return fmt.Errorf("sqlstore: put source state of %s: %w", st.Source, err)
	}
	return nil
}

// SetSourceRotation implements core.Store.
func (s *Store) SetSourceRotation(ctx context.Context, rotationID string, st core.SourceRotationState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("sqlstore: encode source_rotation of %s: %w", rotationID, err)
	}
	n, err := s.b.write(ctx, `UPDATE rotations SET source_rotation = $2 WHERE id = $1`, rotationID, string(b))
	if err != nil {
		return fmt.Errorf("sqlstore: set source_rotation of %s: %w", rotationID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: set source_rotation of %s: %w", rotationID, core.ErrNotFound)
	}
	return nil
}

// AcquireNamedLease implements core.Store in one upsert.
func (s *Store) AcquireNamedLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	n, err := s.b.write(ctx, `INSERT INTO named_leases (name, owner, until) VALUES ($1, $2, @now + $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE named_leases.owner = excluded.owner OR named_leases.until <= @now`, name, owner, ttlMicros(ttl))
	if err != nil {
		return false, fmt.Errorf("sqlstore: acquire lease %s: %w", name, err)
	}
	return n > 0, nil
}

// ReleaseNamedLease implements core.Store.
func (s *Store) ReleaseNamedLease(ctx context.Context, name, owner string) error {
	if _, err := s.b.write(ctx, `DELETE FROM named_leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("sqlstore: release lease %s: %w", name, err)
	}
	return nil
}

// PutTargetHealth implements core.Store: an upsert.
func (s *Store) PutTargetHealth(ctx context.Context, source, target string, h core.TargetHealth) error {
	if _, err := s.b.write(ctx, `INSERT INTO target_health (source, target, status, state, checked_at, message) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (source, target) DO UPDATE SET status = excluded.status, state = excluded.state, checked_at = excluded.checked_at, message = excluded.message`,
		source, target, string(h.Status), string(h.State), micros(h.CheckedAt), h.Message); err != nil {
		return fmt.Errorf("sqlstore: put health of %s/%s: %w", source, target, err)
	}
	return nil
}

// GetTargetHealth implements core.Store.
func (s *Store) GetTargetHealth(ctx context.Context, source, target string) (core.TargetHealth, bool, error) {
	rs, err := s.b.query(ctx, `SELECT status, state, checked_at, message FROM target_health WHERE source = $1 AND target = $2`, source, target)
	if err != nil {
		return core.TargetHealth{}, false, fmt.Errorf("sqlstore: health of %s/%s: %w", source, target, err)
	}
	defer rs.Close()
	if !rs.Next() {
		return core.TargetHealth{}, false, rs.Err()
	}
	h, err := scanHealth(rs)
	if err != nil {
		return core.TargetHealth{}, false, fmt.Errorf("sqlstore: health of %s/%s: %w", source, target, err)
	}
	return h, true, nil
}

func scanHealth(r interface{ Scan(...any) error }, extra ...any) (core.TargetHealth, error) {
	var (
		h             core.TargetHealth
		status, state string
		checked       int64
	)
	if err := r.Scan(append(extra, &status, &state, &checked, &h.Message)...); err != nil {
		return h, err
	}
	h.Status, h.State, h.CheckedAt = core.HealthStatus(status), core.HealthStatus(state), fromMicros(checked)
	return h, nil
}

// TargetHealths implements core.Store.
func (s *Store) TargetHealths(ctx context.Context) (map[string]map[string]core.TargetHealth, error) {
	rs, err := s.b.query(ctx, `SELECT source, target, status, state, checked_at, message FROM target_health`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: target health: %w", err)
	}
	defer rs.Close()
	out := map[string]map[string]core.TargetHealth{}
	for rs.Next() {
		var source, target string
		h, err := scanHealth(rs, &source, &target)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: target health: %w", err)
		}
		if out[source] == nil {
			out[source] = map[string]core.TargetHealth{}
		}
		out[source][target] = h
	}
	return out, rs.Err()
}

// CreatePause implements core.Store.
func (s *Store) CreatePause(ctx context.Context, p core.Pause) error {
	if _, err := s.b.write(ctx, `INSERT INTO pauses (id, platform, source, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.ID, p.Platform, p.Source, p.Reason, p.Actor, micros(p.CreatedAt)); err != nil {
		return fmt.Errorf("sqlstore: create pause: %w", err)
	}
	return nil
}

const pauseColumns = `id, platform, source, reason, actor, created_at, ended_at, ended_by`

func scanPause(r interface{ Scan(...any) error }) (core.Pause, error) {
	var (
		p       core.Pause
		created int64
		ended   sql.NullInt64
	)
	if err := r.Scan(&p.ID, &p.Platform, &p.Source, &p.Reason, &p.Actor, &created, &ended, &p.EndedBy); err != nil {
		return p, err
	}
	p.CreatedAt = fromMicros(created)
	if ended.Valid {
		t := fromMicros(ended.Int64)
		p.EndedAt = &t
	}
	return p, nil
}

// ListPauses implements core.Store: newest first; the ended ones, of the last 200 pauses.
func (s *Store) ListPauses(ctx context.Context, active bool) ([]core.Pause, error) {
	q := `SELECT ` + pauseColumns + ` FROM pauses ORDER BY created_at DESC, id DESC LIMIT 200`
	if active {
		q = `SELECT ` + pauseColumns + ` FROM pauses WHERE ended_at IS NULL ORDER BY created_at DESC, id DESC`
	}
	rs, err := s.b.query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list pauses: %w", err)
	}
	defer rs.Close()
	out := []core.Pause{}
	for rs.Next() {
		p, err := scanPause(rs)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list pauses: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// EndPause implements core.Store in one statement.
func (s *Store) EndPause(ctx context.Context, id, actor string, at time.Time) (core.Pause, error) {
	var p core.Pause
	var created int64
	var ended sql.NullInt64
	err := s.b.writeRow(ctx, []any{&p.ID, &p.Platform, &p.Source, &p.Reason, &p.Actor, &created, &ended, &p.EndedBy},
		`UPDATE pauses SET ended_at = $2, ended_by = $3 WHERE id = $1 AND ended_at IS NULL RETURNING `+pauseColumns, id, micros(at), actor)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("sqlstore: pause %s: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: end pause %s: %w", id, err)
	}
	p.CreatedAt = fromMicros(created)
	if ended.Valid {
		t := fromMicros(ended.Int64)
		p.EndedAt = &t
	}
	return p, nil
}

// EnqueueEvent implements core.Store: the event and its deliveries in one transaction (on
// PostgreSQL one statement, which joins the batch of queued writes).
func (s *Store) EnqueueEvent(ctx context.Context, ev core.Event, notifications []string) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("sqlstore: encode event %s: %w", ev.ID, err)
	}
	if s.dialect == dialectPostgres {
		_, err = s.b.write(ctx, `WITH ev AS (
				INSERT INTO events (id, type, created_at, payload) VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO NOTHING RETURNING id)
			INSERT INTO deliveries (event_id, notification, status, next_attempt_at)
			SELECT ev.id, n, 'pending', $3 FROM ev, unnest($5::text[]) AS n
			ON CONFLICT (event_id, notification) DO NOTHING`,
			ev.ID, ev.Type, micros(ev.Time), string(b), append([]string{}, notifications...))
	} else {
		err = s.b.inTx(ctx, func(q querier) error { return enqueueEvent(ctx, q, ev, string(b), notifications) })
	}
	if err != nil {
		return fmt.Errorf("sqlstore: enqueue event %s: %w", ev.Type, err)
	}
	return nil
}

// ListEvents implements core.Store.
func (s *Store) ListEvents(ctx context.Context, after string, limit int) ([]core.Event, error) {
	rs, err := s.b.query(ctx, `SELECT payload FROM events WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list events: %w", err)
	}
	defer rs.Close()
	var out []core.Event
	for rs.Next() {
		var p string
		if err := rs.Scan(&p); err != nil {
			return nil, fmt.Errorf("sqlstore: list events: %w", err)
		}
		var ev core.Event
		if err := json.Unmarshal([]byte(p), &ev); err != nil {
			return nil, fmt.Errorf("sqlstore: decode event: %w", err)
		}
		out = append(out, ev)
	}
	return out, rs.Err()
}

// AppendAudit implements core.Store.
func (s *Store) AppendAudit(ctx context.Context, e core.AuditEvent) error {
	if _, err := s.b.write(ctx, appendAuditSQL, auditArgs(e)...); err != nil {
		return fmt.Errorf("sqlstore: append audit event %s: %w", e.Action, err)
	}
	return nil
}

// insertAudit is the INSERT of one audit event, its values (auditArgs) bound from $first on.
func insertAudit(first int) string {
	ph := make([]string, 8)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(first+i)
	}
	return `INSERT INTO audit_events (occurred_at, actor, action, source, rotation_id, target, status, detail)
		VALUES (` + strings.Join(ph, ", ") + `)`
}

// appendAuditSQL is insertAudit(1), built once.
var appendAuditSQL = insertAudit(1)

func auditArgs(e core.AuditEvent) []any {
	return []any{micros(e.At), e.Actor, e.Action, e.Source, e.RotationID, e.Target, e.Status, e.Detail}
}

// ListAudit implements core.Store: newest (last appended) first.
func (s *Store) ListAudit(ctx context.Context, f core.AuditFilter) ([]core.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if f.Source != "" {
		args = append(args, f.Source)
		where = append(where, "source = $"+strconv.Itoa(len(args)))
	}
	if f.RotationID != "" {
		args = append(args, f.RotationID)
		where = append(where, "rotation_id = $"+strconv.Itoa(len(args)))
	}
	if f.Sources != nil {
		where = append(where, inSources(&args, f.Sources))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = core.DefaultListLimit
	}
	q := `SELECT occurred_at, actor, action, source, rotation_id, target, status, detail FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
	rs, err := s.b.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	defer rs.Close()
	var out []core.AuditEvent
	for rs.Next() {
		var (
			e  core.AuditEvent
			at int64
		)
		if err := rs.Scan(&at, &e.Actor, &e.Action, &e.Source, &e.RotationID, &e.Target, &e.Status, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlstore: list audit: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	return out, nil
}

// Ping implements core.Store: a write round trip, the upsert of the one readiness row. It joins
// the group commit like every write, so on SQLite it also checks that the file is still the one
// opened.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.b.write(ctx, `INSERT INTO readiness (id, checked_at) VALUES (1, @now)
		ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`); err != nil {
		return fmt.Errorf("sqlstore: ping (a write): %w", err)
	}
	return nil
}

// inSources is the condition "source is one of sources" with its arguments appended to args;
// no sources: a condition nothing meets.
func inSources(args *[]any, sources []string) string {
	if len(sources) == 0 {
		return "1 = 0"
	}
	ph := make([]string, len(sources))
	for i, src := range sources {
		*args = append(*args, src)
		ph[i] = "$" + strconv.Itoa(len(*args))
	}
	return "source IN (" + strings.Join(ph, ", ") + ")"
}
