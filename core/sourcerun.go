package core

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Rotating at the source: the engine's part. A generated rotation goes through four phases,
// each written to the store before the next begins, so that a crash in any of them resumes
// exactly:
//
//   - staging: Submit picks the user no target holds, generates a password, and records the
//     rotation (its credential sealed like a submitted one) in phase staging; execute sets the
//     password on that user and logs in with it. Staging again after a crash is harmless. If it
//     fails, the rotation fails and no target is called.
//   - propagating: every target receives {type: password, username: <staged user>, password}
//     through the normal engine (claims, admission, retries, verification).
//   - retiring: once every target succeeded and was verified (the barrier), the source state
//     records a retire of the previous user at now + retire_after. If any target did not
//     succeed, nothing is retired: the rotation says which target holds which user, and a retry
//     that completes it starts the retire clock.
//   - done: a tick (one replica, a named lease) replaces the previous user's password with a
//     random one nobody keeps; a retire that fell due while the gateway was down runs at start.

// ErrNotRotating and the other refusals of a generated rotation are *InputError or
// *ConflictError, built where they happen.

// sourceLeaseTTL bounds a replica's hold on a source job (a retire, a scheduled rotation, a
// generated submission).
const sourceLeaseTTL = 30 * time.Second

// DefaultSourceTick is how often retires and schedules are looked at.
const DefaultSourceTick = 5 * time.Second

// CodeStageFailed is a target's code when the new password could not be set at the source.
const CodeStageFailed = "stage_failed"

// plannedPassword stands in for the generated password in a dry run: nothing is generated, and
// the plan shows every secret redacted anyway.
var plannedPassword = NewSecret("generated-at-rotation")

// generated prepares a generated rotation: which user it stages and the credential. It holds
// the source's generate lease while it reads the source state; the caller records the rotation
// and releases it.
func (e *Engine) generated(ctx context.Context, req *SubmitRequest, src *Source, dry bool) (*SourceRotationState, func(), error) {
	sr := src.Rotation
	if sr == nil {
		return nil, nil, &InputError{Message: "invalid rotation request", Problems: []Problem{{Field: "generate",
			Message: fmt.Sprintf("source %q does not rotate at the source (no rotation: in its config): send the credential instead", src.Name)}}}
	}
	if len(req.Targets) > 0 {
		return nil, nil, &InputError{Message: "invalid rotation request", Problems: []Problem{{Field: "targets",
			Message: "a generated rotation goes to every target of the source (a target left out would keep a user that is then retired)"}}}
	}
	release := func() {}
	if !dry {
		lease := "generate:" + src.Name
		ok, err := e.store.AcquireNamedLease(ctx, lease, e.cfg.Owner, sourceLeaseTTL)
		if err != nil {
			return nil, nil, fmt.Errorf("lease source %s: %w", src.Name, err)
		}
		if !ok {
			return nil, nil, &ConflictError{Message: fmt.Sprintf("source %s is being rotated by another replica right now: try again in a moment", src.Name)}
		}
		release = func() {
			sctx, cancel := e.storeContext(ctx)
			defer cancel()
			_ = e.store.ReleaseNamedLease(sctx, lease, e.cfg.Owner)
		}
	}
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("read the state of source %s: %w", src.Name, err)
	}
	if st.Current != "" {
		if cur, err := e.store.GetRotationPage(ctx, st.Current, TargetPage{Limit: 1}); err == nil && !cur.Status.Finished() {
			release()
			return nil, nil, &ConflictError{Message: fmt.Sprintf("rotation %s of source %s is still in progress: wait for it to end", st.Current, src.Name)}
		}
	}
	inUse := st.InUse
	if len(inUse) == 0 && len(sr.Users) == 2 {
		// Never rotated: a source that can tell which slot is held says so.
		held, err := e.initialSlot(ctx, src)
		if err != nil {
			release()
			return nil, nil, err
		}
		inUse = []string{held}
	}
	staged, previous, err := pickUser(sr.Users, inUse)
	if err != nil {
		release()
		return nil, nil, &ConflictError{Message: fmt.Sprintf("source %s: %v", src.Name, err)}
	}
	secret := plannedPassword
	if !dry {
		if secret, err = sr.Generate(); err != nil {
			release()
			return nil, nil, fmt.Errorf("generate a %s for source %s: %w", sr.CredentialType(), src.Name, err)
		}
	}
	req.Credential = sr.credential(staged, secret)
	return &SourceRotationState{User: staged, PreviousUser: previous, KeyUser: sr.KeyUser, Phase: PhaseStaging}, release, nil
}

