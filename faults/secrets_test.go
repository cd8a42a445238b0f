package faults

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/sqlstore"
)

// secret is one unique secret sent through one path.
type secret struct {
	path  string
	value string
	// random is the part no output can hold by chance: a window of it anywhere means (part of)
	// the secret escaped, whatever the encoding around it.
	random string
}

// secretTail holds the characters JSON escapes (", \, <, >, &) and a non-ASCII one, so that a
// vendor echoing the secret inside a JSON string shows a form that differs from the clear value.
const secretTail = `-"q\<&>é`

func newSecret(path string) secret {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	r := hex.EncodeToString(b)
	return secret{path: path, value: "hyg-" + path + "-" + r + secretTail, random: r}
}

// forms are the encodings of the secret an output could hold it in.
func (s secret) forms() []string {
	out := []string{s.value, strconv.Quote(s.value)[1 : len(strconv.Quote(s.value))-1]}
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(s.value)
		j := strings.TrimSpace(b.String())
		out = append(out, j[1:len(j)-1])
	}
	return out
}

// jsonInner is the secret as it appears inside a JSON string.
func (s secret) jsonInner() string {
	b, _ := json.Marshal(s.value)
	return string(b[1 : len(b)-1])
}

// fragmentLen is the shortest run of a secret's random part that counts as a leak.
const fragmentLen = 8

// assertNoSecret fails when out holds any secret in any form, or any fragmentLen-long run of a
// secret's random part (a cut-off secret is still a leak).
func assertNoSecret(t *testing.T, what, out string, secrets []secret) {
	t.Helper()
	require.NotEmpty(t, out, "%s: nothing to search", what)
	for _, s := range secrets {
		for _, f := range s.forms() {
			if i := strings.Index(out, f); i >= 0 {
				t.Errorf("%s holds the secret of path %q: ...%s...", what, s.path, excerpt(out, i, len(f)))
			}
		}
		for i := 0; i+fragmentLen <= len(s.random); i++ {
			if j := strings.Index(out, s.random[i:i+fragmentLen]); j >= 0 {
				t.Errorf("%s holds part of the secret of path %q: ...%s...", what, s.path, excerpt(out, j, fragmentLen))
				break
			}
		}
	}
}

func excerpt(s string, i, n int) string {
	from, to := max(0, i-80), min(len(s), i+n+80)
	return s[from:to]
}

// echoJSON is a vendor error body that quotes the secret back (JSON-escaped, so parsed it is the
// clear value) in every place each vendor's parser reads: Felt's errors[].detail, Databrain's
// error.message, RiverGen's error.message and detail.
func echoJSON(code string, s secret, pad int) string {
	msg := strings.Repeat("a", pad) + "password " + s.jsonInner() + " is not valid"
	return `{"success":false,"errors":[{"title":"Rejected","detail":"` + msg + `","source":{"pointer":"/connection/password"}}],` +
		`"error":{"code":"` + code + `","message":"` + msg + `"},"message":"` + msg + `","detail":"` + msg + `"}`
}

// cutAt is the padding before "password <secret>" that puts the cut of a message at limit bytes
// in the middle of the secret's random part (fragmentLen+4 of its characters before the cut).
func cutAt(limit int, path string) int {
	return limit - len("password ") - len("hyg-"+path+"-") - (fragmentLen + 4)
}

// echoText is a non-JSON error body that quotes the secret back in clear and JSON-escaped.
func echoText(s secret, pad int) string {
	return strings.Repeat("a", pad) + "password " + s.value + " rejected (as JSON: \"" + s.jsonInner() + "\")\n"
}

// panicky returns an adapter with a bug: it panics with the secret in the panic value, in Build
// (in "build": the API's panic recovery catches it) or in Send (in "send": the engine's does).
func panicky(in string) *standin.Adapter {
	a := standin.New(core.TypePassword)
	switch in {
	case "build":
		a.OnBuild = func(c core.Credential) error {
			panic("adapter bug while building a request for password " + c.Password.Reveal())
		}
	case "send":
		a.OnSend = func(req core.Request) error {
			body, err := req.WireBody()
			if err != nil {
				return err
			}
			panic(fmt.Sprintf("adapter bug: cannot handle %s", body))
		}
	}
	return a
}

