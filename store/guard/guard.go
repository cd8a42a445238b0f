// Package guard bounds every call of a core.Store by store.timeout. A call the store has not
// answered by then returns at once with an error wrapping core.ErrStoreUnavailable (a
// *core.StoreUnavailableError naming the store and saying what to check), whatever the store is
// doing: a frozen PostgreSQL, a SQLite file on a hung disk or locked by another process. So no
// caller, an API request included, waits longer than the timeout for the store. The call itself
// runs on with the timeout's context (which the store honours as far as its driver does) and its
// late result is dropped; a write cut off this way may still be committed, as with any timeout.
// Errors the store already classified (core.ErrStoreUnavailable), core.ErrNotFound and the
// call's own errors pass through unchanged, as does a caller's own cancellation.
package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
)

// DefaultTimeout is store.timeout's default.
const DefaultTimeout = 5 * time.Second

// Store is a core.Store whose every call (but Close) is bounded by a timeout.
type Store struct {
	s       core.Store
	timeout time.Duration
	where   string
	log     *zap.Logger
}

var _ core.Store = (*Store)(nil)

// New bounds every call of s by timeout (DefaultTimeout when 0). where names the store in
// messages ("the SQLite file /var/lib/credsync/credsync.db"); log receives a panic of a call
// whose caller had already given up (one whose caller waits is re-raised in the caller).
func New(s core.Store, timeout time.Duration, where string, log *zap.Logger) *Store {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if where == "" {
		where = "the rotation store"
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Store{s: s, timeout: timeout, where: where, log: log}
}

// Timeout is the bound of every call.
func (g *Store) Timeout() time.Duration { return g.timeout }

type outcome[T any] struct {
	val      T
	err      error
	panicked bool
	panicVal any
}

// do runs f under the timeout and classifies a call cut off by it.
func (g *Store) do(ctx context.Context, op string, f func(context.Context) error) error {
	_, err := call(g, ctx, op, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// call runs f under the timeout and classifies a call cut off by it. f's value travels back
// through the channel, never through a captured variable: a call whose caller gave up still
// writes its late result, and it must write it where nobody reads.
func call[T any](g *Store, ctx context.Context, op string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	limit := g.timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < limit {
		limit = max(time.Until(d), 0)
	}
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	done := make(chan outcome[T], 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- outcome[T]{panicked: true, panicVal: r}
			}
		}()
		v, err := f(cctx)
		done <- outcome[T]{val: v, err: err}
	}()
	var out outcome[T]
	select {
	case out = <-done:
	case <-cctx.Done():
		select {
		case out = <-done: // answered just in time
		default:
			if errors.Is(ctx.Err(), context.Canceled) {
				return zero, fmt.Errorf("store %s: %w", op, ctx.Err())
			}
			go late(g, op, done)
			return zero, g.timedOut(op, limit, cctx.Err())
		}
	}
	if out.panicked {
		panic(out.panicVal)
	}
	err := out.err
	if err == nil {
		return out.val, nil
	}
	if errors.Is(err, core.ErrStoreUnavailable) || errors.Is(ctx.Err(), context.Canceled) {
		return zero, err
	}
	if cctx.Err() != nil { // the store gave up on the timeout's context before we did
		return zero, fmt.Errorf("%w: %w", g.timedOut(op, limit, cctx.Err()), err)
	}
	return zero, err
}

func (g *Store) timedOut(op string, limit time.Duration, cause error) error {
	return &core.StoreUnavailableError{
		Message: fmt.Sprintf("%s did not answer within %s (store.timeout): check that it is running, reachable, not "+
			"overloaded and not locked by another process; a write cut off this way may still have been recorded", g.where,
			limit.Round(time.Millisecond)),
		Err: fmt.Errorf("store %s: %w", op, cause),
	}
}

// late waits for the result of a call whose caller gave up, to log a panic.
func late[T any](g *Store, op string, done <-chan outcome[T]) {
	if out := <-done; out.panicked {
		g.log.Error("store call panicked after its caller gave up", zap.String("op", op), zap.Any("panic", out.panicVal))
	}
}

// CreateRotation implements core.Store.
func (g *Store) CreateRotation(ctx context.Context, n core.NewRotation) (*core.IdempotencyHit, error) {
	return call(g, ctx, "create rotation", func(ctx context.Context) (*core.IdempotencyHit, error) { return g.s.CreateRotation(ctx, n) })
}

// UpdateRotation implements core.Store.
func (g *Store) UpdateRotation(ctx context.Context, r *core.Rotation) error {
	return g.do(ctx, "update rotation", func(ctx context.Context) error { return g.s.UpdateRotation(ctx, r) })
}

// SetRotationStatus implements core.Store.
func (g *Store) SetRotationStatus(ctx context.Context, id string, status core.RotationStatus, finishedAt *time.Time) error {
	return g.do(ctx, "set rotation status", func(ctx context.Context) error {
		return g.s.SetRotationStatus(ctx, id, status, finishedAt)
	})
}

// UpdateTarget implements core.Store.
func (g *Store) UpdateTarget(ctx context.Context, rotationID string, idx int, t core.TargetResult) error {
	return g.do(ctx, "update target", func(ctx context.Context) error { return g.s.UpdateTarget(ctx, rotationID, idx, t) })
}

// FinishTarget implements core.Store.
func (g *Store) FinishTarget(ctx context.Context, rotationID string, idx int, t core.TargetResult, ev core.AuditEvent) error {
	return g.do(ctx, "finish target", func(ctx context.Context) error { return g.s.FinishTarget(ctx, rotationID, idx, t, ev) })
}

// GetRotation implements core.Store.
func (g *Store) GetRotation(ctx context.Context, id string) (*core.Rotation, error) {
	return call(g, ctx, "get rotation", func(ctx context.Context) (*core.Rotation, error) { return g.s.GetRotation(ctx, id) })
}

// ListRotations implements core.Store.
func (g *Store) ListRotations(ctx context.Context, f core.ListFilter) ([]*core.Rotation, error) {
	return call(g, ctx, "list rotations", func(ctx context.Context) ([]*core.Rotation, error) { return g.s.ListRotations(ctx, f) })
}

// GetRotationPage implements core.Store.
func (g *Store) GetRotationPage(ctx context.Context, id string, p core.TargetPage) (*core.Rotation, error) {
	return call(g, ctx, "get rotation page", func(ctx context.Context) (*core.Rotation, error) { return g.s.GetRotationPage(ctx, id, p) })
}

// LastOutcomes implements core.Store.
func (g *Store) LastOutcomes(ctx context.Context) (map[string]map[string]core.LastOutcome, error) {
	return call(g, ctx, "last outcomes", func(ctx context.Context) (map[string]map[string]core.LastOutcome, error) {
		return g.s.LastOutcomes(ctx)
	})
}

// PurgeHistory implements core.Store.
func (g *Store) PurgeHistory(ctx context.Context, finishedBefore time.Time, limit int) (int, error) {
	return call(g, ctx, "purge history", func(ctx context.Context) (int, error) { return g.s.PurgeHistory(ctx, finishedBefore, limit) })
}

// PurgeAudit implements core.Store.
func (g *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	return call(g, ctx, "purge audit", func(ctx context.Context) (int, error) { return g.s.PurgeAudit(ctx, before, limit) })
}

// GetSourceState implements core.Store.
func (g *Store) GetSourceState(ctx context.Context, source string) (core.SourceState, error) {
	return call(g, ctx, "get source state", func(ctx context.Context) (core.SourceState, error) { return g.s.GetSourceState(ctx, source) })
}

// PutSourceState implements core.Store.
func (g *Store) PutSourceState(ctx context.Context, st core.SourceState) error {
	return g.do(ctx, "put source state", func(ctx context.Context) error { return g.s.PutSourceState(ctx, st) })
}

// SetSourceRotation implements core.Store.
func (g *Store) SetSourceRotation(ctx context.Context, id string, st core.SourceRotationState) error {
	return g.do(ctx, "set source rotation", func(ctx context.Context) error { return g.s.SetSourceRotation(ctx, id, st) })
}

// AcquireNamedLease implements core.Store.
func (g *Store) AcquireNamedLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	return call(g, ctx, "acquire lease", func(ctx context.Context) (bool, error) { return g.s.AcquireNamedLease(ctx, name, owner, ttl) })
}