// initialSlot is the slot the consumers hold before any rotation: what the source database
// says (SourceRotation.Initial), or the first slot.
func (e *Engine) initialSlot(ctx context.Context, src *Source) (string, error) {
	sr := src.Rotation
	if sr.Initial == nil {
		return sr.Users[0], nil
	}
	held, err := sr.Initial(ctx)
	if err == nil && !slices.Contains(sr.Users, held) {
		err = fmt.Errorf("the source database names slot %q, which is not one of %v", held, sr.Users)
	}
	if err != nil {
		return "", &ConflictError{Message: fmt.Sprintf("source %s: cannot tell which slot the targets hold before its first rotation: %v", src.Name, err)}
	}
	return held, nil
}

// pickUser is the user a rotation stages: the one no target holds. Before any rotation
// users[0] is held. With one user it is replaced in place (no previous user).
func pickUser(users, inUse []string) (staged, previous string, err error) {
	if len(users) == 1 {
		return users[0], "", nil
	}
	if len(inUse) == 0 {
		inUse = users[:1]
	}
	if len(inUse) >= 2 {
		return "", "", errors.New("targets hold both users (a rotation did not reach every target): retry that rotation so that every target holds one user, then rotate again")
	}
	for _, u := range users {
		if u != inUse[0] {
			return u, inUse[0], nil
		}
	}
	return "", "", errors.New("no user is free to stage")
}

// recordGenerated notes the generated rotation as the source's current one. A pending retire of
// the user it stages stays pending until the staging succeeds (stage ends it then): if the
// staging fails, that user's old password still works and must still be retired.
func (e *Engine) recordGenerated(ctx context.Context, src *Source, rot *Rotation) error {
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		return fmt.Errorf("read the state of source %s: %w", src.Name, err)
	}
	st.Current = rot.ID
	if err := e.store.PutSourceState(ctx, st); err != nil {
		return fmt.Errorf("record the state of source %s: %w", src.Name, err)
	}
	return nil
}

// stage sets the new password at the source and logs in with it. It reports whether the
// rotation may go on to its targets.
func (e *Engine) stage(ctx context.Context, r *run) bool {
	src := e.sources[r.rot.Source]
	sr := r.rot.SourceRotation
	if src == nil || src.Rotation == nil || sr == nil || sr.Phase != PhaseStaging {
		return true
	}
	err := e.withSourceDB(ctx, src, func(db SourceDB) error { return db.Stage(ctx, sr.User, src.Rotation.secretOf(r.cred)) })
	if err != nil && e.cfg.DurableStore && errors.Is(ctx.Err(), context.Canceled) && e.isClosing() {
		// Stopped by shutdown: left in phase staging for the next start (staging again is
		// harmless).
		e.log.Info("staging interrupted by shutdown; it resumes at the next start", zap.String("rotation_id", r.rot.ID))
		return false
	}
	if err != nil {
		msg := r.scrub.String(err.Error())
		e.log.Error("staging the new password at the source failed: no target is called", zap.String("rotation_id", r.rot.ID),
			zap.String("source", r.rot.Source), zap.String("user", sr.User), zap.String("error", msg))
		for i := range r.rot.Targets {
			e.writeTarget(ctx, r, i, func(t *TargetResult) {
				now := e.now()
				t.Status, t.FinishedAt, t.User = TargetFailed, &now, sr.PreviousUser
				t.Error = &Error{Code: CodeStageFailed, Retryable: true, Message: fmt.Sprintf(
					"the new %s could not be set on %s at the source, so no target was called (%s); retry the rotation once the source is reachable",
					src.Rotation.CredentialType(), src.Rotation.Describe(sr.User), msg)}
			}, nil)
		}
		return false
	}
	e.audit(AuditEvent{Action: "credential.staged", Source: r.rot.Source, RotationID: r.rot.ID, Detail: src.Rotation.Describe(sr.User)})
	e.retiredByStaging(ctx, src, r.rot.ID, sr.User)
	e.setSourceRotation(ctx, r, func(s *SourceRotationState) { s.Phase = PhasePropagating })
	return true
}

