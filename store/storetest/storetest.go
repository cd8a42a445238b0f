// Package storetest is the conformance suite every core.Store must pass: Run checks each method
// against the semantics stated in core/store.go (and implemented for one process by
// store/memstore), including the rules that matter with several goroutines or replicas at once:
// per-source sequence numbers, idempotency keys, leases, orphan claims and target claims.
//
// Use it from a store's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) core.Store { return open(t) })
//	}
//
// open must return a new, empty store each time it is called; Run closes it when the subtest
// ends. Subtests run in parallel with each other. Lease and claim expiry are tested with TTLs of
// tens of milliseconds, so the whole suite takes a few seconds.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// shortTTL is the lease/claim TTL of expiry tests: long enough that the checks made while it
// holds finish within it on a loaded machine (50ms was not, with SQLite under the whole suite);
// expiryWait outlasts it comfortably.
const (
	shortTTL   = 300 * time.Millisecond
	expiryWait = 700 * time.Millisecond
	longTTL    = time.Minute
)

// base is the creation time of test rotations: UTC, whole microseconds (what SQL stores keep).
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open func(t *testing.T) core.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s core.Store)
	}{
		{"CreateAssignsSeqPerSource", testCreateSeq},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"CreateConcurrentSeqs", testCreateConcurrentSeqs},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"RoundTrip", testRoundTrip},
		{"Update", testUpdate},
		{"UpdateTarget", testUpdateTarget},
		{"SetRotationStatus", testSetRotationStatus},
		{"FinishTarget", testFinishTarget},
		{"ManyTargets", testManyTargets},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListDefaultLimit", testListDefaultLimit},
		{"Credentials", testCredentials},
		{"PurgeCredentials", testPurge},
		{"Leases", testLeases},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseConcurrent", testLeaseConcurrent},
		{"ClaimOrphans", testClaimOrphans},
		{"ClaimOrphansLimit", testClaimOrphansLimit},
		{"ClaimOrphansExpired", testClaimOrphansExpired},
		{"ClaimOrphansConcurrent", testClaimOrphansConcurrent},
		{"ClaimTarget", testClaimTarget},
		{"ClaimTargetExpiry", testClaimTargetExpiry},
		{"ClaimTargetConcurrent", testClaimTargetConcurrent},
		{"ClaimTargetRenew", testClaimTargetRenew},
		{"LastOutcomes", testLastOutcomes},
		{"SourceState", testSourceState},
		{"NamedLeases", testNamedLeases},
		{"Pauses", testPauses},
		{"TargetHealth", testTargetHealth},
		{"PurgeHistory", testPurgeHistory},
		{"ClaimTargetHold", testClaimTargetHold},
		{"Audit", testAudit},
		{"AuditWithRotation", testAuditWithRotation},
		{"AuditDefaultLimit", testAuditDefaultLimit},
		{"Ping", testPing},
		{"DeliveriesEnqueue", testDeliveriesEnqueue},
		{"DeliveriesLeases", testDeliveriesLeases},
		{"DeliveriesFinish", testDeliveriesFinish},
		{"DeliveriesConcurrent", testDeliveriesConcurrent},
		{"PurgeEvents", testPurgeEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			require.NotNil(t, s, "open returned no store")
			t.Cleanup(func() { assert.NoError(t, s.Close(), "Close") })
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func id(n int) string { return fmt.Sprintf("rot_%04d", n) }

// rot returns a running rotation n of source created n minutes after base.
func rot(n int, source string) *core.Rotation {
	return &core.Rotation{
		ID:        id(n),
		Source:    source,
		Status:    core.RotationRunning,
		CreatedAt: base.Add(time.Duration(n) * time.Minute),
		Actor:     "rotation-job",
		Type:      core.TypePassword,
		Targets: []core.TargetResult{
			{Name: "felt/0", Platform: "felt", Vendor: "felt", Status: core.TargetPending},
		},
	}
}

func create(t *testing.T, s core.Store, n core.NewRotation) {
	t.Helper()
	hit, err := s.CreateRotation(ctxT(t), n)
	require.NoError(t, err, "CreateRotation %s", n.Rotation.ID)
	require.Nil(t, hit, "CreateRotation %s: unexpected idempotency hit", n.Rotation.ID)
}

// createStatus creates rotation n of source with the given status (finished ones get a finish
// time) and no lease.
func createStatus(t *testing.T, s core.Store, n int, source string, st core.RotationStatus) *core.Rotation {
	t.Helper()
	r := rot(n, source)
	r.Status = st
	if st.Finished() {
		f := r.CreatedAt.Add(time.Second)
		r.FinishedAt = &f
	}
	create(t, s, core.NewRotation{Rotation: r})
	return r
}

func get(t *testing.T, s core.Store, id string) *core.Rotation {
	t.Helper()
	r, err := s.GetRotation(ctxT(t), id)
	require.NoError(t, err, "GetRotation %s", id)
	require.NotNil(t, r)
	return r
}

func ids(rs []*core.Rotation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func tptr(t time.Time) *time.Time { return &t }

// norm returns a copy of r with every time in UTC, so a store that keeps times in another
// location (memstore keeps what it was given) compares equal to one that returns UTC.
func norm(r *core.Rotation) *core.Rotation {
	c := r.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	if c.FinishedAt != nil {
		c.FinishedAt = tptr(c.FinishedAt.UTC())
	}
	for i := range c.Targets {
		if t := c.Targets[i].StartedAt; t != nil {
			c.Targets[i].StartedAt = tptr(t.UTC())
		}
		if t := c.Targets[i].FinishedAt; t != nil {
			c.Targets[i].FinishedAt = tptr(t.UTC())
		}
	}
	return c
}

func requireSameRotation(t *testing.T, want, got *core.Rotation, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, norm(want), norm(got), msgAndArgs...)
}

// ---- CreateRotation ----

func testCreateSeq(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	want := []struct {
		source string
		seq    int64
	}{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"b", 2}, {"c", 1}}
	for i, w := range want {
		r := rot(i+1, w.source)
		r.Seq = 99 // ignored: the store assigns it
		create(t, s, core.NewRotation{Rotation: r})
		require.Equal(t, w.seq, r.Seq, "CreateRotation sets Rotation.Seq of %s", r.ID)
		require.Equal(t, w.seq, get(t, s, r.ID).Seq, "stored seq of %s", r.ID)
	}
	all, err := s.ListRotations(ctx, core.ListFilter{})
	require.NoError(t, err)
	require.Len(t, all, len(want))
}

func testCreateDuplicateID(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	create(t, s, core.NewRotation{Rotation: rot(1, "a"), SealedCredential: []byte("first")})
	dup := rot(1, "a")
	dup.Status = core.RotationFailed
	hit, err := s.CreateRotation(ctx, core.NewRotation{Rotation: dup, SealedCredential: []byte("second")})
	require.Error(t, err, "a second rotation with the same ID is refused")
	require.Nil(t, hit)
	got := get(t, s, id(1))
	require.Equal(t, core.RotationRunning, got.Status, "the first rotation is untouched")
	require.Equal(t, int64(1), got.Seq)
	sealed, err := s.SealedCredential(ctx, id(1))
	require.NoError(t, err)
	require.Equal(t, []byte("first"), sealed)
	// the refused creation did not use up a sequence number
	r := rot(2, "a")
	create(t, s, core.NewRotation{Rotation: r})
	require.Equal(t, int64(2), r.Seq)
}

func testCreateConcurrentSeqs(t *testing.T, s core.Store) {
	const n = 20
	var wg sync.WaitGroup
	seqs := make([]int64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := rot(i+1, "busy-source")
			hit, err := s.CreateRotation(context.Background(), core.NewRotation{Rotation: r, Owner: "replica", LeaseTTL: longTTL})
			if err == nil && hit != nil {
				err = errors.New("unexpected idempotency hit")
			}
			seqs[i], errs[i] = r.Seq, err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "goroutine %d", i)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, seq := range seqs {
		require.Equal(t, int64(i+1), seq, "20 concurrent creations of one source get seqs 1..20: %v", seqs)
	}
	create(t, s, core.NewRotation{Rotation: rot(100, "other-source")})
	require.Equal(t, int64(1), get(t, s, id(100)).Seq, "another source counts on its own")
}

