package sourcedb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb/password"
)

// Every test here runs against both servers.
func forEachEngine(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, f := range fixtures {
		t.Run(f.engine, func(t *testing.T) { test(t, f) })
	}
}

func openT(t *testing.T, f *fixture) DB {
	t.Helper()
	d, err := Open(ctxT(t), f.engine, f.adminDSN)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// secrets collects every password a test made or saw, to look for them in what was logged and
// in every error.
type secrets struct {
	mu   sync.Mutex
	list []string
}

func (s *secrets) add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, v...)
}

func (s *secrets) gen(t *testing.T, p password.Policy) core.Secret {
	t.Helper()
	pw, err := password.Generate(p)
	require.NoError(t, err)
	s.add(pw.Reveal())
	return pw
}

// requireAbsent fails if any secret, or any 8-character piece of one, is in text.
func (s *secrets) requireAbsent(t *testing.T, where, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.list)
	for _, v := range s.list {
		for i := 0; i+core.PieceLen <= len(v); i++ {
			if strings.Contains(text, v[i:i+core.PieceLen]) {
				t.Fatalf("%s holds a piece %q of a password", where, v[i:i+core.PieceLen])
			}
		}
	}
}

// captureRetire records the passwords Retire sets during t.
func captureRetire(t *testing.T, s *secrets) {
	orig := generate
	generate = func(p password.Policy) (core.Secret, error) {
		pw, err := orig(p)
		s.add(pw.Reveal())
		return pw, err
	}
	t.Cleanup(func() { generate = orig })
}

// TestRotation is a whole rotation with two users, and back: the staged user logs in with the
// generated password, the previous one keeps working until it is retired and fails after.
func TestRotation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		var sec secrets
		captureRetire(t, &sec)
		// The initial passwords are set by the test (the server logs them); the later ones are
		// generated, and set through the package only.
		a0, b0 := core.NewSecret(randomHex(16)), core.NewSecret(randomHex(16))
		f.createUser(t, "analytics_a", a0.Reveal())
		f.createUser(t, "analytics_b", b0.Reveal())
		d := openT(t, f)
		require.NoError(t, d.Check(ctx, "analytics_a", "analytics_b"))

		// Stage the inactive user.
		b1 := sec.gen(t, password.Policy{})
		require.NoError(t, d.Stage(ctx, "analytics_b", b1))
		require.NoError(t, f.rawLogin(ctx, "analytics_b", b1.Reveal()), "the staged user logs in with the new password")
		require.NoError(t, d.Login(ctx, "analytics_b", b1))
		err := f.rawLogin(ctx, "analytics_b", b0.Reveal())
		require.True(t, f.isAuthErr(err), "the staged user's old password no longer works: %v", err)
		err = d.Login(ctx, "analytics_b", b0)
		require.ErrorIs(t, err, ErrAuth)

		// The previous user works until it is retired...
		require.NoError(t, f.rawLogin(ctx, "analytics_a", a0.Reveal()))
		require.NoError(t, d.Login(ctx, "analytics_a", a0))
		// ... and not after.
		require.NoError(t, d.Retire(ctx, "analytics_a"))
		err = f.rawLogin(ctx, "analytics_a", a0.Reveal())
		require.True(t, f.isAuthErr(err), "the retired user's password no longer works: %v", err)
		err = d.Login(ctx, "analytics_a", a0)
		require.ErrorIs(t, err, ErrAuth)
		require.Contains(t, err.Error(), "analytics_a")
		require.NoError(t, f.rawLogin(ctx, "analytics_b", b1.Reveal()), "the staged user still works after the retire")

		// Stage is idempotent: a resumed rotation repeats it.
		require.NoError(t, d.Stage(ctx, "analytics_b", b1))
		require.NoError(t, f.rawLogin(ctx, "analytics_b", b1.Reveal()))

		// The next rotation goes back to analytics_a, with symbols this time.
		a1 := sec.gen(t, password.Policy{Length: 48, Symbols: true})
		require.NoError(t, d.Stage(ctx, "analytics_a", a1))
		require.NoError(t, f.rawLogin(ctx, "analytics_a", a1.Reveal()))
		require.NoError(t, d.Retire(ctx, "analytics_b"))
		require.True(t, f.isAuthErr(f.rawLogin(ctx, "analytics_b", b1.Reveal())))
		require.NoError(t, f.rawLogin(ctx, "analytics_a", a1.Reveal()))

		// One user: replaced in place.
		a2 := sec.gen(t, password.Policy{})
		require.NoError(t, d.Stage(ctx, "analytics_a", a2))
		require.NoError(t, f.rawLogin(ctx, "analytics_a", a2.Reveal()))
		require.True(t, f.isAuthErr(f.rawLogin(ctx, "analytics_a", a1.Reveal())))

		require.Len(t, sec.list, 3+2, "Retire's passwords were captured")
		sec.requireAbsent(t, "the server's statement log", f.serverLog(t))
	})
}