// retiredByStaging ends a pending retire of the user a rotation just staged: the new password
// replaced the old one, which was what the retire was to do.
func (e *Engine) retiredByStaging(ctx context.Context, src *Source, rotationID, user string) {
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		e.log.Error("store: read source state", zap.String("source", src.Name), zap.Error(err))
		return
	}
	if st.RetireUser != user {
		return
	}
	rid := st.RetireRotation
	st.RetireUser, st.RetireAt, st.RetireRotation = "", nil, ""
	if e.putSourceState(ctx, st) != nil {
		return
	}
	e.markRetired(ctx, rid, "by the staging of rotation "+rotationID)
	// The old password of user is gone (the new staging replaced it): a retire as any other.
	e.audit(AuditEvent{Action: "credential.retired", Source: src.Name, RotationID: rid, Detail: src.Rotation.Describe(user) + ", replaced by the staging of rotation " + rotationID})
	e.emit(ctx, Event{Type: EventCredentialRetired, Source: src.Name, RotationID: rid,
		Detail: fmt.Sprintf("the previous credential of %s no longer logs in: rotation %s staged a new one on it", src.Rotation.Describe(user), rotationID)})
}

// afterTargets applies the barrier once every target has an outcome: the retire clock starts
// only when every target succeeded and was verified.
func (e *Engine) afterTargets(ctx context.Context, r *run) {
	src := e.sources[r.rot.Source]
	r.mu.Lock()
	sr := r.rot.SourceRotation
	var all, someOK, someNot bool
	if sr != nil && sr.Phase == PhasePropagating {
		all = true
		for _, t := range r.rot.Targets {
			ok := t.Status == TargetSucceeded && t.Verified
			all = all && ok
			someOK = someOK || t.Status == TargetSucceeded
			someNot = someNot || t.Status != TargetSucceeded
		}
	}
	r.mu.Unlock()
	if src == nil || src.Rotation == nil || sr == nil || (sr.Phase != PhasePropagating && sr.Phase != PhaseStaging) {
		return
	}
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		e.log.Error("store: read source state", zap.String("source", src.Name), zap.Error(err))
		return
	}
	now := e.now()
	if st.Current == r.rot.ID {
		st.Current = ""
	}
	switch {
	case sr.Phase == PhaseStaging: // staging failed: nothing changed at the source for the targets
		st.Failures++
		st.NextDueAt = e.nextDue(src.Rotation, now, st.Failures)
	case all:
		st.InUse, st.LastRotatedAt, st.Failures = []string{sr.User}, &now, 0
		st.NextDueAt = e.nextDue(src.Rotation, now, 0)
		if sr.PreviousUser != "" {
			at := now.Add(src.Rotation.RetireAfter)
			st.RetireUser, st.RetireAt, st.RetireRotation = sr.PreviousUser, &at, r.rot.ID
		}
		// The source state first: a crash before the phase is written resumes here again.
		if err := e.putSourceState(ctx, st); err != nil {
			return
		}
		e.setSourceRotation(ctx, r, func(s *SourceRotationState) {
			if s.PreviousUser == "" {
				s.Phase = PhaseDone
				return
			}
			s.Phase, s.RetireAt = PhaseRetiring, st.RetireAt
		})
		e.log.Info("every target holds the new credential and is verified: the previous user is retired later",
			zap.String("rotation_id", r.rot.ID), zap.String("source", src.Name), zap.String("user", sr.User),
			zap.String("previous_user", sr.PreviousUser), zap.Duration("retire_after", src.Rotation.RetireAfter))
		return
	default:
		// The barrier holds: nothing is retired. Targets on the staged user and on the
		// previous one both keep working.
		st.InUse = nil
		if someOK {
			st.InUse = append(st.InUse, sr.User)
		}
		if someNot && sr.PreviousUser != "" {
			st.InUse = append(st.InUse, sr.PreviousUser)
		}
		if len(st.InUse) == 0 {
			st.InUse = []string{sr.User}
		}
		st.Failures++
		st.NextDueAt = e.nextDue(src.Rotation, now, st.Failures)
	}
	_ = e.putSourceState(ctx, st)
}