// ---- idempotency ----

func testIdempotency(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	h, err := s.FindIdempotencyKey(ctx, "job", "key-1")
	require.NoError(t, err)
	require.Nil(t, h, "unused key")

	first := rot(1, "a")
	create(t, s, core.NewRotation{Rotation: first, SealedCredential: []byte("sealed-1"), Owner: "replica-1", LeaseTTL: longTTL,
		Actor: "job", IdempotencyKey: "key-1", RequestHash: "hash-1"})
	require.Equal(t, int64(1), first.Seq)

	h, err = s.FindIdempotencyKey(ctx, "job", "key-1")
	require.NoError(t, err)
	require.Equal(t, &core.IdempotencyHit{RotationID: id(1), RequestHash: "hash-1"}, h)

	// the same key again (even with another request hash): the first rotation, nothing recorded
	second := rot(2, "a")
	hit, err := s.CreateRotation(ctx, core.NewRotation{Rotation: second, SealedCredential: []byte("sealed-2"), Owner: "replica-2",
		LeaseTTL: longTTL, Actor: "job", IdempotencyKey: "key-1", RequestHash: "hash-2"})
	require.NoError(t, err)
	require.Equal(t, &core.IdempotencyHit{RotationID: id(1), RequestHash: "hash-1"}, hit)
	require.Zero(t, second.Seq, "a hit assigns no seq")
	_, err = s.GetRotation(ctx, id(2))
	require.ErrorIs(t, err, core.ErrNotFound, "a hit records no rotation")
	_, err = s.SealedCredential(ctx, id(2))
	require.ErrorIs(t, err, core.ErrNotFound, "a hit records no credential")
	sealed, err := s.SealedCredential(ctx, id(1))
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-1"), sealed)
	ok, err := s.AcquireLease(ctx, id(1), "replica-2", longTTL)
	require.NoError(t, err)
	require.False(t, ok, "a hit takes no lease: replica-1 still holds it")

	// a hit used up no sequence number
	third := rot(3, "a")
	create(t, s, core.NewRotation{Rotation: third})
	require.Equal(t, int64(2), third.Seq)

	// keys are per actor
	h, err = s.FindIdempotencyKey(ctx, "other-job", "key-1")
	require.NoError(t, err)
	require.Nil(t, h)
	fourth := rot(4, "a")
	create(t, s, core.NewRotation{Rotation: fourth, Actor: "other-job", IdempotencyKey: "key-1", RequestHash: "hash-4"})
	h, err = s.FindIdempotencyKey(ctx, "other-job", "key-1")
	require.NoError(t, err)
	require.Equal(t, &core.IdempotencyHit{RotationID: id(4), RequestHash: "hash-4"}, h)

	// no key: nothing recorded, and "" is never found
	create(t, s, core.NewRotation{Rotation: rot(5, "a"), Actor: "job"})
	h, err = s.FindIdempotencyKey(ctx, "job", "")
	require.NoError(t, err)
	require.Nil(t, h)
}

func testIdempotencyConcurrent(t *testing.T, s core.Store) {
	const n = 10
	var wg sync.WaitGroup
	hits := make([]*core.IdempotencyHit, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			hits[i], errs[i] = s.CreateRotation(context.Background(), core.NewRotation{Rotation: rot(i+1, "a"),
				Actor: "job", IdempotencyKey: "same", RequestHash: "h"})
		}(i)
	}
	wg.Wait()
	created := ""
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i], "goroutine %d", i)
		if hits[i] == nil {
			require.Empty(t, created, "only one of %d concurrent requests with one key creates a rotation", n)
			created = id(i + 1)
		}
	}
	require.NotEmpty(t, created, "one request creates the rotation")
	for i := 0; i < n; i++ {
		if hits[i] != nil {
			require.Equal(t, core.IdempotencyHit{RotationID: created, RequestHash: "h"}, *hits[i])
		}
	}
	all, err := s.ListRotations(ctxT(t), core.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{created}, ids(all))
	require.Equal(t, int64(1), all[0].Seq)
}

// ---- Get / Update ----

func fullRotation() *core.Rotation {
	started := base.Add(2 * time.Second)
	done := base.Add(5 * time.Second)
	return &core.Rotation{
		ID:        id(1),
		Source:    "warehouse-pg",
		Status:    core.RotationRunning,
		CreatedAt: base,
		Actor:     "rotation-job",
		Type:      core.TypeKeyPair,
		Targets: []core.TargetResult{
			{Name: "felt/0", Platform: "felt", Vendor: "felt", Status: core.TargetSucceeded, Verified: true,
				Attempts: 1, StartedAt: &started, FinishedAt: &done},
			{Name: "databrain", Platform: "databrain-eu", Vendor: "databrain", Status: core.TargetFailed, Attempts: 3,
				Warning:   "slow to verify",
				Error:     &core.Error{Code: "vendor_rejected", Message: "credential test failed", Retryable: true, VendorStatus: 400},
				StartedAt: &started, FinishedAt: &done},
			{Name: "rivergen/2", Platform: "rivergen", Vendor: "rivergen", Status: core.TargetRunning, Attempts: 2, StartedAt: &started},
			{Name: "rivergen/3", Platform: "rivergen", Vendor: "rivergen", Status: core.TargetPending},
			{Name: "felt/4", Platform: "felt", Vendor: "felt", Status: core.TargetSuperseded,
				Error: &core.Error{Code: "superseded", Message: "a newer rotation took over"}},
		},
	}
}

func testRoundTrip(t *testing.T, s core.Store) {
	want := fullRotation()
	create(t, s, core.NewRotation{Rotation: want, SealedCredential: []byte{0, 1, 2, 255}, Owner: "r", LeaseTTL: longTTL})
	require.Equal(t, int64(1), want.Seq)
	got := get(t, s, want.ID)
	requireSameRotation(t, want, got, "every field survives the round trip")
	require.Equal(t, time.UTC, got.CreatedAt.Location(), "times come back in UTC")

	// a finished rotation, created with its finish time
	fin := rot(2, "b")
	fin.Status = core.RotationSucceeded
	fin.FinishedAt = tptr(base.Add(time.Hour))
	fin.Targets[0].Status = core.TargetSucceeded
	create(t, s, core.NewRotation{Rotation: fin})
	requireSameRotation(t, fin, get(t, s, fin.ID))

	// no targets: an empty list, not null
	empty := rot(3, "c")
	empty.Targets = nil
	create(t, s, core.NewRotation{Rotation: empty})
	got = get(t, s, empty.ID)
	require.NotNil(t, got.Targets)
	require.Empty(t, got.Targets)

	// callers get copies
	got = get(t, s, want.ID)
	got.Targets[1].Error.Code = "mutated"
	got.Targets[0].Name = "mutated"
	again := get(t, s, want.ID)
	require.Equal(t, "vendor_rejected", again.Targets[1].Error.Code)
	require.Equal(t, "felt/0", again.Targets[0].Name)
}

func testUpdate(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	r := fullRotation()
	create(t, s, core.NewRotation{Rotation: r})
	create(t, s, core.NewRotation{Rotation: rot(2, r.Source)})

	r.Status = core.RotationPartial
	r.FinishedAt = tptr(base.Add(10 * time.Minute))
	r.Targets[2].Status = core.TargetSucceeded
	r.Targets[2].Verified = true
	r.Targets[2].Attempts = 4
	r.Targets[2].FinishedAt = tptr(base.Add(9 * time.Minute))
	r.Targets[3].Status = core.TargetFailed
	r.Targets[3].Error = &core.Error{Code: "interrupted", Message: "resubmit the rotation"}
	r.Targets[1].Error = nil
	r.Targets[1].Warning = ""
	r.Seq = 42 // ignored: the seq is the store's
	require.NoError(t, s.UpdateRotation(ctx, r))
	got := get(t, s, r.ID)
	r.Seq = 1
	requireSameRotation(t, r, got)

	// again, back to running without finish time and with fewer targets
	r.Status = core.RotationRunning
	r.FinishedAt = nil
	r.Targets = r.Targets[:2]
	require.NoError(t, s.UpdateRotation(ctx, r))
	requireSameRotation(t, r, get(t, s, r.ID))
	require.Equal(t, int64(2), get(t, s, id(2)).Seq, "other rotations untouched")
	require.Equal(t, core.RotationRunning, get(t, s, id(2)).Status)
}

