package snowflake

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb"
	"github.com/credsync/credsync/sourcedb/snowflake/snowflakefake"
)

func fp(t *testing.T, k core.Secret) string {
	t.Helper()
	f, err := snowflakefake.Fingerprint(k.Reveal())
	require.NoError(t, err)
	return f
}

// TestStageLoginRetireAlternate drives one rotation through the slots and checks what the fake
// applied and which keys it then accepts: the staged key logs in, the old one keeps working
// until its slot is retired, and after that it is refused with ErrAuth.
func TestStageLoginRetireAlternate(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	ctx := context.Background()

	active, err := d.ActiveSlot(ctx)
	require.NoError(t, err)
	require.Equal(t, SlotKey1, active, "the seeded key is in slot 1")

	require.NoError(t, d.Stage(ctx, SlotKey2, e.new))
	fp1, fp2 := e.fake.Slots(testUser)
	require.Equal(t, fp(t, e.old), fp1, "staging slot 2 left slot 1 alone")
	require.Equal(t, fp(t, e.new), fp2)
	require.NoError(t, d.Login(ctx, SlotKey2, e.new))
	require.NoError(t, d.Login(ctx, SlotKey1, e.old), "the old key works until its slot is retired")

	require.NoError(t, d.Retire(ctx, SlotKey1))
	err = d.Login(ctx, SlotKey1, e.old)
	require.ErrorIs(t, err, sourcedb.ErrAuth, "fake: %s", e.fake.LastAuthError())
	noSecret(t, err, e.secretsOf())
	require.NoError(t, d.Login(ctx, SlotKey2, e.new))

	active, err = d.ActiveSlot(ctx)
	require.NoError(t, err)
	require.Equal(t, SlotKey2, active)

	h := e.fake.History()
	require.Len(t, h, 2)
	require.Equal(t, []string{"SET", "UNSET"}, []string{h[0].Op, h[1].Op})
	require.Equal(t, []string{SlotKey2, SlotKey1}, []string{h[0].Slot, h[1].Slot})
	require.Equal(t, testAdmin, h[0].By, "the admin applies the changes")
	require.Equal(t, fp(t, e.old), h[1].Fingerprint, "the retired key is the old one")

	// Retire is idempotent: unsetting the empty slot again succeeds.
	require.NoError(t, d.Retire(ctx, SlotKey1))
}

// TestStageAgainAfterACrash: staging a key that is already in place succeeds, so a rotation
// resumed after a crash can repeat the step.
func TestStageAgainAfterACrash(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	ctx := context.Background()
	require.NoError(t, d.Stage(ctx, SlotKey2, e.new))
	require.NoError(t, d.Stage(ctx, SlotKey2, e.new))
	_, fp2 := e.fake.Slots(testUser)
	require.Equal(t, fp(t, e.new), fp2)
}

// TestActiveSlotRefusesTwoKeys: when both slots hold a key credsync cannot tell which one the
// consumers use; the error says how to fix it. With no key at all, slot 1 is the one.
func TestActiveSlotRefusesTwoKeys(t *testing.T) {
	e := newEnv(t)
	e.fake.AddUser(testUser, false, e.old.Reveal(), e.spare.Reveal())
	d := e.open(t)
	_, err := d.ActiveSlot(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), "both slots")
	require.Contains(t, err.Error(), `ALTER USER "SVC_LOADER" UNSET`)

	e.fake.AddUser(testUser, false)
	active, err := d.ActiveSlot(context.Background())
	require.NoError(t, err)
	require.Equal(t, SlotKey1, active)
}