// nextDue is when a scheduled source is rotated next: schedule from now, jittered down by up to
// a tenth (replicas and sources do not all rotate at once); after failures, a backoff that
// doubles from a minute, never longer than the schedule.
func (e *Engine) nextDue(sr *SourceRotation, now time.Time, failures int) *time.Time {
	if sr.Schedule <= 0 {
		return nil
	}
	d := sr.Schedule - time.Duration(mrand.Int64N(int64(sr.Schedule/10)+1))
	if failures > 0 {
		b := time.Minute
		for i := 1; i < failures && b < sr.Schedule; i++ {
			b *= 2
		}
		d = min(b, sr.Schedule)
	}
	t := now.Add(d)
	return &t
}

func (e *Engine) putSourceState(ctx context.Context, st SourceState) error {
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.PutSourceState(sctx, st); err != nil {
		e.log.Error("store: record source state", zap.String("source", st.Source), zap.Error(err))
		return err
	}
	return nil
}

// setSourceRotation applies fn to the rotation's source part and writes it.
func (e *Engine) setSourceRotation(ctx context.Context, r *run, fn func(*SourceRotationState)) {
	r.mu.Lock()
	fn(r.rot.SourceRotation)
	st := *r.rot.SourceRotation
	r.mu.Unlock()
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.SetSourceRotation(sctx, r.rot.ID, st); err != nil {
		e.log.Error("store: record the source phase", zap.String("rotation_id", r.rot.ID), zap.Error(err))
	}
}

// withSourceDB opens the source database for one step and closes it after.
func (e *Engine) withSourceDB(ctx context.Context, src *Source, fn func(SourceDB) error) error {
	db, err := src.Rotation.Open(ctx)
	if err != nil {
		return fmt.Errorf("reach the %s database of source %s: %w", src.Rotation.Engine, src.Name, err)
	}
	defer func() { _ = db.Close() }()
	return fn(db)
}

// sourceTick runs the retires that fell due and the scheduled rotations, each source's job on
// one replica (a named lease).
func (e *Engine) sourceTick(ctx context.Context) {
	for _, name := range e.order {
		src := e.sources[name]
		if src.Rotation == nil || ctx.Err() != nil {
			continue
		}
		lease := "source:" + name
		ok, err := e.store.AcquireNamedLease(ctx, lease, e.cfg.Owner, sourceLeaseTTL)
		if err != nil || !ok {
			continue
		}
		e.retireIfDue(ctx, src)
		e.rotateIfDue(ctx, src)
		sctx, cancel := e.storeContext(ctx)
		_ = e.store.ReleaseNamedLease(sctx, lease, e.cfg.Owner)
		cancel()
	}
}

// retireIfDue replaces the previous user's password once its retire_at has passed.
func (e *Engine) retireIfDue(ctx context.Context, src *Source) {
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil || st.RetireUser == "" || st.RetireAt == nil || e.clock.Now().Before(*st.RetireAt) {
		return
	}
	if slices.Contains(st.InUse, st.RetireUser) {
		// A target holds it again (a later rotation did not complete): retiring it now would
		// break that target. It stays until a rotation completes.
		return
	}
	if st.Current != "" {
		cur, err := e.store.GetRotationPage(ctx, st.Current, TargetPage{Limit: 1})
		if err != nil {
			return // tried again at the next tick
		}
		if !cur.Status.Finished() && cur.SourceRotation != nil && cur.SourceRotation.User == st.RetireUser {
			// The rotation in progress is staging a new password on this user: that replaces the
			// old one (and ends this retire); a random one set now could land after it.
			return
		}
	}
	if err := e.withSourceDB(ctx, src, func(db SourceDB) error { return db.Retire(ctx, st.RetireUser) }); err != nil {
		e.log.Warn("retiring the previous user failed; tried again at the next tick", zap.String("source", src.Name),
			zap.String("user", st.RetireUser), zap.Error(err))
		return
	}
	user, rid := st.RetireUser, st.RetireRotation
	st.RetireUser, st.RetireAt, st.RetireRotation = "", nil, ""
	if e.putSourceState(ctx, st) != nil {
		return // retired all the same; the next tick retires it again, which is harmless
	}
	e.markRetired(ctx, rid, "")
	e.log.Info("retired the previous credential: it no longer logs in", zap.String("source", src.Name),
		zap.String("user", user), zap.String("rotation_id", rid))
	e.audit(AuditEvent{Action: "credential.retired", Source: src.Name, RotationID: rid, Detail: src.Rotation.Describe(user)})
	e.emit(ctx, Event{Type: EventCredentialRetired, Source: src.Name, RotationID: rid, Detail: retiredDetail(src.Rotation, user)})
}