func testNotFound(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	create(t, s, core.NewRotation{Rotation: rot(1, "a")})
	_, err := s.GetRotation(ctx, "rot_nope")
	require.ErrorIs(t, err, core.ErrNotFound)
	err = s.UpdateRotation(ctx, rot(2, "a"))
	require.ErrorIs(t, err, core.ErrNotFound)
	_, err = s.GetRotation(ctx, id(2))
	require.ErrorIs(t, err, core.ErrNotFound, "an update does not create")
	_, err = s.SealedCredential(ctx, "rot_nope")
	require.ErrorIs(t, err, core.ErrNotFound)
	_, err = s.AcquireLease(ctx, "rot_nope", "r", longTTL)
	require.ErrorIs(t, err, core.ErrNotFound)
	ok, err := s.RenewLease(ctx, "rot_nope", "r", longTTL)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, s.ReleaseLease(ctx, "rot_nope", "r"))
	require.NoError(t, s.DeleteCredential(ctx, "rot_nope"))
	require.NoError(t, s.ReleaseTarget(ctx, core.TargetClaim{Source: "a", Target: "nope", RotationID: "rot_nope", Holder: "h"}, 0))
	res, err := s.RenewTargetClaim(ctx, core.TargetClaim{Source: "a", Target: "nope", Seq: 1, RotationID: "rot_nope", Holder: "h"}, longTTL)
	require.NoError(t, err)
	require.Equal(t, core.ClaimLost, res, "renewing a claim never granted")
}

// ---- List ----

func testList(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	list := func(f core.ListFilter) []string {
		t.Helper()
		rs, err := s.ListRotations(ctx, f)
		require.NoError(t, err, "ListRotations %+v", f)
		return ids(rs)
	}
	require.Empty(t, list(core.ListFilter{}), "empty store")

	// created out of order: the listing is by ID, newest first
	spec := map[int]struct {
		source string
		status core.RotationStatus
	}{
		3: {"a", core.RotationSucceeded}, 1: {"a", core.RotationFailed}, 7: {"b", core.RotationRunning},
		2: {"b", core.RotationSucceeded}, 5: {"a", core.RotationRunning}, 4: {"b", core.RotationFailed},
		6: {"a", core.RotationSucceeded},
	}
	for _, n := range []int{3, 1, 7, 2, 5, 4, 6} {
		createStatus(t, s, n, spec[n].source, spec[n].status)
	}
	require.Equal(t, []string{id(7), id(6), id(5), id(4), id(3), id(2), id(1)}, list(core.ListFilter{}))
	require.Equal(t, []string{id(6), id(5), id(3), id(1)}, list(core.ListFilter{Source: "a"}))
	require.Equal(t, []string{id(7), id(4), id(2)}, list(core.ListFilter{Source: "b"}))
	require.Empty(t, list(core.ListFilter{Source: "zzz"}))
	require.Equal(t, []string{id(6), id(3), id(2)}, list(core.ListFilter{Status: core.RotationSucceeded}))
	require.Equal(t, []string{id(6), id(3)}, list(core.ListFilter{Source: "a", Status: core.RotationSucceeded}))
	require.Equal(t, []string{id(4)}, list(core.ListFilter{Source: "b", Status: core.RotationFailed}))
	require.Empty(t, list(core.ListFilter{Status: core.RotationPartial}))
	require.Equal(t, []string{id(7), id(6)}, list(core.ListFilter{Limit: 2}))
	require.Equal(t, []string{id(4), id(3), id(2), id(1)}, list(core.ListFilter{Before: id(5)}))
	require.Equal(t, []string{id(3), id(1)}, list(core.ListFilter{Source: "a", Before: id(5)}))
	require.Equal(t, []string{id(3)}, list(core.ListFilter{Source: "a", Status: core.RotationSucceeded, Before: id(6)}))
	require.Empty(t, list(core.ListFilter{Before: id(1)}))
	require.Equal(t, []string{id(7), id(6), id(5), id(4), id(3), id(2), id(1)}, list(core.ListFilter{Before: "rot_9999"}))
	// Sources (an access scope): nil is every source, an empty list none
	require.Equal(t, []string{id(7), id(6), id(5), id(4), id(3), id(2), id(1)}, list(core.ListFilter{Sources: []string{"a", "b", "zzz"}}))
	require.Equal(t, []string{id(7), id(4), id(2)}, list(core.ListFilter{Sources: []string{"b"}}))
	require.Equal(t, []string{id(4), id(2)}, list(core.ListFilter{Sources: []string{"b", "zzz"}, Before: id(7), Limit: 5}))
	require.Empty(t, list(core.ListFilter{Sources: []string{}}))
	require.Empty(t, list(core.ListFilter{Source: "a", Sources: []string{"b"}}), "both hold")
	require.Equal(t, []string{id(6), id(3)}, list(core.ListFilter{Sources: []string{"a"}, Status: core.RotationSucceeded}))

	// paging: each page starts before the last ID of the previous one
	var all []string
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging terminates")
		page := list(core.ListFilter{Before: before, Limit: 3})
		if len(page) == 0 {
			break
		}
		require.LessOrEqual(t, len(page), 3)
		all = append(all, page...)
		before = page[len(page)-1]
	}
	require.Equal(t, []string{id(7), id(6), id(5), id(4), id(3), id(2), id(1)}, all)

	// the listing reflects updates
	r := get(t, s, id(7))
	r.Status = core.RotationSucceeded
	r.FinishedAt = tptr(base.Add(time.Hour))
	require.NoError(t, s.UpdateRotation(ctx, r))
	require.Equal(t, []string{id(7), id(6), id(3), id(2)}, list(core.ListFilter{Status: core.RotationSucceeded}))

	// listed rotations are complete but for their targets: counts stand in for them
	rs, err := s.ListRotations(ctx, core.ListFilter{Source: "a", Limit: 1})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	want := rot(6, "a")
	want.Status = core.RotationSucceeded
	want.FinishedAt = tptr(want.CreatedAt.Add(time.Second))
	want.Seq = 4
	want.Targets = []core.TargetResult{}
	want.TargetCounts = map[core.TargetStatus]int{core.TargetPending: 1}
	requireSameRotation(t, want, rs[0])
}

func testListDefaultLimit(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	const n = core.DefaultListLimit + 5
	for i := 1; i <= n; i++ {
		create(t, s, core.NewRotation{Rotation: rot(i, "a")})
	}
	rs, err := s.ListRotations(ctx, core.ListFilter{})
	require.NoError(t, err)
	require.Len(t, rs, core.DefaultListLimit, "Limit 0 means %d", core.DefaultListLimit)
	require.Equal(t, id(n), rs[0].ID)
	require.Equal(t, id(n-core.DefaultListLimit+1), rs[len(rs)-1].ID)
	rs, err = s.ListRotations(ctx, core.ListFilter{Limit: n + 10})
	require.NoError(t, err)
	require.Len(t, rs, n, "an explicit limit above the default is honoured")
	rs, err = s.ListRotations(ctx, core.ListFilter{Before: id(6)})
	require.NoError(t, err)
	require.Equal(t, []string{id(5), id(4), id(3), id(2), id(1)}, ids(rs))
}

// ---- credentials ----

func testCredentials(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	sealed := []byte("\x00nonce\xffciphertext\x01")
	create(t, s, core.NewRotation{Rotation: rot(1, "a"), SealedCredential: sealed})
	create(t, s, core.NewRotation{Rotation: rot(2, "a")}) // no key: no credential
	create(t, s, core.NewRotation{Rotation: rot(3, "a"), SealedCredential: []byte("other")})

	got, err := s.SealedCredential(ctx, id(1))
	require.NoError(t, err)
	require.Equal(t, sealed, got)
	got[0] = 'X'
	again, err := s.SealedCredential(ctx, id(1))
	require.NoError(t, err)
	require.Equal(t, sealed, again, "callers get copies")

	_, err = s.SealedCredential(ctx, id(2))
	require.ErrorIs(t, err, core.ErrNotFound, "never stored")
	_, err = s.SealedCredential(ctx, "rot_nope")
	require.ErrorIs(t, err, core.ErrNotFound, "unknown rotation")

	require.NoError(t, s.DeleteCredential(ctx, id(1)))
	_, err = s.SealedCredential(ctx, id(1))
	require.ErrorIs(t, err, core.ErrNotFound, "deleted")
	require.NoError(t, s.DeleteCredential(ctx, id(1)), "deleting twice is fine")
	require.NoError(t, s.DeleteCredential(ctx, id(2)), "deleting a never stored credential is fine")
	get(t, s, id(1)) // the rotation stays

	got, err = s.SealedCredential(ctx, id(3))
	require.NoError(t, err)
	require.Equal(t, []byte("other"), got, "other rotations keep theirs")
}

