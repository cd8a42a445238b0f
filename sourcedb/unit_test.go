package sourcedb

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

// TestSCRAMRFC7677 checks the secret against the exchange of RFC 7677 section 3 (user "user",
// password "pencil"): the server holding only the secret verifies the client's proof and
// produces the server signature the RFC shows.
func TestSCRAMRFC7677(t *testing.T) {
	salt, err := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	require.NoError(t, err)
	secret, err := scramSHA256SecretWith("pencil", salt, 4096)
	require.NoError(t, err)
	var iter int
	var saltB64, storedB64, serverB64 string
	head, keys, ok := strings.Cut(secret, "$")
	require.True(t, ok)
	require.Equal(t, "SCRAM-SHA-256", head)
	parts := strings.FieldsFunc(keys, func(r rune) bool { return r == ':' || r == '$' })
	require.Len(t, parts, 4, secret)
	iter, err = strconv.Atoi(parts[0])
	require.NoError(t, err)
	saltB64, storedB64, serverB64 = parts[1], parts[2], parts[3]
	require.Equal(t, 4096, iter)
	require.Equal(t, "W22ZaJ0SNY7soEsUEjb6gQ==", saltB64)

	const (
		clientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
		serverFirst     = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinalNoPf = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
		clientProof     = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverSignature = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	authMessage := clientFirstBare + "," + serverFirst + "," + clientFinalNoPf
	storedKey, _ := base64.StdEncoding.DecodeString(storedB64)
	serverKey, _ := base64.StdEncoding.DecodeString(serverB64)
	proof, _ := base64.StdEncoding.DecodeString(clientProof)
	// the server's check: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey
	sig := hmacSHA256(storedKey, authMessage)
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := sha256.Sum256(clientKey)
	require.True(t, hmac.Equal(h[:], storedKey), "the RFC's client proof verifies against the secret")
	require.Equal(t, serverSignature, base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage)))

	// fresh salt each time
	a, err := scramSHA256Secret("pencil")
	require.NoError(t, err)
	b, err := scramSHA256Secret("pencil")
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "SCRAM-SHA-256$4096:"))
}

func TestNativeHash(t *testing.T) {
	// MariaDB: SELECT PASSWORD('abc')
	require.Equal(t, "*0D3CED9BEC10A777AEC23CCC353A8C08A633045E", nativeHash("abc"))
}

func TestPgQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                  `E''`,
		"plain":             `E'plain'`,
		"it's":              `E'it''s'`,
		`back\slash`:        `E'back\\slash'`,
		`\'`:                `E'\\'''`,
		`ends\`:             `E'ends\\'`,
		"SCRAM-SHA-256$4:a": `E'SCRAM-SHA-256$4:a'`,
	} {
		got, err := pgQuote(in)
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
	_, err := pgQuote("nul\x00")
	require.Error(t, err)
}

func TestMySQLQuote(t *testing.T) {
	for _, c := range []struct{ in, std, nbe string }{
		{"plain", `'plain'`, `'plain'`},
		{"it's", `'it''s'`, `'it''s'`},
		{`back\slash`, `'back\\slash'`, `'back\slash'`},
		{`\'`, `'\\'''`, `'\'''`},
		{`ends\`, `'ends\\'`, `'ends\'`},
		{`"double"`, `'"double"'`, `'"double"'`},
	} {
		require.Equal(t, c.std, mysqlQuote(c.in, false), c.in)
		require.Equal(t, c.nbe, mysqlQuote(c.in, true), c.in)
	}
}

// nasty strings for the quoting round trips
var nasty = []string{"", "plain", "it's", `back\slash`, `\`, `'`, `\'`, `'\`, `\\''\\`, `ends\`, `"`, "`", `%_`, `\%\_`,
	"ünïcødé", "'; DROP TABLE x; --", `\0\n\r\Z\b\t`, `$$dollar$$`, `E'x'`, `x' || 'y`}

// TestQuoteRoundTrip has the real servers read back every quoted string, in both readings of
// the backslash.
func TestQuoteRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	t.Run(Postgres, func(t *testing.T) {
		for _, scs := range []string{"on", "off"} {
			cfg, err := pgx.ParseConfig(pg.DSN("postgres") + "&standard_conforming_strings=" + scs)
			require.NoError(t, err)
			conn, err := pgx.ConnectConfig(ctx, cfg)
			require.NoError(t, err)
			defer conn.Close(ctx)
			require.Equal(t, scs, conn.PgConn().ParameterStatus("standard_conforming_strings"))
			for _, s := range nasty {
				q, err := pgQuote(s)
				require.NoError(t, err)
				// the simple protocol, as Exec without arguments uses (and pgx's own quoting refuses
				// standard_conforming_strings=off)
				res, err := conn.PgConn().Exec(ctx, "SELECT "+q).ReadAll()
				require.NoError(t, err, q)
				require.Equal(t, s, string(res[0].Rows[0][0]), "standard_conforming_strings=%s: %s", scs, q)
				// and as an identifier
				res, err = conn.PgConn().Exec(ctx, "SELECT 1 AS "+pgx.Identifier{s}.Sanitize()).ReadAll()
				if s == "" {
					require.Error(t, err, "an empty identifier is refused")
					continue
				}
				require.NoError(t, err)
				require.Equal(t, s, res[0].FieldDescriptions[0].Name)
			}
		}
	})
	t.Run(MySQL, func(t *testing.T) {
		for _, nbe := range []bool{false, true} {
			dsn := mdb.AdminDSN()
			if nbe {
				dsn += "&sql_mode=%27NO_BACKSLASH_ESCAPES%27"
			}
			db, err := myOpen(dsn)
			require.NoError(t, err)
			defer db.Close()
			conn, err := db.Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
			s, err := readSession(ctx, conn)
			require.NoError(t, err)
			require.Equal(t, nbe, s.noBackslashEscapes)
			require.True(t, s.utf8)
			for _, v := range nasty {
				var got string
				q := mysqlQuote(v, nbe)
				require.NoError(t, conn.QueryRowContext(ctx, "SELECT "+q).Scan(&got), q)
				require.Equal(t, v, string(got), "NO_BACKSLASH_ESCAPES=%v: %s", nbe, q)
			}
		}
	})
}

// TestLoginConfig: logins keep everything of the admin DSN but the user and password.
func TestLoginConfig(t *testing.T) {
	t.Run(Postgres, func(t *testing.T) {
		d, err := newPostgres("postgres://admin:admin-pw@db1.example:6543,db2.example:6544/warehouse" +
			"?sslmode=require&application_name=credsync&connect_timeout=7&search_path=x")
		require.NoError(t, err)
		e := d.e.(*pgEngine)
		cfg := e.loginConfig(`Odd"User`, "new pw'")
		require.Equal(t, `Odd"User`, cfg.User)
		require.Equal(t, "new pw'", cfg.Password)
		require.Equal(t, "db1.example", cfg.Host)
		require.EqualValues(t, 6543, cfg.Port)
		require.Equal(t, "warehouse", cfg.Database)
		require.NotNil(t, cfg.TLSConfig, "sslmode=require kept")
		require.Equal(t, "credsync", cfg.RuntimeParams["application_name"])
		require.Equal(t, "x", cfg.RuntimeParams["search_path"])
		require.Equal(t, e.cfg.ConnectTimeout, cfg.ConnectTimeout)
		var hosts []string
		for _, fb := range cfg.Fallbacks {
			hosts = append(hosts, fmt.Sprintf("%s:%d", fb.Host, fb.Port))
		}
		require.Contains(t, hosts, "db2.example:6544")
		require.Equal(t, "admin", e.cfg.User, "the admin's config is not changed")
		require.Equal(t, "admin-pw", e.cfg.Password)
		require.Equal(t, "admin-pw", e.adminPassword())
	})
	t.Run(MySQL, func(t *testing.T) {
		d, err := newMySQL("admin:admin-pw@tcp(db.example:3307)/warehouse?tls=skip-verify&timeout=7s&readTimeout=9s&charset=utf8mb4&sql_mode=%27ANSI%27")
		require.NoError(t, err)
		defer d.Close()
		e := d.e.(*myEngine)
		cfg := e.loginConfig("o'brien@10.0.0.%", "new pw'")
		require.Equal(t, "o'brien", cfg.User)
		require.Equal(t, "new pw'", cfg.Passwd)
		require.Equal(t, "tcp", cfg.Net)
		require.Equal(t, "db.example:3307", cfg.Addr)
		require.Equal(t, "warehouse", cfg.DBName)
		require.Equal(t, "skip-verify", cfg.TLSConfig)
		require.Equal(t, "7s", cfg.Timeout.String())
		require.Equal(t, "9s", cfg.ReadTimeout.String())
		require.Equal(t, "'ANSI'", cfg.Params["sql_mode"])
		require.IsType(t, &mysql.NopLogger{}, cfg.Logger, "the driver prints nothing")
		require.Equal(t, "admin", e.cfg.User, "the admin's config is not changed")
		require.Equal(t, "admin-pw", e.cfg.Passwd)
	})
}

func TestAccount(t *testing.T) {
	for in, want := range map[string][2]string{
		"analytics":            {"analytics", "%"},
		"analytics@10.0.0.%":   {"analytics", "10.0.0.%"},
		"at@sign@localhost":    {"at@sign", "localhost"},
		"o'brien@127.0.0.1":    {"o'brien", "127.0.0.1"},
		"trailing@":            {"trailing", ""},
		"@host":                {"", "host"},
		"Odd\"User@db.example": {"Odd\"User", "db.example"},
	} {
		n, h := account(in)
		require.Equal(t, want, [2]string{n, h}, in)
	}
}

// fakeEngine fails every operation with a chosen error.
type fakeEngine struct {
	adminPW string
	err     error
}

func (f *fakeEngine) name() string                                { return "fake" }
func (f *fakeEngine) adminPassword() string                       { return f.adminPW }
func (f *fakeEngine) open(context.Context) error                  { return f.err }
func (f *fakeEngine) validUser(string) error                      { return nil }
func (f *fakeEngine) login(context.Context, string, string) error { return f.err }
func (f *fakeEngine) check(context.Context, string) error         { return f.err }
func (f *fakeEngine) classify(err error) (string, []error)        { return err.Error(), nil }
func (f *fakeEngine) close() error                                { return nil }
func (f *fakeEngine) setPassword(_ context.Context, _, p string) (string, error) {
	return "verifier-of-" + p, f.err
}

// TestErrorsScrubbed: whatever a driver or server says, the admin password, the password of the
// operation and what was derived from it are not in the error, in any common encoding, and the
// driver's error cannot be unwrapped out of it.
func TestErrorsScrubbed(t *testing.T) {
	const adminPW = "Admin-Passw0rd-xyz"
	const pw = "Staged-Passw0rd-abc"
	leaky := func(s string) string {
		j, _ := json.Marshal(s)
		return fmt.Sprintf("raw %s json %s url %s b64 %s upper %s", s, j, url.QueryEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)), strings.ToUpper(s))
	}
	driverErr := fmt.Errorf("driver: %s / %s / %s: %w", leaky(adminPW), leaky(pw), leaky("verifier-of-"+pw), context.DeadlineExceeded)
	d := &db{e: &fakeEngine{adminPW: adminPW, err: driverErr}}
	for name, err := range map[string]error{
		"open":   d.open(context.Background()),
		"stage":  d.Stage(context.Background(), "u", core.NewSecret(pw)),
		"login":  d.Login(context.Background(), "u", core.NewSecret(pw)),
		"check":  d.Check(context.Background(), "u"),
		"retire": d.Retire(context.Background(), "u"),
	} {
		require.Error(t, err, name)
		msg := err.Error()
		require.Contains(t, msg, "[REDACTED]", name)
		for _, s := range []string{adminPW, pw, "Passw0rd", "passw0rd", "UGFzc3cwcmQ"} {
			require.NotContains(t, msg, s, "%s: %s", name, msg)
		}
		require.ErrorIs(t, err, context.DeadlineExceeded, "kinds are kept")
		for e := err; e != nil; {
			require.NotSame(t, driverErr, e, "the driver's error is not reachable")
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				e = u.Unwrap()
			case interface{ Unwrap() []error }:
				for _, k := range u.Unwrap() {
					require.NotEqual(t, driverErr, k)
				}
				e = nil
			default:
				e = nil
			}
		}
	}
	var se *StageError
	require.True(t, errors.As(d.Stage(context.Background(), "u", core.NewSecret(pw)), &se))
	require.Equal(t, StepSetPassword, se.Step, "login after a failed set also failed: the set's error")
}

// TestNoLogging: the package has no logger to leak through.
func TestNoLogging(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range ast.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			require.NotContains(t, []string{"log", "log/slog", "go.uber.org/zap", "os"}, p, "%s imports %s", f, p)
		}
	}
}