// hygienePath is one way a secret travels: faults set up, the rotation, what its targets must end
// with (so that the path is known to have been taken).
type hygienePath struct {
	name  string
	setup func(s *stack, sec secret) // nil: no fault
	code  string                     // every target's error code; "": succeeded
}

// TestNoSecretEscapes sends a unique secret through every path and searches every output of
// credsync for each: the log (debug level), every API answer and header, the SQLite file and
// every table (raw and through the store API), /metrics, and error messages.
func TestNoSecretEscapes(t *testing.T) {
	// A 2 s vendor timeout: a target claim must be renewed within timeout/2 for a call to start
	// under it (core/claim.go), and on a loaded machine (CI runs packages in parallel) a 1 s
	// timeout's 0.5 s was sometimes missed, ending a 429 path "canceled" instead of rate_limited.
	s := newStack(t, stackOptions{timeout: 2 * time.Second, maxAttempts: 2})
	var secrets []secret
	// The config's own secrets must not escape either.
	for _, v := range []string{felt.Vendor, databrain.Vendor, rivergen.Vendor} {
		tok := s.fakes.Tokens[v]
		secrets = append(secrets, secret{path: "platform token " + v, value: tok, random: tok[strings.LastIndex(tok, "-")+1:]})
	}
	secrets = append(secrets, secret{path: "API token", value: apiToken, random: apiToken[len("faults-api-token-"):]})

	status := func(code int, body string) func(*stack, secret) {
		return func(s *stack, _ secret) {
			s.setFault(func() fakeutil.Fault { return fakeutil.Status(code, "", body, 0) })
		}
	}
	echo := func(code int, vendorCode string, pad int) func(*stack, secret) {
		return func(s *stack, sec secret) {
			status(code, echoJSON(vendorCode, sec, pad))(s, sec)
		}
	}
	paths := []hygienePath{
		{name: "success", code: ""},
		{name: "401-echo", setup: echo(http.StatusUnauthorized, "UNAUTHORIZED", 0), code: core.CodeUnauthorized},
		{name: "404-echo", setup: echo(http.StatusNotFound, "NOT_FOUND", 0), code: core.CodeNotFound},
		{name: "422-echo-json", setup: echo(http.StatusUnprocessableEntity, "VALIDATION_ERROR", 0), code: core.CodeRejected},
		{name: "422-echo-text", setup: func(s *stack, sec secret) { status(http.StatusUnprocessableEntity, echoText(sec, 0))(s, sec) }, code: core.CodeRejected},
		// The secret straddles where the adapters cut a vendor message short (200-byte snippets,
		// 300-byte details): a cut secret escapes Scrub unless the body is scrubbed before the cut.
		{name: "422-cut-json", setup: echo(http.StatusUnprocessableEntity, "VALIDATION_ERROR", cutAt(300, "422-cut-json")), code: core.CodeRejected},
		{name: "422-cut-text", setup: func(s *stack, sec secret) {
			status(http.StatusUnprocessableEntity, echoText(sec, cutAt(200, "422-cut-text")))(s, sec)
		}, code: core.CodeRejected},
		{name: "429-echo", setup: echo(http.StatusTooManyRequests, "RATE_LIMITED", 0), code: core.CodeRateLimited},
		{name: "network", setup: func(s *stack, _ secret) { s.setFault(fakeutil.Reset) }, code: core.CodeNetwork},
		{name: "timeout", setup: func(s *stack, _ secret) { s.setFault(fakeutil.Hang) }, code: core.CodeTimeout},
		{name: "verification", setup: func(s *stack, sec secret) {
			s.fakes.Felt.SetSyncOutcome("src_pg", "failed")
			s.fakes.Databrain.SetFault(fakeutil.Status(http.StatusBadRequest, "",
				`{"error":{"code":"CREDENTIAL_TEST_FAILED","message":"could not connect with password `+sec.jsonInner()+`"}}`, 0))
			s.fakes.RiverGen.SetConnectionResult(1, rivergenfake.ConnectionResult{ErrorCode: "AUTHENTICATION_FAILED",
				ErrorMessage: "password authentication failed for password " + sec.value})
		}, code: core.CodeVerificationFailed},
		// Last: the retry below resends it, and only the newest rotation of a source may be resent.
		{name: "500-echo", setup: echo(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", 0), code: core.CodeVendorError},
	}

	ids := map[string]string{}
	var errText strings.Builder // every error message credsync produced, target errors and Go errors
	for _, p := range paths {
		sec := newSecret(p.name)
		secrets = append(secrets, sec)
		s.fakes.Felt.SetSyncOutcome("src_pg", "completed")
		s.fakes.RiverGen.SetConnectionOK(1, true, "", "")
		s.setFault(func() fakeutil.Fault { return nil })
		if p.setup != nil {
			p.setup(s, sec)
		}
		rot := s.rotate(t, sec.value)
		ids[p.name] = rot.ID
		for name := range targets {
			tr := target(t, rot, name)
			if tr.Error != nil {
				fmt.Fprintf(&errText, "%s %s: %s\n", p.name, name, tr.Error.Error())
			}
			errText.WriteString(tr.Warning)
			if p.code == "" {
				require.Equal(t, core.TargetSucceeded, tr.Status, "%s %s: %+v", p.name, name, tr.Error)
				continue
			}
			require.NotNil(t, tr.Error, "%s %s", p.name, name)
			require.Equal(t, p.code, tr.Error.Code, "%s %s: %s", p.name, name, tr.Error.Message)
			if strings.Contains(p.name, "echo") {
				require.Contains(t, tr.Error.Message, core.Redacted, "%s %s: the echoed secret was scrubbed, not dropped", p.name, name)
			}
		}
	}
	s.setFault(func() fakeutil.Fault { return nil })
	s.fakes.Felt.SetSyncOutcome("src_pg", "completed")
	s.fakes.RiverGen.SetConnectionOK(1, true, "", "")

	// A service account: the vendor quotes back the private key inside the JSON document, not
	// the whole document.
	saKey := newSecret("sa-private-key")
	secrets = append(secrets, saKey)
	s.setFault(func() fakeutil.Fault {
		return fakeutil.Status(http.StatusUnprocessableEntity, "", echoJSON("VALIDATION_ERROR", saKey, 0), 0)
	})
	rot := s.rotateCredential(t, "sa", map[string]any{"type": "gcp_service_account", "service_account_json": map[string]any{
		"type": "service_account", "project_id": "acme-analytics", "private_key_id": "0123abcd",
		"private_key": saKey.value, "client_email": "bi@acme-analytics.iam.gserviceaccount.com"}})
	for _, tr := range rot.Targets {
		require.NotNil(t, tr.Error, tr.Name)
		require.Equal(t, core.CodeRejected, tr.Error.Code, "%s: %s", tr.Name, tr.Error.Message)
		fmt.Fprintf(&errText, "sa %s: %s\n", tr.Name, tr.Error.Error())
	}
	s.setFault(func() fakeutil.Fault { return nil })

	// Retry: the failed 500-echo rotation is sent again from its sealed credential.
	code, _, b := s.call(t, http.MethodPost, "/v1/rotations/"+ids["500-echo"]+"/retry", "", nil)
	require.Equal(t, http.StatusAccepted, code, "%s", b)
	waitCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	retried, err := s.gw.Engine.Wait(waitCtx, ids["500-echo"])
	cancel()
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, retried.Status)

	// Dry run: the plan shows the request with the secret redacted.
	dry := newSecret("dry-run")
	secrets = append(secrets, dry)
	body, _ := json.Marshal(map[string]any{"source": source, "dry_run": true, "credential": map[string]any{"type": "password", "password": dry.value, "username": "svc"}})
	code, _, b = s.call(t, http.MethodPost, "/v1/rotations", string(body), nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, string(b), core.Redacted)

	// Idempotency-Key: the first answer and its replay.
	idem := newSecret("idempotent")
	secrets = append(secrets, idem)
	body, _ = json.Marshal(map[string]any{"source": source, "credential": map[string]any{"type": "password", "password": idem.value}})
	for i, want := range []int{http.StatusOK, http.StatusOK} {
		code, hdr, b := s.call(t, http.MethodPost, "/v1/rotations?wait=30s", string(body), map[string]string{"Idempotency-Key": "hyg-idem"})
		require.Equal(t, want, code, "%s", b)
		if i == 1 {
			require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
		}
	}

	// Bad input carrying a secret: answered 4xx without echoing it.
	bad := newSecret("bad-input")
	secrets = append(secrets, bad)
	for _, body := range []string{
		`{"source":"db","credential":{"type":"password","password":"x","pasword":"` + bad.jsonInner() + `"}}`,
		`{"source":"db","credential":{"type":"token","password":"` + bad.jsonInner() + `"}}`,
		`{"source":"db","credential":{"type":"password","password":"` + bad.jsonInner() + `"},"dry":1}`,
		`{"source":"nope","credential":{"type":"password","password":"` + bad.jsonInner() + `"}}`,
		`{"source":"db","credential":{"type":"password","password":"` + bad.jsonInner() + `"`,
		`{"source":"db","credential":{"type":"password","password":["` + bad.jsonInner() + `"]}}`,
	} {
		code, _, b := s.call(t, http.MethodPost, "/v1/rotations", body, nil)
		require.True(t, code >= 400 && code < 500, "%d %s", code, b)
	}

	// A recovered panic, beside the gateway: an engine and API over a panicking adapter, logging
	// into the same log, on its own SQLite file.
	panicDB := filepath.Join(s.dir, "panic.db")
	pstore, err := sqlstore.OpenSQLite(context.Background(), panicDB)
	require.NoError(t, err)
	kr, err := keyring.Load(keyring.Source{Key: demo.NewKey()})
	require.NoError(t, err)
	eng, err := core.NewEngine(core.EngineConfig{
		Platforms: []core.Platform{{Name: "buggy", Vendor: "buggy", MaxAttempts: 1}},
		Sources: []*core.Source{
			{Name: "panic-send", Targets: []*core.Target{{Name: "t", Platform: "buggy", Vendor: "buggy", Adapter: panicky("send")}}},
			{Name: "panic-build", Targets: []*core.Target{{Name: "t", Platform: "buggy", Vendor: "buggy", Adapter: panicky("build")}}},
		},
		Store: pstore, Logger: s.logger.Named("panic-engine"), Sealer: kr, DurableStore: true,
	})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	psrv := httptest.NewServer(api.New(eng, []api.Token{{Name: "faults", Token: core.NewSecret(apiToken)}}, s.logger.Named("panic-api")).Handler())
	pc := &client{base: psrv.URL, answers: s.answers}
	sendPanic, buildPanic := newSecret("panic-send"), newSecret("panic-build")
	secrets = append(secrets, sendPanic, buildPanic)
	body, _ = json.Marshal(map[string]any{"source": "panic-send", "credential": map[string]any{"type": "password", "password": sendPanic.value}})
	code, _, b = pc.call(t, http.MethodPost, "/v1/rotations?wait=30s", string(body), nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var prot core.Rotation
	require.NoError(t, json.Unmarshal(b, &prot))
	require.Equal(t, core.CodeInternal, prot.Targets[0].Error.Code, "the engine recovered the adapter's panic")
	body, _ = json.Marshal(map[string]any{"source": "panic-build", "credential": map[string]any{"type": "password", "password": buildPanic.value}})
	code, _, b = pc.call(t, http.MethodPost, "/v1/rotations", string(body), nil)
	require.Equal(t, http.StatusInternalServerError, code, "the API recovered the adapter's panic: %s", b)
	require.Contains(t, s.log.String(), "panic", "both panics are logged")
	for _, path := range []string{"/v1/rotations", "/v1/rotations/" + prot.ID, "/v1/audit", "/metrics"} {
		pc.call(t, http.MethodGet, path, "", nil)
	}
	psrv.Close()
	require.NoError(t, eng.Shutdown(context.Background()))

	// Read everything the gateway shows.
	for _, path := range []string{"/v1/rotations", "/v1/rotations?status=failed", "/v1/sources", "/v1/audit", "/healthz", "/readyz", "/v1/openapi.json", "/"} {
		s.call(t, http.MethodGet, path, "", nil)
	}
	for _, id := range ids {
		code, _, b := s.call(t, http.MethodGet, "/v1/rotations/"+id, "", nil)
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	code, _, b = s.call(t, http.MethodGet, "/metrics", "", nil)
	if code == http.StatusOK {
		require.Contains(t, string(b), "# TYPE", "/metrics is Prometheus text")
	} else {
		t.Logf("GET /metrics answered %d: no metrics to search", code)
	}
	filesLive := readFiles(t, s.dir) // the WAL before the checkpoint at close

	// Errors the engine returns to its callers, for requests carrying a secret.
	direct := newSecret("engine-errors")
	secrets = append(secrets, direct)
	ctx := context.Background()
	_, err = s.gw.Engine.Retry(ctx, ids["success"], "faults")
	require.Error(t, err)
	errText.WriteString(err.Error() + "\n")
	tok := core.Credential{Type: core.TypeToken, Token: core.NewSecret(direct.value)}
	_, _, err = s.gw.Engine.Submit(ctx, core.SubmitRequest{Source: source, Credential: tok, Actor: "faults"})
	require.Error(t, err, "no target takes a token")
	errText.WriteString(err.Error() + "\n")
	_, err = s.gw.Engine.Plan(core.SubmitRequest{Source: source, Credential: tok, Targets: []string{feltTarget}})
	require.Error(t, err)
	errText.WriteString(err.Error() + "\n")
	_, err = core.DecodeCredential([]byte(`{"type":"password","password":"x","passwd":"` + direct.jsonInner() + `"}`))
	require.Error(t, err)
	errText.WriteString(err.Error() + "\n")

	// Stop the gateway (it closes its store), then read the store back.
	require.NoError(t, s.stop())
	require.NoError(t, pstore.Close())
	store := dumpStore(t, s.dbPath) + dumpStore(t, panicDB)
	tables := dumpTables(t, s.dbPath) + dumpTables(t, panicDB)
	require.Contains(t, tables, "production-postgres", "the table dump covers the rotations")
	require.Contains(t, tables, ids["401-echo"])

	logs := s.log.String()
	require.True(t, s.logger.Core().Enabled(zapcore.DebugLevel), "the log is searched at debug level")
	require.Contains(t, logs, "target failed")
	for what, out := range map[string]string{
		"the gateway log":                  logs,
		"the API answers":                  s.allAnswers(),
		"the store (through its API)":      store,
		"the store's tables":               tables,
		"the store's files while running":  filesLive,
		"the store's files after shutdown": readFiles(t, s.dir),
		"the error messages":               errText.String(),
	} {
		assertNoSecret(t, what, out, secrets)
	}
}

func (c *client) allAnswers() string { return c.answers.String() }

// readFiles returns the bytes of every file in dir (the SQLite database, its WAL and shared
// memory files).
func readFiles(t *testing.T, dir string) string {
	t.Helper()
	var out strings.Builder
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out.Write(b)
	}
	return out.String()
}

// dumpStore reads every rotation, sealed credential, idempotency key and audit event back
// through the store API.
func dumpStore(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	var out strings.Builder
	rots, err := st.ListRotations(ctx, core.ListFilter{Limit: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, rots)
	for _, r := range rots {
		full, err := st.GetRotation(ctx, r.ID)
		require.NoError(t, err)
		b, err := json.Marshal(full)
		require.NoError(t, err)
		out.Write(b)
		sealed, err := st.SealedCredential(ctx, r.ID)
		if err == nil {
			out.Write(sealed)
		}
		if hit, err := st.FindIdempotencyKey(ctx, r.Actor, "hyg-idem"); err == nil && hit != nil {
			fmt.Fprintf(&out, "%+v", *hit)
		}
	}
	evs, err := st.ListAudit(ctx, core.AuditFilter{Limit: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	out.Write(b)
	return out.String()
}

// dumpTables returns every row of every table of the SQLite file, each value as text.
func dumpTables(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	_ = rows.Close()
	require.NotEmpty(t, tables)
	var out strings.Builder
	for _, tbl := range tables {
		r, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT * FROM %q`, tbl))
		require.NoError(t, err)
		cols, err := r.Columns()
		require.NoError(t, err)
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, r.Scan(ptrs...))
			fmt.Fprintf(&out, "%s:", tbl)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, " %v", v)
			}
			out.WriteString("\n")
		}
		require.NoError(t, r.Err())
		_ = r.Close()
	}
	return out.String()
}