func testPurge(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	now := base.Add(24 * time.Hour)
	mk := func(n int, finished *time.Time, sealed []byte) {
		r := rot(n, "a")
		if finished != nil {
			r.Status = core.RotationSucceeded
			r.FinishedAt = finished
		}
		create(t, s, core.NewRotation{Rotation: r, SealedCredential: sealed})
	}
	mk(1, tptr(now.Add(-2*time.Hour)), []byte("old"))              // purged
	mk(2, tptr(now.Add(-30*time.Minute)), []byte("recent"))        // kept: finished after the cut
	mk(3, nil, []byte("unfinished"))                               // kept: not finished
	mk(4, tptr(now.Add(-3*time.Hour)), nil)                        // nothing to purge
	mk(5, tptr(now.Add(-time.Hour-time.Microsecond)), []byte("x")) // purged: just before
	mk(6, tptr(now.Add(-time.Hour)), []byte("at the cut"))         // kept: not before the cut

	n, err := s.PurgeCredentials(ctx, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for _, gone := range []int{1, 5} {
		_, err := s.SealedCredential(ctx, id(gone))
		require.ErrorIs(t, err, core.ErrNotFound, "%s purged", id(gone))
	}
	for want, n := range map[string]int{"recent": 2, "unfinished": 3, "at the cut": 6} {
		got, err := s.SealedCredential(ctx, id(n))
		require.NoError(t, err, "%s kept", id(n))
		require.Equal(t, []byte(want), got)
	}
	n, err = s.PurgeCredentials(ctx, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to purge")

	// a rotation finished later by UpdateRotation is purged by its finish time
	r := get(t, s, id(3))
	r.Status = core.RotationFailed
	r.FinishedAt = tptr(now.Add(-5 * time.Hour))
	require.NoError(t, s.UpdateRotation(ctx, r))
	n, err = s.PurgeCredentials(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 3, n, "rot 2, 3 and 6")
	get(t, s, id(3)) // rotations stay
}

// ---- leases ----

func acquire(t *testing.T, s core.Store, rid, owner string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.AcquireLease(ctxT(t), rid, owner, ttl)
	require.NoError(t, err, "AcquireLease %s by %s", rid, owner)
	return ok
}

func renew(t *testing.T, s core.Store, rid, owner string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.RenewLease(ctxT(t), rid, owner, ttl)
	require.NoError(t, err, "RenewLease %s by %s", rid, owner)
	return ok
}

func testLeases(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	create(t, s, core.NewRotation{Rotation: rot(1, "a"), Owner: "alpha", LeaseTTL: longTTL})
	create(t, s, core.NewRotation{Rotation: rot(2, "a")}) // created without a lease

	require.False(t, acquire(t, s, id(1), "beta", longTTL), "a live lease of another owner is refused")
	require.True(t, acquire(t, s, id(1), "alpha", longTTL), "the owner re-acquires its own lease")
	require.True(t, renew(t, s, id(1), "alpha", longTTL))
	require.False(t, renew(t, s, id(1), "beta", longTTL), "only the owner renews")
	require.False(t, acquire(t, s, id(1), "beta", longTTL), "a failed renew did not take the lease")

	require.NoError(t, s.ReleaseLease(ctx, id(1), "beta"), "releasing another's lease is a no-op")
	require.False(t, acquire(t, s, id(1), "beta", longTTL), "still alpha's")
	require.NoError(t, s.ReleaseLease(ctx, id(1), "alpha"))
	require.False(t, renew(t, s, id(1), "alpha", longTTL), "released: nothing to renew")
	require.True(t, acquire(t, s, id(1), "beta", longTTL), "a released lease is free")
	require.False(t, acquire(t, s, id(1), "alpha", longTTL))
	require.False(t, renew(t, s, id(1), "alpha", longTTL), "alpha lost it")
	require.True(t, renew(t, s, id(1), "beta", longTTL))

	require.True(t, acquire(t, s, id(2), "gamma", longTTL), "no lease: free")
	require.False(t, acquire(t, s, id(2), "alpha", longTTL))
	require.False(t, acquire(t, s, id(1), "gamma", longTTL), "leases are per rotation")
}

func testLeaseExpiry(t *testing.T, s core.Store) {
	create(t, s, core.NewRotation{Rotation: rot(1, "a"), Owner: "alpha", LeaseTTL: shortTTL})
	create(t, s, core.NewRotation{Rotation: rot(2, "a")})
	require.True(t, acquire(t, s, id(2), "alpha", shortTTL))
	require.False(t, acquire(t, s, id(1), "beta", longTTL), "live")
	time.Sleep(expiryWait)
	require.True(t, acquire(t, s, id(1), "beta", longTTL), "an expired lease (from CreateRotation) is free")
	require.False(t, renew(t, s, id(1), "alpha", longTTL), "alpha lost it")
	require.True(t, acquire(t, s, id(2), "beta", longTTL), "an expired lease (from AcquireLease) is free")

	// renewing keeps a lease alive past its first TTL
	create(t, s, core.NewRotation{Rotation: rot(3, "a"), Owner: "alpha", LeaseTTL: shortTTL})
	require.True(t, renew(t, s, id(3), "alpha", longTTL))
	time.Sleep(expiryWait)
	require.False(t, acquire(t, s, id(3), "beta", longTTL), "renewed for longer: still alpha's")
}

func testLeaseConcurrent(t *testing.T, s core.Store) {
	create(t, s, core.NewRotation{Rotation: rot(1, "a")})
	const n = 10
	var wg sync.WaitGroup
	won := make([]bool, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			won[i], errs[i] = s.AcquireLease(context.Background(), id(1), fmt.Sprintf("replica-%d", i), longTTL)
		}(i)
	}
	wg.Wait()
	winners := 0
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		if won[i] {
			winners++
			require.True(t, renew(t, s, id(1), fmt.Sprintf("replica-%d", i), longTTL), "the winner holds the lease")
		}
	}
	require.Equal(t, 1, winners, "exactly one of %d racing replicas gets a free lease", n)
}

// ---- orphans ----

func claim(t *testing.T, s core.Store, owner string, ttl time.Duration, limit int) []string {
	t.Helper()
	got, err := s.ClaimOrphans(ctxT(t), owner, ttl, limit)
	require.NoError(t, err, "ClaimOrphans by %s", owner)
	return got
}

func testClaimOrphans(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	require.Empty(t, claim(t, s, "me", longTTL, 10), "empty store")

	createStatus(t, s, 1, "a", core.RotationRunning)                                                 // orphan: no lease
	create(t, s, core.NewRotation{Rotation: rot(2, "a"), Owner: "dead", LeaseTTL: time.Millisecond}) // orphan once expired
	create(t, s, core.NewRotation{Rotation: rot(3, "a"), Owner: "alive", LeaseTTL: longTTL})         // leased
	createStatus(t, s, 4, "b", core.RotationSucceeded)                                               // finished
	createStatus(t, s, 5, "b", core.RotationFailed)                                                  // finished
	createStatus(t, s, 6, "b", core.RotationPartial)                                                 // finished
	createStatus(t, s, 7, "b", core.RotationPending)                                                 // orphan
	createStatus(t, s, 8, "c", core.RotationRunning)                                                 // orphan, released below
	require.True(t, acquire(t, s, id(8), "alive", longTTL))
	require.NoError(t, s.ReleaseLease(ctx, id(8), "alive"))
	// finished by UpdateRotation: not an orphan
	r := createStatus(t, s, 9, "c", core.RotationRunning)
	r.Status, r.FinishedAt = core.RotationSucceeded, tptr(base)
	require.NoError(t, s.UpdateRotation(ctx, r))
	time.Sleep(10 * time.Millisecond) // rot 2's lease expires

	got := claim(t, s, "me", longTTL, 0)
	require.Equal(t, []string{id(1), id(2), id(7), id(8)}, got, "unfinished rotations without a live lease, oldest first (limit 0: all)")
	for _, rid := range got {
		require.False(t, acquire(t, s, rid, "other", longTTL), "%s is now leased to me", rid)
		require.True(t, renew(t, s, rid, "me", longTTL), "%s is now leased to me", rid)
	}
	require.False(t, acquire(t, s, id(3), "me", longTTL), "the live lease was not taken")
	require.Empty(t, claim(t, s, "other", longTTL, 10), "claimed orphans are leased")
	require.Empty(t, claim(t, s, "me", longTTL, 10), "not even to the same owner again")
}