// ReleaseNamedLease implements core.Store.
func (g *Store) ReleaseNamedLease(ctx context.Context, name, owner string) error {
	return g.do(ctx, "release lease", func(ctx context.Context) error { return g.s.ReleaseNamedLease(ctx, name, owner) })
}

// PutTargetHealth implements core.Store.
func (g *Store) PutTargetHealth(ctx context.Context, source, target string, h core.TargetHealth) error {
	return g.do(ctx, "put target health", func(ctx context.Context) error { return g.s.PutTargetHealth(ctx, source, target, h) })
}

// GetTargetHealth implements core.Store.
func (g *Store) GetTargetHealth(ctx context.Context, source, target string) (core.TargetHealth, bool, error) {
	type found struct {
		h  core.TargetHealth
		ok bool
	}
	f, err := call(g, ctx, "get target health", func(ctx context.Context) (found, error) {
		h, ok, err := g.s.GetTargetHealth(ctx, source, target)
		return found{h, ok}, err
	})
	return f.h, f.ok, err
}

// TargetHealths implements core.Store.
func (g *Store) TargetHealths(ctx context.Context) (map[string]map[string]core.TargetHealth, error) {
	return call(g, ctx, "target health", func(ctx context.Context) (map[string]map[string]core.TargetHealth, error) {
		return g.s.TargetHealths(ctx)
	})
}

// CreatePause implements core.Store.
func (g *Store) CreatePause(ctx context.Context, p core.Pause) error {
	return g.do(ctx, "create pause", func(ctx context.Context) error { return g.s.CreatePause(ctx, p) })
}

// ListPauses implements core.Store.
func (g *Store) ListPauses(ctx context.Context, active bool) ([]core.Pause, error) {
	return call(g, ctx, "list pauses", func(ctx context.Context) ([]core.Pause, error) { return g.s.ListPauses(ctx, active) })
}