// TestErrorsSayWhatToDoAndHoldNoSecret covers the refusals an operator meets: a wrong admin
// key, a user that does not exist, a disabled user, a slot that is not one, a key that is not
// PEM. Each is recognisable (errors.Is where a caller branches on it) and holds no key or token.
func TestErrorsSayWhatToDoAndHoldNoSecret(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong admin key", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.AdminKey = e.bad
		_, err := Open(ctx, e.cfg)
		require.ErrorIs(t, err, sourcedb.ErrAuth)
		require.Contains(t, err.Error(), "fingerprint "+fp(t, e.bad))
		noSecret(t, err, append(e.secretsOf(), e.bad.Reveal()))
	})
	t.Run("no such user", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.User = "NOBODY"
		d := e.open(t)
		err := d.Check(ctx, SlotKey1)
		require.ErrorIs(t, err, sourcedb.ErrNoUser)
		err = d.Stage(ctx, SlotKey2, e.new)
		var se *sourcedb.StageError
		require.ErrorAs(t, err, &se)
		require.Equal(t, StepSetKey, se.Step)
		require.ErrorIs(t, err, sourcedb.ErrNoUser)
		noSecret(t, err, e.secretsOf())
	})
	t.Run("lower-case name hints at quoting", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.User = strings.ToLower(testUser)
		d := e.open(t)
		err := d.Check(ctx)
		require.ErrorIs(t, err, sourcedb.ErrNoUser)
		require.Contains(t, err.Error(), testUser, "the hint names the upper-case name")
	})
	t.Run("disabled user", func(t *testing.T) {
		e := newEnv(t)
		e.fake.SetDisabled(testUser, true)
		d := e.open(t)
		err := d.Check(ctx, SlotKey1, SlotKey2)
		require.Error(t, err)
		require.Contains(t, err.Error(), "SET DISABLED = FALSE")
	})
	t.Run("bad slot and bad key", func(t *testing.T) {
		e := newEnv(t)
		d := e.open(t)
		require.ErrorIs(t, d.Retire(ctx, "PASSWORD"), errBadSlot)
		require.ErrorIs(t, d.Check(ctx, "RSA_PUBLIC_KEY_3"), errBadSlot)
		err := d.Stage(ctx, SlotKey2, core.NewSecret("not a key at all, but secret-ish"))
		require.ErrorContains(t, err, "not PEM")
		require.NotContains(t, err.Error(), "secret-ish")
		require.Empty(t, e.fake.History(), "nothing was applied")
	})
	t.Run("the admin is the rotated user", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.User = testAdmin
		_, err := Open(ctx, e.cfg)
		require.ErrorContains(t, err, "cut credsync off")
	})
	t.Run("closed", func(t *testing.T) {
		e := newEnv(t)
		d := e.open(t)
		require.NoError(t, d.Close())
		require.ErrorIs(t, d.Login(ctx, SlotKey1, e.old), sourcedb.ErrClosed)
		require.ErrorIs(t, d.Check(ctx), sourcedb.ErrClosed)
	})
}

// TestUnavailableIsRetriedThenReported: 503s and a 202 that must be polled are ridden out within
// the attempts; 503s beyond them give ErrUnavailable, with nothing applied.
func TestUnavailableIsRetriedThenReported(t *testing.T) {
	ctx := context.Background()

	e := newEnv(t)
	d := e.open(t)
	e.fake.SetFault(snowflakefake.Fault{Unavailable: 2})
	require.NoError(t, d.Stage(ctx, SlotKey2, e.new), "two 503s are within three attempts")
	_, fp2 := e.fake.Slots(testUser)
	require.Equal(t, fp(t, e.new), fp2)

	e.fake.SetFault(snowflakefake.Fault{Async: 1, Polls: 3})
	require.NoError(t, d.Retire(ctx, SlotKey1), "a statement answered 202 is polled to its result")
	fp1, _ := e.fake.Slots(testUser)
	require.Empty(t, fp1)

	e2 := newEnv(t)
	d2 := e2.open(t)
	e2.fake.SetFault(snowflakefake.Fault{Unavailable: 10, Status: http.StatusTooManyRequests})
	err := d2.Retire(ctx, SlotKey1)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Contains(t, err.Error(), "429")
	require.Empty(t, e2.fake.History())
	noSecret(t, err, e2.secretsOf())

	e2.fake.SetFault(snowflakefake.Fault{Async: 1, Polls: 100})
	err = d2.Retire(ctx, SlotKey2)
	require.ErrorIs(t, err, ErrUnavailable, "still running after every poll")
}

// TestContextEndsTheWait: a caller's deadline stops a slow statement, and the error matches
// context.DeadlineExceeded.
func TestContextEndsTheWait(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	e.fake.SetFault(snowflakefake.Fault{Latency: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := d.Login(ctx, SlotKey1, e.old)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	noSecret(t, err, e.secretsOf())
}

// TestParseDSN reads the admin DSN and refuses what is not one without quoting it.
func TestParseDSN(t *testing.T) {
	cfg, err := ParseDSN("snowflake://CREDSYNC_ADMIN@myorg-myaccount/?role=SECURITYADMIN&warehouse=WH&endpoint=http://127.0.0.1:1234")
	require.NoError(t, err)
	require.Equal(t, "CREDSYNC_ADMIN", cfg.AdminUser)
	require.Equal(t, "myorg-myaccount", cfg.Account)
	require.Equal(t, "SECURITYADMIN", cfg.Role)
	require.Equal(t, "WH", cfg.Warehouse)
	require.Equal(t, "http://127.0.0.1:1234", cfg.Endpoint)

	for _, bad := range []string{
		"postgres://u:hunter2@h/db",
		"snowflake://ADMIN:hunter2@acct/",
		"snowflake://acct/",
		"snowflake://ADMIN@acct/?colour=hunter2",
	} {
		_, err := ParseDSN(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "hunter2", bad)
	}
}