func testClaimOrphansLimit(t *testing.T, s core.Store) {
	for i := 1; i <= 5; i++ {
		createStatus(t, s, i, "a", core.RotationRunning)
	}
	require.Equal(t, []string{id(1), id(2)}, claim(t, s, "me", longTTL, 2))
	require.Equal(t, []string{id(3), id(4)}, claim(t, s, "you", longTTL, 2))
	require.Equal(t, []string{id(5)}, claim(t, s, "me", longTTL, 2))
	require.Empty(t, claim(t, s, "me", longTTL, 2))
	require.True(t, renew(t, s, id(3), "you", longTTL))
	require.False(t, renew(t, s, id(3), "me", longTTL))
}

func testClaimOrphansExpired(t *testing.T, s core.Store) {
	for i := 1; i <= 3; i++ {
		createStatus(t, s, i, "a", core.RotationRunning)
	}
	require.Equal(t, []string{id(1), id(2), id(3)}, claim(t, s, "dies", shortTTL, 10))
	require.Empty(t, claim(t, s, "survivor", longTTL, 10), "live leases")
	require.True(t, renew(t, s, id(2), "dies", longTTL)) // this one it keeps renewing
	time.Sleep(expiryWait)
	require.Equal(t, []string{id(1), id(3)}, claim(t, s, "survivor", longTTL, 10), "expired leases are taken over")
	require.False(t, renew(t, s, id(1), "dies", longTTL), "the dead replica lost them")
	require.True(t, renew(t, s, id(2), "dies", longTTL))
}

func testClaimOrphansConcurrent(t *testing.T, s core.Store) {
	const orphans, workers, batch = 50, 8, 3
	for i := 1; i <= orphans; i++ {
		createStatus(t, s, i, "a", core.RotationRunning)
	}
	var wg sync.WaitGroup
	claimed := make([][]string, workers)
	errs := make([]error, workers)
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for round := 0; round < orphans; round++ {
				got, err := s.ClaimOrphans(context.Background(), fmt.Sprintf("replica-%d", w), longTTL, batch)
				if err != nil {
					errs[w] = err
					return
				}
				if len(got) > batch {
					errs[w] = fmt.Errorf("claimed %d > limit %d", len(got), batch)
					return
				}
				if len(got) == 0 {
					return
				}
				claimed[w] = append(claimed[w], got...)
			}
		}(w)
	}
	close(start)
	wg.Wait()
	owner := map[string]int{}
	for w := 0; w < workers; w++ {
		require.NoError(t, errs[w], "replica-%d", w)
		for _, rid := range claimed[w] {
			prev, dup := owner[rid]
			require.False(t, dup, "%s claimed by replica-%d and replica-%d", rid, prev, w)
			owner[rid] = w
		}
	}
	require.Len(t, owner, orphans, "every orphan claimed exactly once")
	require.Empty(t, claim(t, s, "late", longTTL, 0))
	for rid, w := range owner {
		require.True(t, renew(t, s, rid, fmt.Sprintf("replica-%d", w), longTTL), "%s leased to its claimer", rid)
	}
}

// ---- target claims ----

// holder is one attempt's claim on warehouse/<target> for rotation seq, holder h.
func holder(target string, seq int64, h string) core.TargetClaim {
	return core.TargetClaim{Source: "warehouse", Target: target, Seq: seq, RotationID: id(int(seq)), Holder: h}
}

func claimTarget(t *testing.T, s core.Store, c core.TargetClaim, ttl time.Duration) core.ClaimResult {
	t.Helper()
	res, err := s.ClaimTarget(ctxT(t), c, ttl)
	require.NoError(t, err, "ClaimTarget %+v", c)
	return res
}

func release(t *testing.T, s core.Store, c core.TargetClaim, hold time.Duration) {
	t.Helper()
	require.NoError(t, s.ReleaseTarget(ctxT(t), c, hold), "ReleaseTarget %+v", c)
}

func renewClaim(t *testing.T, s core.Store, c core.TargetClaim, ttl time.Duration) core.ClaimResult {
	t.Helper()
	res, err := s.RenewTargetClaim(ctxT(t), c, ttl)
	require.NoError(t, err, "RenewTargetClaim %+v", c)
	return res
}

func testClaimTarget(t *testing.T, s core.Store) {
	const tgt = "felt/0"
	a1, a1b, b2 := holder(tgt, 1, "a1"), holder(tgt, 1, "a1-resumed"), holder(tgt, 2, "b2")

	require.Equal(t, core.ClaimGranted, claimTarget(t, s, a1, longTTL), "first claim")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, a1, longTTL), "a holder re-claims its own claim")
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, a1b, longTTL),
		"the same rotation under another holder (resumed after a crash) waits for the first holder's call")
	release(t, s, b2, 0) // releasing a claim one does not hold is a no-op
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, b2, longTTL), "a newer rotation waits while an older claim is live")

	// other targets and other sources are independent
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder("databrain", 2, "b2"), longTTL))
	other := a1
	other.Source = "other-source"
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, other, longTTL))

	// b2 asked while a1 held the target: a1's next claim, under any holder, is superseded
	release(t, s, a1, 0)
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, holder(tgt, 1, "a1-retry"), longTTL),
		"an older rotation never takes a target a newer one is waiting for")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, b2, longTTL), "granted once the older claim is released")
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, a1, longTTL), "a higher seq has claimed the target")
	release(t, s, b2, 0)
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, a1, longTTL), "superseded stays superseded after release")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 2, "b2-retry"), longTTL), "the same rotation again, new holder, after its release")

	// superseded is decided before busy: c3 holds, a1 and b2 (older) are superseded
	release(t, s, holder(tgt, 2, "b2-retry"), 0)
	c3 := holder(tgt, 3, "c3")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, c3, longTTL))
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, b2, longTTL))
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, a1, longTTL))
	// a newer rotation waits for an older one's live claim, then takes over
	d4 := holder(tgt, 4, "d4")
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, d4, longTTL))
	release(t, s, c3, 0)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, d4, longTTL))
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, c3, longTTL))

	// the other target's claim by b2 was untouched by all this
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder("databrain", 3, "c3"), longTTL))
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, holder("databrain", 1, "a1"), longTTL))
}

func testClaimTargetExpiry(t *testing.T, s core.Store) {
	const tgt = "rivergen/1"
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 1, "dead"), shortTTL))
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 2, "b"), longTTL))
	time.Sleep(expiryWait)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 2, "b"), shortTTL), "the dead replica's claim expired")
	require.Equal(t, core.ClaimSuperseded, claimTarget(t, s, holder(tgt, 1, "dead"), longTTL))
	// re-claiming renews the claim
	time.Sleep(shortTTL / 2)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 2, "b"), longTTL))
	time.Sleep(expiryWait)
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 3, "c"), longTTL), "renewed for longer: still live")
}

func testClaimTargetConcurrent(t *testing.T, s core.Store) {
	const n = 10
	var wg sync.WaitGroup
	res := make([]core.ClaimResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			res[i], errs[i] = s.ClaimTarget(context.Background(), holder("felt/0", int64(i+1), fmt.Sprint("h", i)), longTTL)
		}(i)
	}
	close(start)
	wg.Wait()
	granted := 0
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		if res[i] == core.ClaimGranted {
			granted++
		}
	}
	require.Equal(t, 1, granted, "one holder per target, whatever the race: %v", res)
}