// TestServerLogHoldsVerifiers shows what the statement logs hold instead of the password.
func TestServerLogHoldsVerifiers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		var sec secrets
		u := "log_probe_" + randomHex(4)
		f.createUser(t, u, randomHex(16))
		d := openT(t, f)
		pw := sec.gen(t, password.Policy{Symbols: true})
		require.NoError(t, d.Stage(ctx, u, pw))
		log := f.serverLog(t)
		var want string
		switch f.engine {
		case Postgres:
			want = `ALTER ROLE "` + u + `" WITH PASSWORD E'SCRAM-SHA-256$4096:`
		case MySQL:
			want = "ALTER USER '" + u + "'@'%' IDENTIFIED BY PASSWORD '" + nativeHash(pw.Reveal()) + "'"
		}
		require.Contains(t, log, want, "the statement is logged (the test would prove nothing otherwise), with the verifier")
		sec.requireAbsent(t, "the server's statement log", log)
	})
}

// TestQuotedNames uses user names that need quoting, and passwords with every symbol of the
// symbols policy and with the characters that need escaping in SQL.
func TestQuotedNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		var sec secrets
		captureRetire(t, &sec)
		users := []string{`Odd"User`, `o'brien`, `back\slash`, `semi;colon--`, `with space`, `ünïcødé`, `'; DROP TABLE x; --`}
		if f.engine == MySQL {
			users = append(users, `o'brien@127.0.0.1`, `at@sign@%`)
		} else {
			users = append(users, `MixedCase`, `user@host`)
		}
		passwords := []string{
			"Aa0" + password.SymbolSet + "tail", // every symbol of the policy
			`Aa0 '"\\ \' \" \ %_;--/*@:$&#`,     // what SQL, URLs and shells care about
			`ends with a backslash\`,            // a literal that ends in \ must not escape the quote
			`'`, `\`, `''`, `\'`, `\\'`, `x'`,   // short ones
		}
		d := openT(t, f)
		for _, u := range users {
			f.createUser(t, u, randomHex(16))
			for _, p := range passwords {
				sec.add(p)
				pw := core.NewSecret(p)
				require.NoError(t, d.Stage(ctx, u, pw), "user %q password %q", u, p)
				require.NoError(t, f.rawLogin(ctx, u, p), "user %q password %q", u, p)
			}
			require.NoError(t, d.Check(ctx, u))
			require.NoError(t, d.Retire(ctx, u))
			require.True(t, f.isAuthErr(f.rawLogin(ctx, u, passwords[len(passwords)-1])), "user %q retired", u)
		}
	})
}

// TestNoBackslashEscapes runs the quoting under the other reading of backslashes: MySQL's
// NO_BACKSLASH_ESCAPES, PostgreSQL's standard_conforming_strings=off.
func TestNoBackslashEscapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		dsn := f.adminDSN
		switch f.engine {
		case Postgres:
			dsn += "&standard_conforming_strings=off"
		case MySQL:
			dsn += "&sql_mode=%27NO_BACKSLASH_ESCAPES%27"
		}
		d, err := Open(ctx, f.engine, dsn)
		require.NoError(t, err)
		defer d.Close()
		for _, u := range []string{`back\slash`, `quote'\`, `\'`} {
			f.createUser(t, u, randomHex(16))
			for _, p := range []string{`pass\word'`, `\`, `\'`, `'\`, `x\\'y`} {
				require.NoError(t, d.Stage(ctx, u, core.NewSecret(p)), "user %q password %q", u, p)
				require.NoError(t, f.rawLogin(ctx, u, p), "user %q password %q", u, p)
			}
		}
	})
}

func TestUnknownUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		var sec secrets
		d := openT(t, f)
		pw := sec.gen(t, password.Policy{})
		err := d.Stage(ctx, "analytics_c", pw)
		var se *StageError
		require.ErrorAs(t, err, &se)
		require.Equal(t, StepSetPassword, se.Step)
		require.Equal(t, "analytics_c", se.User)
		require.ErrorIs(t, err, ErrNoUser)
		require.Contains(t, err.Error(), "analytics_c")
		require.Contains(t, err.Error(), "does not exist")
		t.Log(err)
		sec.requireAbsent(t, "the error", err.Error())

		err = d.Retire(ctx, "analytics_c")
		require.ErrorIs(t, err, ErrNoUser)
		require.Contains(t, err.Error(), "analytics_c")
		t.Log(err)

		err = d.Login(ctx, "analytics_c", pw)
		require.ErrorIs(t, err, ErrAuth)
		sec.requireAbsent(t, "the error", err.Error())

		f.createUser(t, "analytics_d", randomHex(16))
		err = d.Check(ctx, "analytics_d", "analytics_c", "analytics_e")
		require.ErrorIs(t, err, ErrNoUser)
		require.Contains(t, err.Error(), "analytics_c")
		require.Contains(t, err.Error(), "analytics_e")
		require.NotContains(t, err.Error(), "analytics_d")
		t.Log(err)
	})
}

// TestLoginStepFails: the password is set but the user may not log in; the error says it was
// the login.
func TestLoginStepFails(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		var sec secrets
		f.createUser(t, "cannot_login", randomHex(16))
		switch f.engine {
		case Postgres:
			require.NoError(t, f.superExec(ctx, "ALTER ROLE cannot_login NOLOGIN"))
		case MySQL:
			require.NoError(t, f.superExec(ctx, "ALTER USER 'cannot_login'@'%' ACCOUNT LOCK"))
		}
		d := openT(t, f)
		pw := sec.gen(t, password.Policy{})
		err := d.Stage(ctx, "cannot_login", pw)
		var se *StageError
		require.ErrorAs(t, err, &se)
		require.Equal(t, StepLogin, se.Step)
		require.Contains(t, err.Error(), `stage user "cannot_login": log in with the new password: `)
		t.Log(err)
		sec.requireAbsent(t, "the error", err.Error())
		require.ErrorIs(t, err, ErrAuth)
		if f.engine == Postgres {
			require.ErrorContains(t, d.Check(ctx, "cannot_login"), "NOLOGIN")
		}
	})
}

func TestWrongAdminPassword(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		wrong := "Wr0ng-admin-" + randomHex(8)
		dsn := f.badAdminDSN(wrong)
		_, err := Open(ctx, f.engine, dsn)
		require.ErrorIs(t, err, ErrAuth)
		t.Log(err)
		require.Contains(t, err.Error(), "log in as the admin")
		for _, bad := range []string{wrong, wrong[4:], f.adminPW, dsn} {
			require.NotContains(t, err.Error(), bad)
		}
		var sec secrets
		sec.add(wrong, f.adminPW)
		sec.requireAbsent(t, "the error", err.Error())
	})
}

func TestUnparsableAdminDSN(t *testing.T) {
	const pw = "Sup3r-secret-pw"
	for engine, dsns := range map[string][]string{
		Postgres: {
			"postgres://admin:" + pw + "@db.example:notaport/warehouse",
			"postgres://admin:" + pw + "@[db.example/warehouse",
			"host=db.example user=admin password='" + pw,
			"host=db.example user=admin password=" + pw + " port=x",
		},
		MySQL: {
			"admin:" + pw + "@tcp(db.example:3306/warehouse",
			"admin:" + pw + "@tcp(db.example:3306)",
			"admin:" + pw + "@tcp(db.example:3306)/warehouse?timeout=soon",
		},
	} {
		for _, dsn := range dsns {
			_, err := Open(context.Background(), engine, dsn)
			require.Error(t, err, dsn)
			require.Contains(t, err.Error(), "the admin DSN does not parse")
			require.NotContains(t, err.Error(), pw[:8])
			require.NotContains(t, err.Error(), pw[7:])
		}
	}
	_, err := Open(context.Background(), "oracle", "whatever")
	require.ErrorContains(t, err, `unknown engine "oracle"`)
}