// EndPause implements core.Store.
func (g *Store) EndPause(ctx context.Context, id, actor string, at time.Time) (core.Pause, error) {
	return call(g, ctx, "end pause", func(ctx context.Context) (core.Pause, error) { return g.s.EndPause(ctx, id, actor, at) })
}

// EnqueueEvent implements core.Store.
func (g *Store) EnqueueEvent(ctx context.Context, ev core.Event, notifications []string) error {
	return g.do(ctx, "enqueue event", func(ctx context.Context) error { return g.s.EnqueueEvent(ctx, ev, notifications) })
}

// ListEvents implements core.Store.
func (g *Store) ListEvents(ctx context.Context, after string, limit int) ([]core.Event, error) {
	return call(g, ctx, "list events", func(ctx context.Context) ([]core.Event, error) { return g.s.ListEvents(ctx, after, limit) })
}

// FindIdempotencyKey implements core.Store.
func (g *Store) FindIdempotencyKey(ctx context.Context, actor, key string) (*core.IdempotencyHit, error) {
	return call(g, ctx, "find idempotency key", func(ctx context.Context) (*core.IdempotencyHit, error) {
		return g.s.FindIdempotencyKey(ctx, actor, key)
	})
}

// SealedCredential implements core.Store.
func (g *Store) SealedCredential(ctx context.Context, rotationID string) ([]byte, error) {
	return call(g, ctx, "read sealed credential", func(ctx context.Context) ([]byte, error) { return g.s.SealedCredential(ctx, rotationID) })
}

// DeleteCredential implements core.Store.
func (g *Store) DeleteCredential(ctx context.Context, rotationID string) error {
	return g.do(ctx, "delete credential", func(ctx context.Context) error { return g.s.DeleteCredential(ctx, rotationID) })
}

// PurgeCredentials implements core.Store.
func (g *Store) PurgeCredentials(ctx context.Context, finishedBefore time.Time) (int, error) {
	return call(g, ctx, "purge credentials", func(ctx context.Context) (int, error) { return g.s.PurgeCredentials(ctx, finishedBefore) })
}

// AcquireLease implements core.Store.
func (g *Store) AcquireLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error) {
	return call(g, ctx, "acquire lease", func(ctx context.Context) (bool, error) { return g.s.AcquireLease(ctx, rotationID, owner, ttl) })
}

// RenewLease implements core.Store.
func (g *Store) RenewLease(ctx context.Context, rotationID, owner string, ttl time.Duration) (bool, error) {
	return call(g, ctx, "renew lease", func(ctx context.Context) (bool, error) { return g.s.RenewLease(ctx, rotationID, owner, ttl) })
}

// ReleaseLease implements core.Store.
func (g *Store) ReleaseLease(ctx context.Context, rotationID, owner string) error {
	return g.do(ctx, "release lease", func(ctx context.Context) error { return g.s.ReleaseLease(ctx, rotationID, owner) })
}

// ClaimOrphans implements core.Store.
func (g *Store) ClaimOrphans(ctx context.Context, owner string, ttl time.Duration, limit int) ([]string, error) {
	return call(g, ctx, "claim orphans", func(ctx context.Context) ([]string, error) { return g.s.ClaimOrphans(ctx, owner, ttl, limit) })
}

// ClaimTarget implements core.Store.
func (g *Store) ClaimTarget(ctx context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	return call(g, ctx, "claim target", func(ctx context.Context) (core.ClaimResult, error) { return g.s.ClaimTarget(ctx, c, ttl) })
}

// RenewTargetClaim implements core.Store.
func (g *Store) RenewTargetClaim(ctx context.Context, c core.TargetClaim, ttl time.Duration) (core.ClaimResult, error) {
	return call(g, ctx, "renew target claim", func(ctx context.Context) (core.ClaimResult, error) { return g.s.RenewTargetClaim(ctx, c, ttl) })
}

// ReleaseTarget implements core.Store.
func (g *Store) ReleaseTarget(ctx context.Context, c core.TargetClaim, hold time.Duration) error {
	return g.do(ctx, "release target", func(ctx context.Context) error { return g.s.ReleaseTarget(ctx, c, hold) })
}

// AppendAudit implements core.Store.
func (g *Store) AppendAudit(ctx context.Context, e core.AuditEvent) error {
	return g.do(ctx, "append audit event", func(ctx context.Context) error { return g.s.AppendAudit(ctx, e) })
}

// ListAudit implements core.Store.
func (g *Store) ListAudit(ctx context.Context, f core.AuditFilter) ([]core.AuditEvent, error) {
	return call(g, ctx, "list audit events", func(ctx context.Context) ([]core.AuditEvent, error) { return g.s.ListAudit(ctx, f) })
}

// Ping implements core.Store: the store's write round trip, within the timeout.
func (g *Store) Ping(ctx context.Context) error {
	return g.do(ctx, "ping", func(ctx context.Context) error { return g.s.Ping(ctx) })
}

// Close implements core.Store; it is not bounded.
func (g *Store) Close() error { return g.s.Close() }