func testClaimTargetRenew(t *testing.T, s core.Store) {
	const tgt = "felt/2"
	a := holder(tgt, 1, "a")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, a, shortTTL))
	require.Equal(t, core.ClaimGranted, renewClaim(t, s, a, longTTL), "renewed while nobody waits")
	time.Sleep(expiryWait)
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 1, "a-resumed"), longTTL), "the renewal outlived the first ttl")
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 2, "b"), longTTL), "a newer rotation asks")
	require.Equal(t, core.ClaimSuperseded, renewClaim(t, s, a, shortTTL), "the holder learns that a newer rotation waits")
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 2, "b"), longTTL), "still held: it may have a call in flight")
	time.Sleep(expiryWait)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 2, "b"), longTTL), "the renewed claim expired")
	require.Equal(t, core.ClaimLost, renewClaim(t, s, a, longTTL), "another holder took the target")
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 3, "c"), longTTL), "a lost renewal changed nothing")
}

func testClaimTargetHold(t *testing.T, s core.Store) {
	const tgt = "felt/3"
	a := holder(tgt, 1, "a")
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, a, longTTL))
	release(t, s, a, shortTTL) // a call whose outcome is unknown may land until then
	require.Equal(t, core.ClaimBusy, claimTarget(t, s, holder(tgt, 1, "a-retry"), longTTL),
		"not even the rotation's own next attempt overlaps a call that may still land")
	time.Sleep(expiryWait)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 1, "a-retry"), longTTL), "granted once the hold passed")
	release(t, s, holder(tgt, 1, "a-retry"), 0)
	require.Equal(t, core.ClaimGranted, claimTarget(t, s, holder(tgt, 2, "b"), longTTL), "released at once: the next rotation takes it")
}

// ---- audit ----

func testAudit(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	evs, err := s.ListAudit(ctx, core.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, evs)

	var appended []core.AuditEvent
	add := func(e core.AuditEvent) {
		require.NoError(t, s.AppendAudit(ctx, e))
		appended = append(appended, e)
	}
	add(core.AuditEvent{At: base, Actor: "rotation-job", Action: "rotation.submitted", Source: "a", RotationID: id(1)})
	add(core.AuditEvent{At: base.Add(time.Second), Action: "target.finished", Source: "a", RotationID: id(1), Target: "felt/0", Status: "succeeded"})
	add(core.AuditEvent{At: base.Add(2 * time.Second), Action: "target.finished", Source: "a", RotationID: id(1), Target: "databrain", Status: "failed", Detail: "vendor_rejected"})
	add(core.AuditEvent{At: base.Add(2 * time.Second), Actor: "ops", Action: "rotation.submitted", Source: "b", RotationID: id(2)})
	add(core.AuditEvent{At: base.Add(3 * time.Second), Action: "rotation.finished", Source: "a", RotationID: id(1), Status: "partial"})
	add(core.AuditEvent{At: base.Add(time.Second), Actor: "ops", Action: "rotation.retried", Source: "a", RotationID: id(1)}) // out of time order: listed by appending

	list := func(f core.AuditFilter) []core.AuditEvent {
		t.Helper()
		evs, err := s.ListAudit(ctx, f)
		require.NoError(t, err, "ListAudit %+v", f)
		for i := range evs {
			evs[i].At = evs[i].At.UTC()
		}
		return evs
	}
	rev := func(idx ...int) []core.AuditEvent {
		out := make([]core.AuditEvent, len(idx))
		for i, j := range idx {
			out[i] = appended[j]
		}
		return out
	}
	require.Equal(t, rev(5, 4, 3, 2, 1, 0), list(core.AuditFilter{}), "newest first, every field kept")
	require.Equal(t, rev(5, 4, 2, 1, 0), list(core.AuditFilter{Source: "a"}))
	require.Equal(t, rev(3), list(core.AuditFilter{Source: "b"}))
	require.Equal(t, rev(3), list(core.AuditFilter{RotationID: id(2)}))
	require.Equal(t, rev(5, 4), list(core.AuditFilter{RotationID: id(1), Limit: 2}))
	require.Equal(t, rev(5, 4, 2, 1, 0), list(core.AuditFilter{Source: "a", RotationID: id(1)}))
	require.Empty(t, list(core.AuditFilter{Source: "b", RotationID: id(1)}))
	require.Empty(t, list(core.AuditFilter{Source: "zzz"}))
	require.Equal(t, rev(3), list(core.AuditFilter{Sources: []string{"b", "zzz"}}))
	require.Equal(t, rev(5, 4, 3, 2, 1, 0), list(core.AuditFilter{Sources: []string{"b", "a"}}))
	require.Empty(t, list(core.AuditFilter{Sources: []string{}}))
	require.Equal(t, rev(5, 4), list(core.AuditFilter{Sources: []string{"a"}, RotationID: id(1), Limit: 2}))
}

func testAuditWithRotation(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	ev := func(i int) core.AuditEvent {
		return core.AuditEvent{At: base.Add(time.Duration(i) * time.Second), Actor: "job", Action: "rotation.submitted", Source: "a", RotationID: id(i), Detail: "password to 1 target(s)"}
	}
	e1, e2 := ev(1), ev(2)
	create(t, s, core.NewRotation{Rotation: rot(1, "a"), Audit: &e1})
	create(t, s, core.NewRotation{Rotation: rot(2, "a"), Actor: "job", IdempotencyKey: "k", RequestHash: "h", Audit: &e2})
	// a replayed key creates nothing, so it appends nothing either
	e3 := ev(3)
	hit, err := s.CreateRotation(ctx, core.NewRotation{Rotation: rot(3, "a"), Actor: "job", IdempotencyKey: "k", RequestHash: "h", Audit: &e3})
	require.NoError(t, err)
	require.NotNil(t, hit)
	create(t, s, core.NewRotation{Rotation: rot(4, "a")}) // no event

	evs, err := s.ListAudit(ctx, core.AuditFilter{})
	require.NoError(t, err)
	for i := range evs {
		evs[i].At = evs[i].At.UTC()
	}
	require.Equal(t, []core.AuditEvent{e2, e1}, evs)
}

func testAuditDefaultLimit(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	const n = 105
	for i := 0; i < n; i++ {
		require.NoError(t, s.AppendAudit(ctx, core.AuditEvent{At: base.Add(time.Duration(i) * time.Second),
			Action: "target.finished", Source: "a", RotationID: id(i)}))
	}
	evs, err := s.ListAudit(ctx, core.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, evs, 100, "Limit 0 means 100")
	require.Equal(t, id(n-1), evs[0].RotationID)
	require.Equal(t, id(n-100), evs[99].RotationID)
	evs, err = s.ListAudit(ctx, core.AuditFilter{Limit: 200})
	require.NoError(t, err)
	require.Len(t, evs, n)
}

func testPing(t *testing.T, s core.Store) {
	require.NoError(t, s.Ping(ctxT(t)))
}

func testUpdateTarget(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	r := rot(1, "a")
	r.Targets = append(r.Targets, core.TargetResult{Name: "second", Platform: "p", Vendor: "felt", Status: core.TargetPending})
	create(t, s, core.NewRotation{Rotation: r})
	other := rot(2, "a")
	create(t, s, core.NewRotation{Rotation: other})
	tr := r.Targets[1]
	tr.Status, tr.Attempts, tr.Verified = core.TargetFailed, 3, false
	tr.Error = &core.Error{Code: core.CodeVendorError, Message: "HTTP 503", Retryable: true, VendorStatus: 503}
	tr.FinishedAt = tptr(base.Add(time.Minute))
	require.NoError(t, s.UpdateTarget(ctx, r.ID, 1, tr))
	r.Targets[1] = tr
	r.Seq = 1
	requireSameRotation(t, r, get(t, s, r.ID))
	o := get(t, s, other.ID)
	other.Seq = 2
	requireSameRotation(t, other, o)
	require.ErrorIs(t, s.UpdateTarget(ctx, r.ID, len(r.Targets), tr), core.ErrNotFound, "no such target")
	require.ErrorIs(t, s.UpdateTarget(ctx, "rot_nope", 0, tr), core.ErrNotFound, "no such rotation")
}