func TestCanceledAndClosed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		f.createUser(t, "analytics_x", randomHex(16))
		d := openT(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := d.Stage(ctx, "analytics_x", core.NewSecret(randomHex(16)))
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, d.Close())
		require.NoError(t, d.Close(), "Close is idempotent")
		for _, err := range []error{
			d.Stage(context.Background(), "analytics_x", core.NewSecret(randomHex(16))),
			d.Login(context.Background(), "analytics_x", core.NewSecret(randomHex(16))),
			d.Retire(context.Background(), "analytics_x"),
			d.Check(context.Background()),
		} {
			require.ErrorIs(t, err, ErrClosed)
		}
	})
}

func TestBadArguments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		d := openT(t, f)
		for _, c := range []struct {
			user, password, want string
		}{
			{"", "x", "is empty"},
			{"nul\x00byte", "x", "control character"},
			{"new\nline", "x", "control character"},
			{"bad\xffutf8", "x", "not valid UTF-8"},
			{"ok", "", "the password is empty"},
			{"ok", "tab\there", "other than printable ASCII"},
			{"ok", "ünïcødé-password", "other than printable ASCII"},
			{"ok", strings.Repeat("x", maxPasswordLen+1), "longer than 1024"},
		} {
			err := d.Stage(ctx, c.user, core.NewSecret(c.password))
			require.ErrorContains(t, err, c.want, "%q", c.user)
			if c.password != "" && c.password != "x" {
				require.NotContains(t, err.Error(), c.password)
			}
		}
		if f.engine == Postgres {
			long := strings.Repeat("r", pgMaxName+1)
			require.ErrorContains(t, d.Stage(ctx, long, core.NewSecret("x")), "longer than 63 bytes")
		}
		if f.engine == MySQL {
			require.ErrorContains(t, d.Stage(ctx, "name@", core.NewSecret("x")), "the host of user name@ is empty")
		}
	})
}

// TestMariaDBStrictPasswordValidation: with a password validation plugin MariaDB refuses the
// hash; the error says why and what to do. A Stage that is repeated (the password is already
// set) still succeeds, as it logs in.
func TestMariaDBStrictPasswordValidation(t *testing.T) {
	f := fixtures[1]
	require.Equal(t, MySQL, f.engine)
	ctx := ctxT(t)
	f.createUser(t, "validated", randomHex(16))
	d := openT(t, f)
	var sec secrets
	pw := sec.gen(t, password.Policy{Symbols: true})
	require.NoError(t, d.Stage(ctx, "validated", pw))

	require.NoError(t, f.superExec(ctx, "INSTALL SONAME 'simple_password_check'"))
	t.Cleanup(func() {
		require.NoError(t, f.superExec(context.Background(), "UNINSTALL SONAME 'simple_password_check'"))
	})
	require.NoError(t, d.Stage(ctx, "validated", pw), "repeated: already set, so it logs in")
	err := d.Stage(ctx, "validated", sec.gen(t, password.Policy{Symbols: true}))
	require.ErrorContains(t, err, "strict_password_validation=OFF")
	t.Log(err)
	sec.requireAbsent(t, "the error", err.Error())

	require.NoError(t, f.superExec(ctx, "SET GLOBAL strict_password_validation = OFF"))
	t.Cleanup(func() {
		require.NoError(t, f.superExec(context.Background(), "SET GLOBAL strict_password_validation = ON"))
	})
	pw2 := sec.gen(t, password.Policy{Symbols: true})
	require.NoError(t, d.Stage(ctx, "validated", pw2))
	require.NoError(t, f.rawLogin(ctx, "validated", pw2.Reveal()))
}

// TestConcurrent: one DB, many goroutines (go test -race).
func TestConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		ctx := ctxT(t)
		d := openT(t, f)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 4 {
			u := fmt.Sprintf("concurrent_%d", i)
			f.createUser(t, u, randomHex(16))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 2 {
					pw, err := password.Generate(password.Policy{})
					if err == nil {
						err = d.Stage(ctx, u, pw)
					}
					if err != nil {
						errs <- err
					}
				}
				if err := d.Retire(ctx, u); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}