// retiredDetail says what a retire did.
func retiredDetail(sr *SourceRotation, slot string) string {
	if sr.KeyUser != "" {
		return fmt.Sprintf("the previous key of user %s no longer logs in: its slot %s is unset", sr.KeyUser, slot)
	}
	return fmt.Sprintf("the previous user %s no longer logs in: its password is a random one nobody keeps", slot)
}

// markRetired ends a rotation's source part: phase done, retired now.
func (e *Engine) markRetired(ctx context.Context, rotationID, why string) {
	if rotationID == "" {
		return
	}
	rot, err := e.store.GetRotationPage(ctx, rotationID, TargetPage{Limit: 1})
	if err != nil || rot.SourceRotation == nil {
		return
	}
	now := e.now()
	st := *rot.SourceRotation
	st.Phase, st.RetiredAt = PhaseDone, &now
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.SetSourceRotation(sctx, rotationID, st); err != nil {
		e.log.Error("store: record the retire", zap.String("rotation_id", rotationID), zap.Error(err))
	}
	if why != "" {
		e.log.Info("the previous user was retired "+why, zap.String("rotation_id", rotationID))
	}
}

// rotateIfDue submits a scheduled rotation of a source whose next_due_at has passed.
func (e *Engine) rotateIfDue(ctx context.Context, src *Source) {
	sr := src.Rotation
	if sr.Schedule <= 0 || e.isClosing() {
		return
	}
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		return
	}
	now := e.now()
	if st.NextDueAt == nil {
		from := now
		if st.LastRotatedAt != nil {
			from = *st.LastRotatedAt
		}
		st.NextDueAt = e.nextDue(sr, from, 0)
		_ = e.putSourceState(ctx, st)
		return
	}
	if now.Before(*st.NextDueAt) {
		return
	}
	if p, paused := e.pauses.coversSource(src.Name); paused {
		e.log.Info("scheduled rotation held by a pause", zap.String("source", src.Name), zap.String("pause_id", p.ID))
		return
	}
	rot, _, err := e.Submit(ctx, SubmitRequest{Source: src.Name, Generate: true, Actor: "schedule"})
	if err != nil {
		// Not every tick: a backoff.
		e.log.Warn("scheduled rotation not started; tried again later", zap.String("source", src.Name), zap.Error(err))
		if st, err2 := e.store.GetSourceState(ctx, src.Name); err2 == nil {
			st.Failures++
			st.NextDueAt = e.nextDue(sr, now, st.Failures)
			_ = e.putSourceState(ctx, st)
		}
		return
	}
	e.log.Info("scheduled rotation started", zap.String("source", src.Name), zap.String("rotation_id", rot.ID))
}

// SourceStatus is what GET /v1/sources shows of a source credsync rotates itself.
type SourceStatus struct {
	ActiveUser    string     `json:"active_user"`
	Users         []string   `json:"users"`
	InUse         []string   `json:"in_use"`
	LastRotatedAt *time.Time `json:"last_rotated_at"`
	NextDueAt     *time.Time `json:"next_due_at"`
	RetireUser    string     `json:"retire_user,omitempty"`
	RetireAt      *time.Time `json:"retire_at,omitempty"`
	Current       string     `json:"current_rotation,omitempty"`
	// KeyUser is, for a key-pair source (Snowflake), the user whose key slots the users are.
	KeyUser string `json:"key_user,omitempty"`
}

func (e *Engine) sourceStatus(ctx context.Context, src *Source) (*SourceStatus, error) {
	if src.Rotation == nil {
		return nil, nil
	}
	st, err := e.store.GetSourceState(ctx, src.Name)
	if err != nil {
		return nil, fmt.Errorf("read the state of source %s: %w", src.Name, err)
	}
	out := &SourceStatus{Users: src.Rotation.Users, InUse: st.InUse, LastRotatedAt: st.LastRotatedAt, NextDueAt: st.NextDueAt,
		RetireUser: st.RetireUser, RetireAt: st.RetireAt, Current: st.Current, KeyUser: src.Rotation.KeyUser}
	if len(out.InUse) == 0 {
		out.InUse = src.Rotation.Users[:1]
	}
	out.ActiveUser = out.InUse[0]
	return out, nil
}