func testFinishTarget(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	r := rot(1, "a")
	create(t, s, core.NewRotation{Rotation: r})
	tr := r.Targets[0]
	tr.Status, tr.Attempts, tr.FinishedAt = core.TargetFailed, 2, tptr(base.Add(time.Minute))
	tr.Error = &core.Error{Code: core.CodeRejected, Message: "HTTP 422", VendorStatus: 422}
	ev := core.AuditEvent{At: base.Add(time.Minute), Action: "target.finished", Source: "a", RotationID: r.ID, Target: tr.Name, Status: "failed", Detail: core.CodeRejected}
	require.NoError(t, s.FinishTarget(ctx, r.ID, 0, tr, ev))
	r.Targets[0], r.Seq = tr, 1
	requireSameRotation(t, r, get(t, s, r.ID))

	require.ErrorIs(t, s.FinishTarget(ctx, "rot_nope", 0, tr, ev), core.ErrNotFound)
	require.ErrorIs(t, s.FinishTarget(ctx, r.ID, 5, tr, ev), core.ErrNotFound)
	evs, err := s.ListAudit(ctx, core.AuditFilter{})
	require.NoError(t, err)
	for i := range evs {
		evs[i].At = evs[i].At.UTC()
	}
	require.Equal(t, []core.AuditEvent{ev}, evs, "the event is appended with the outcome, and not for a target that does not exist")
}

func testSetRotationStatus(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	r := rot(1, "a")
	create(t, s, core.NewRotation{Rotation: r})
	tr := r.Targets[0]
	tr.Status, tr.Attempts, tr.Verified = core.TargetSucceeded, 1, true
	require.NoError(t, s.UpdateTarget(ctx, r.ID, 0, tr))

	require.NoError(t, s.SetRotationStatus(ctx, r.ID, core.RotationRunning, nil))
	got := get(t, s, r.ID)
	require.Equal(t, core.RotationRunning, got.Status)
	require.Nil(t, got.FinishedAt)

	fin := base.Add(time.Hour)
	require.NoError(t, s.SetRotationStatus(ctx, r.ID, core.RotationSucceeded, &fin))
	r.Targets[0] = tr
	r.Status, r.FinishedAt, r.Seq = core.RotationSucceeded, &fin, 1
	requireSameRotation(t, r, get(t, s, r.ID)) // the targets are left as UpdateTarget wrote them

	require.ErrorIs(t, s.SetRotationStatus(ctx, "rot_nope", core.RotationFailed, &fin), core.ErrNotFound)
}

func testManyTargets(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	r := rot(1, "big")
	r.Targets = make([]core.TargetResult, 2500)
	for i := range r.Targets {
		r.Targets[i] = core.TargetResult{Name: fmt.Sprintf("t%04d", i), Platform: "p", Vendor: "rivergen", Status: core.TargetPending}
	}
	create(t, s, core.NewRotation{Rotation: r})
	r.Targets[2499].Status = core.TargetSucceeded
	require.NoError(t, s.UpdateTarget(ctx, r.ID, 2499, r.Targets[2499]))
	got := get(t, s, r.ID)
	require.Len(t, got.Targets, 2500)
	require.Equal(t, "t1234", got.Targets[1234].Name, "targets keep their order")
	require.Equal(t, core.TargetSucceeded, got.Targets[2499].Status)
	list, err := s.ListRotations(ctx, core.ListFilter{Source: "big"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Empty(t, list[0].Targets, "a list never embeds the targets")
	require.Equal(t, map[core.TargetStatus]int{core.TargetPending: 2499, core.TargetSucceeded: 1}, list[0].TargetCounts)

	// Pages: bounded, in order, with a cursor; a status filter.
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 30)
		p, err := s.GetRotationPage(ctx, r.ID, core.TargetPage{After: after, Limit: 100})
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Targets), 100)
		require.Equal(t, map[core.TargetStatus]int{core.TargetPending: 2499, core.TargetSucceeded: 1}, p.TargetCounts)
		for _, tr := range p.Targets {
			names = append(names, tr.Name)
		}
		if p.NextTargets == "" {
			break
		}
		after = p.NextTargets
	}
	require.Len(t, names, 2500)
	require.Equal(t, "t0000", names[0])
	require.Equal(t, "t2499", names[2499])
	p, err := s.GetRotationPage(ctx, r.ID, core.TargetPage{})
	require.NoError(t, err)
	require.Len(t, p.Targets, core.DefaultTargetPage, "the default page is bounded")
	require.Equal(t, "99", p.NextTargets)
	p, err = s.GetRotationPage(ctx, r.ID, core.TargetPage{Status: core.TargetSucceeded})
	require.NoError(t, err)
	require.Len(t, p.Targets, 1)
	require.Equal(t, "t2499", p.Targets[0].Name)
	require.Empty(t, p.NextTargets)
	for _, bad := range []core.TargetPage{{After: "x"}, {After: "-3"}, {After: "01"}, {Limit: core.MaxTargetPage + 1}, {Status: "done"}} {
		_, err := s.GetRotationPage(ctx, r.ID, bad)
		var ie *core.InputError
		require.ErrorAs(t, err, &ie, "%+v", bad)
	}
	_, err = s.GetRotationPage(ctx, "rot_nope", core.TargetPage{})
	require.ErrorIs(t, err, core.ErrNotFound)
}

// testLastOutcomes: each target's newest finished outcome, whatever order rotations finish in.
func testLastOutcomes(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	mk := func(i int) *core.Rotation {
		r := rot(i, "lo")
		r.Targets = []core.TargetResult{{Name: "a", Status: core.TargetPending}, {Name: "b", Status: core.TargetPending}}
		create(t, s, core.NewRotation{Rotation: r})
		return get(t, s, r.ID)
	}
	older, newer := mk(1), mk(2)
	finish := func(r *core.Rotation, idx int, st core.TargetStatus) {
		tr := r.Targets[idx]
		tr.Status = st
		require.NoError(t, s.FinishTarget(ctx, r.ID, idx, tr, core.AuditEvent{At: time.Now(), Action: "target.finished", Source: "lo", RotationID: r.ID, Target: tr.Name}))
	}
	last := func() map[string]core.LastOutcome {
		lo, err := s.LastOutcomes(ctx)
		require.NoError(t, err)
		return lo["lo"]
	}
	require.Empty(t, last(), "nothing finished yet")
	finish(newer, 0, core.TargetSucceeded)
	finish(older, 0, core.TargetSuperseded) // finishes later, but is older: not the last outcome
	finish(older, 1, core.TargetFailed)
	lo := last()
	require.Equal(t, newer.ID, lo["a"].RotationID)
	require.Equal(t, core.TargetSucceeded, lo["a"].Status)
	require.Equal(t, older.ID, lo["b"].RotationID, "b finished only in the older rotation")
	require.Equal(t, core.TargetFailed, lo["b"].Status)
	// UpdateRotation (resume, retry) records finished targets too.
	newer.Targets[1].Status = core.TargetSucceeded
	newer.Targets[1].Verified = true
	require.NoError(t, s.UpdateRotation(ctx, newer))
	lo = last()
	require.Equal(t, newer.ID, lo["b"].RotationID)
	require.True(t, lo["b"].Verified)
}

// testPurgeHistory: finished rotations older than the cut go, in bounded batches, oldest first;
// unfinished ones and the audit trail stay.
func testPurgeHistory(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	base := time.Now().Add(-time.Hour)
	for i := 1; i <= 5; i++ {
		r := rot(i, "ph")
		create(t, s, core.NewRotation{Rotation: r, IdempotencyKey: fmt.Sprintf("k%d", i), Actor: "job", RequestHash: "h"})
		if i <= 4 {
			fin := base.Add(time.Duration(i) * time.Minute)
			require.NoError(t, s.SetRotationStatus(ctx, r.ID, core.RotationSucceeded, &fin))
		}
	}
	require.NoError(t, s.AppendAudit(ctx, core.AuditEvent{At: base, Action: "rotation.submitted", Source: "ph", RotationID: id(1)}))
	cut := base.Add(3*time.Minute + time.Second) // rotations 1..3 finished before it
	n, err := s.PurgeHistory(ctx, cut, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n, "a batch is bounded")
	_, err = s.GetRotation(ctx, id(1))
	require.ErrorIs(t, err, core.ErrNotFound, "oldest first")
	_, err = s.GetRotation(ctx, id(3))
	require.NoError(t, err, "the third waits for the next batch")
	n, err = s.PurgeHistory(ctx, cut, 2)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = s.PurgeHistory(ctx, cut, 2)
	require.NoError(t, err)
	require.Zero(t, n)
	for _, keep := range []int{4, 5} {
		_, err := s.GetRotation(ctx, id(keep))
		require.NoError(t, err, "rotation %d is newer than the cut or unfinished", keep)
	}
	hit, err := s.FindIdempotencyKey(ctx, "job", "k1")
	require.NoError(t, err)
	require.Nil(t, hit, "a purged rotation's Idempotency-Key goes with it")
	evs, err := s.ListAudit(ctx, core.AuditFilter{RotationID: id(1)})
	require.NoError(t, err)
	require.NotEmpty(t, evs, "the audit trail is kept apart")
	n, err = s.PurgeAudit(ctx, base.Add(time.Second), 10)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1)
}

// testSourceState: a rotating source's state and a generated rotation's source part round-trip.
func testSourceState(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	st, err := s.GetSourceState(ctx, "wh")
	require.NoError(t, err)
	require.Equal(t, core.SourceState{Source: "wh"}, st, "nothing kept yet")
	at := time.Now().UTC().Truncate(time.Microsecond)
	want := core.SourceState{Source: "wh", InUse: []string{"b", "a"}, Current: id(1), LastRotatedAt: &at, NextDueAt: &at,
		Failures: 2, RetireUser: "a", RetireAt: &at, RetireRotation: id(1)}
	require.NoError(t, s.PutSourceState(ctx, want))
	st, err = s.GetSourceState(ctx, "wh")
	require.NoError(t, err)
	require.Equal(t, want.InUse, st.InUse)
	require.True(t, want.RetireAt.Equal(*st.RetireAt))
	require.Equal(t, want.Failures, st.Failures)
	require.Equal(t, want.RetireRotation, st.RetireRotation)
	want.InUse, want.RetireUser, want.RetireAt = []string{"b"}, "", nil
	require.NoError(t, s.PutSourceState(ctx, want))
	st, err = s.GetSourceState(ctx, "wh")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, st.InUse)
	require.Nil(t, st.RetireAt)

	r := rot(1, "wh")
	r.SourceRotation = &core.SourceRotationState{User: "b", PreviousUser: "a", Phase: core.PhaseStaging}
	create(t, s, core.NewRotation{Rotation: r})
	got := get(t, s, r.ID)
	require.Equal(t, r.SourceRotation, got.SourceRotation)
	done := core.SourceRotationState{User: "b", PreviousUser: "a", Phase: core.PhaseDone, RetireAt: &at, RetiredAt: &at}
	require.NoError(t, s.SetSourceRotation(ctx, r.ID, done))
	got = get(t, s, r.ID)
	require.Equal(t, core.PhaseDone, got.SourceRotation.Phase)
	require.True(t, at.Equal(*got.SourceRotation.RetiredAt))
	require.ErrorIs(t, s.SetSourceRotation(ctx, "rot_nope", done), core.ErrNotFound)
	create(t, s, core.NewRotation{Rotation: rot(2, "plain")})
	require.Nil(t, get(t, s, id(2)).SourceRotation, "a submitted credential has no source part")
}

func testNamedLeases(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	ok, err := s.AcquireNamedLease(ctx, "retire:wh", "r1", shortTTL)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AcquireNamedLease(ctx, "retire:wh", "r2", longTTL)
	require.NoError(t, err)
	require.False(t, ok, "held by r1")
	ok, err = s.AcquireNamedLease(ctx, "retire:wh", "r1", shortTTL)
	require.NoError(t, err)
	require.True(t, ok, "r1 renews its own")
	ok, err = s.AcquireNamedLease(ctx, "schedule:wh", "r2", longTTL)
	require.NoError(t, err)
	require.True(t, ok, "another job is another lease")
	time.Sleep(expiryWait)
	ok, err = s.AcquireNamedLease(ctx, "retire:wh", "r2", longTTL)
	require.NoError(t, err)
	require.True(t, ok, "r1's lease expired")
	require.NoError(t, s.ReleaseNamedLease(ctx, "retire:wh", "r1"), "releasing a lease one does not hold is a no-op")
	ok, err = s.AcquireNamedLease(ctx, "retire:wh", "r1", longTTL)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, s.ReleaseNamedLease(ctx, "retire:wh", "r2"))
	ok, err = s.AcquireNamedLease(ctx, "retire:wh", "r1", longTTL)
	require.NoError(t, err)
	require.True(t, ok, "released")
}

func testPauses(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	ps, err := s.ListPauses(ctx, true)
	require.NoError(t, err)
	require.Empty(t, ps)
	at := time.Now().UTC().Truncate(time.Microsecond)
	all := core.Pause{ID: "pause_1", Reason: "incident 42", Actor: "ops", CreatedAt: at}
	felt := core.Pause{ID: "pause_2", Platform: "felt", Source: "wh", Reason: "Felt outage", CreatedAt: at.Add(time.Second)}
	require.NoError(t, s.CreatePause(ctx, all))
	require.NoError(t, s.CreatePause(ctx, felt))
	ps, err = s.ListPauses(ctx, true)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, "pause_2", ps[0].ID, "newest first")
	require.Equal(t, "felt", ps[0].Platform)
	require.Equal(t, "wh", ps[0].Source)
	require.True(t, at.Equal(ps[1].CreatedAt))
	ended, err := s.EndPause(ctx, "pause_1", "oncall", at.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, "oncall", ended.EndedBy)
	require.NotNil(t, ended.EndedAt)
	require.Equal(t, "incident 42", ended.Reason)
	_, err = s.EndPause(ctx, "pause_1", "oncall", at)
	require.ErrorIs(t, err, core.ErrNotFound, "ended once")
	_, err = s.EndPause(ctx, "pause_nope", "oncall", at)
	require.ErrorIs(t, err, core.ErrNotFound)
	ps, err = s.ListPauses(ctx, true)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	ps, err = s.ListPauses(ctx, false)
	require.NoError(t, err)
	require.Len(t, ps, 2, "ended pauses are kept")
}

func testTargetHealth(t *testing.T, s core.Store) {
	ctx := ctxT(t)
	all, err := s.TargetHealths(ctx)
	require.NoError(t, err)
	require.Empty(t, all)
	_, ok, err := s.GetTargetHealth(ctx, "a", "felt/0")
	require.NoError(t, err)
	require.False(t, ok, "none kept yet")

	h := core.TargetHealth{Status: core.HealthUnhealthy, State: core.HealthUnhealthy, CheckedAt: base, Message: "Test Connection failed"}
	require.NoError(t, s.PutTargetHealth(ctx, "a", "felt/0", h))
	require.NoError(t, s.PutTargetHealth(ctx, "a", "rivergen/1", core.TargetHealth{Status: core.HealthUnknown, CheckedAt: base, Message: "no answer"}))
	require.NoError(t, s.PutTargetHealth(ctx, "b", "felt/0", core.TargetHealth{Status: core.HealthHealthy, State: core.HealthHealthy, CheckedAt: base}))
	got, ok, err := s.GetTargetHealth(ctx, "a", "felt/0")
	require.NoError(t, err)
	require.True(t, ok)
	got.CheckedAt = got.CheckedAt.UTC()
	require.Equal(t, h, got, "every field kept")

	// A new result replaces the old one: status, state, time and message.
	h2 := core.TargetHealth{Status: core.HealthUnknown, State: core.HealthUnhealthy, CheckedAt: base.Add(time.Hour), Message: "HTTP 503"}
	require.NoError(t, s.PutTargetHealth(ctx, "a", "felt/0", h2))
	all, err = s.TargetHealths(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Len(t, all["a"], 2)
	got = all["a"]["felt/0"]
	got.CheckedAt = got.CheckedAt.UTC()
	require.Equal(t, h2, got)
	require.Equal(t, core.HealthHealthy, all["b"]["felt/0"].Status)
	require.Equal(t, "", all["a"]["rivergen/1"].State.String(), "no definite state yet")
}
