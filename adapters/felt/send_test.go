package felt

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

func mustBuild(t *testing.T, tg *target, credJSON string) core.Request {
	t.Helper()
	req, err := tg.Build(cred(t, credJSON))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return req
}

func asCoreError(t *testing.T, err error) *core.Error {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *core.Error", err, err)
	}
	return ce
}

// wantError checks a failed call: its code, retry verdict and that the message holds each part.
func wantError(t *testing.T, retry bool, err error, code string, wantRetry bool, parts ...string) *core.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	ce := asCoreError(t, err)
	if ce.Code != code || retry != wantRetry {
		t.Errorf("got code=%s retry=%v (%s), want code=%s retry=%v", ce.Code, retry, ce.Message, code, wantRetry)
	}
	for _, p := range parts {
		if !strings.Contains(ce.Message, p) {
			t.Errorf("message %q does not contain %q", ce.Message, p)
		}
	}
	return ce
}

const pgTarget = "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 2s\n"
const kpTarget = "source_id: src_sf\ncredential_id: cred_kp\ncredential_type: key_pair\npoll_interval: 5ms\nverify_timeout: 2s\n"

func seeded(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.fake.AddSource("src_pg", "postgresql")
	e.fake.AddSource("src_sf", "snowflake")
	e.fake.AddCredential("src_sf", "cred_kp", "key_pair")
	e.fake.AddCredential("src_sf", "cred_pat", "snowflake_pat")
	return e
}

// send is Send for the tests of the write. It also checks what Send says of verification: a
// success asks for Verify exactly when the target verifies, with the receipt Verify needs; a
// failure reports nothing.
func send(t *testing.T, tg *target, req core.Request) (bool, error) {
	t.Helper()
	res, retry, err := tg.Send(context.Background(), req)
	switch {
	case err != nil && (res.Check || res.Verified || res.Receipt != nil):
		t.Errorf("a failed Send reported %+v", res)
	case err == nil && (res.Check != tg.verify || res.Verified):
		t.Errorf("Send = %+v with verify %v: want Check exactly when verifying, never Verified (Felt connects later)", res, tg.verify)
	case err == nil && tg.verify && res.Receipt == nil:
		t.Error("Send asks for Verify without a receipt")
	}
	return retry, err
}

// deliver builds credJSON and delivers it as the engine does.
func deliver(t *testing.T, tg *target, credJSON string) (adaptertest.Result, error) {
	t.Helper()
	return adaptertest.Deliver(context.Background(), tg, mustBuild(t, tg, credJSON))
}

// onPOST applies a fault to POST requests only: the update (and Sync Source), not the reads.
func onPOST(f fakeutil.Fault) fakeutil.Fault {
	return fakeutil.When(fakeutil.Method(http.MethodPost), f)
}

// calls lists the method and path of every request the fake received.
func calls(e *env) []string {
	var out []string
	for _, r := range e.fake.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func wantCalls(t *testing.T, e *env, want ...string) {
	t.Helper()
	if got := calls(e); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const (
	showPG   = "GET /api/v2/sources/src_pg"
	updatePG = "POST /api/v2/sources/src_pg/update"
	showSF   = "GET /api/v2/sources/src_sf"
	syncSF   = "POST /api/v2/sources/src_sf/sync"
	updateKP = "POST /api/v2/sources/src_sf/credentials/cred_kp/update"
)

// TestSendAndVerifyConnectionMode delivers a password as the engine does. The fake's sync job
// first leaves the old completed status in place (one answer), then syncs (one answer), then
// completes: only the third check may verify.
func TestSendAndVerifyConnectionMode(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	before, _ := e.fake.LastSyncedAt("src_pg")
	res, err := deliver(t, tg, credPasswordUser)
	if err != nil || res.Retry || !res.Send.Check || !res.Verify.Verified || res.Verify.Warning != "" {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	conn, _ := e.fake.Connection("src_pg")
	if conn["password"] != "s3cr3t-pw-2" || conn["user"] != "svc_felt_2" {
		t.Errorf("fake connection = %v", conn)
	}
	if res.Polls != 3 {
		t.Errorf("%d checks, want 3: the stale completed, syncing, then the fresh completed", res.Polls)
	}
	// Baseline read, update, then only polls: connection mode starts no extra sync.
	wantCalls(t, e, showPG, updatePG, showPG, showPG, showPG)
	if after, _ := e.fake.LastSyncedAt("src_pg"); after <= before || e.fake.Syncs("src_pg") != 1 {
		t.Errorf("last_synced_at %d -> %d, %d syncs: the verdict came from no new sync", before, after, e.fake.Syncs("src_pg"))
	}
}

// TestSendAndVerifyCredentialMode: Felt documents no sync after a credential update, so the
// first check asks for one; the verdict is that sync's.
func TestSendAndVerifyCredentialMode(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, kpTarget)
	res, err := deliver(t, tg, credKeyPair)
	if err != nil || !res.Verify.Verified || res.Verify.Warning != "" {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	c, _ := e.fake.Credential("src_sf", "cred_kp")
	if c.Fields["private_key_passphrase"] != "s3cr3t-passphrase-1" {
		t.Errorf("fake credential = %v", c.Fields)
	}
	if res.Polls != 4 {
		t.Errorf("%d checks, want 4: Sync Source, the stale completed, syncing, the fresh completed", res.Polls)
	}
	wantCalls(t, e, showSF, updateKP, syncSF, showSF, showSF, showSF)
	if e.fake.Syncs("src_sf") != 1 {
		t.Errorf("%d syncs, want the one Sync Source asked for", e.fake.Syncs("src_sf"))
	}
}

// TestSendReadsBaselineFirst: with verify on, the source is read before the update, and the
// receipt holds its last_synced_at and whether a sync was running.
func TestSendReadsBaselineFirst(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	want, _ := e.fake.LastSyncedAt("src_pg")
	res, retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil || retry || !res.Check {
		t.Fatalf("Send = %+v, %v, %v", res, retry, err)
	}
	wantCalls(t, e, showPG, updatePG)
	rc, ok := res.Receipt.(*receipt)
	if !ok || rc.baseline == nil || *rc.baseline != want || rc.running || rc.syncNeeded {
		t.Errorf("receipt = %+v, want baseline %d, nothing running, no sync to ask for", rc, want)
	}

	tg = e.target(t, kpTarget)
	res, _, err = tg.Send(context.Background(), mustBuild(t, tg, credKeyPair))
	if rc, _ := res.Receipt.(*receipt); err != nil || rc == nil || !rc.syncNeeded {
		t.Errorf("credential mode: receipt %+v, %v: the first check must ask for a sync", rc, err)
	}
}

// TestSendBaselineFailureSendsNothing: when the baseline read fails, the update is not sent,
// and the error says so (NotSent: the engine may resend at once).
func TestSendBaselineFailureSendsNothing(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusNotFound} {
		e := seeded(t)
		e.fake.SetFault(fakeutil.When(fakeutil.Method(http.MethodGet), feltfake.ErrorFault(status, "", 0)))
		tg := e.target(t, pgTarget)
		retry, err := send(t, tg, mustBuild(t, tg, credPassword))
		ce := wantError(t, retry, err, map[int]string{500: core.CodeVendorError, 429: core.CodeRateLimited, 404: core.CodeNotFound}[status],
			status != http.StatusNotFound, "reading the source before the update", "HTTP")
		if !ce.NotSent {
			t.Errorf("%d: NotSent unset though the update was never sent", status)
		}
		wantCalls(t, e, showPG)
		if conn, _ := e.fake.Connection("src_pg"); conn["password"] != nil {
			t.Errorf("%d: the update was applied", status)
		}
	}
}

func TestSendUnauthorized(t *testing.T) {
	e := newEnvToken(t, "wrong-token")
	e.fake.AddSource("src_pg", "postgresql")
	for _, src := range []string{pgTarget, pgTarget + "verify: false\n"} {
		e.fake.Reset()
		tg := e.target(t, src)
		retry, err := send(t, tg, mustBuild(t, tg, credPassword))
		ce := wantError(t, retry, err, core.CodeUnauthorized, false, "HTTP 401", "Unauthorized: header authorization: Invalid or missing API token")
		if ce.VendorStatus != 401 {
			t.Errorf("VendorStatus = %d", ce.VendorStatus)
		}
		if n := len(e.fake.Requests()); n != 1 {
			t.Errorf("%d requests after a 401, want 1", n)
		}
	}
	conn, _ := e.fake.Connection("src_pg")
	if _, ok := conn["password"]; ok {
		t.Error("the fake stored a password sent with a bad token")
	}
}

func TestSendForbidden(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(onPOST(feltfake.ErrorFault(http.StatusForbidden, "", 0)))
	tg := e.target(t, pgTarget)
	retry, err := send(t, tg, mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeForbidden, false, "HTTP 403", "Forbidden: header authorization: Access denied")
	wantCalls(t, e, showPG, updatePG)
}

func TestSendNotFound(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_missing\nconnection_type: postgresql\n")
	retry, err := send(t, tg, mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "Not Found: parameter source_id: Source not found")

	tg = e.target(t, "source_id: src_missing\nconnection_type: postgresql\nverify: false\n")
	retry, err = send(t, tg, mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "Not Found: parameter source_id: Source not found")

	tg = e.target(t, "source_id: src_sf\ncredential_id: cred_missing\ncredential_type: key_pair\n")
	retry, err = send(t, tg, mustBuild(t, tg, credKeyPair))
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "parameter credential_id: Source credential not found")
}

func TestSendCredentialTypeMismatch(t *testing.T) {
	e := seeded(t)
	// The config says key_pair, but Felt's cred_pat is a snowflake_pat credential.
	tg := e.target(t, "source_id: src_sf\ncredential_id: cred_pat\ncredential_type: key_pair\n")
	retry, err := send(t, tg, mustBuild(t, tg, credKeyPair))
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422", "Unprocessable Entity: credential.type: does not match the credential's type snowflake_pat")
	c, _ := e.fake.Credential("src_sf", "cred_pat")
	if c.Fields["token"] != "seeded-token" {
		t.Errorf("a refused update changed the credential: %v", c.Fields)
	}
}

func TestSendConnectionTypeMismatch(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: mssql\n")
	retry, err := send(t, tg, mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422", "connection.type: does not match the source's connection type postgresql")
}

func TestSendValidationError(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, kpTarget)
	req := core.Request{Method: http.MethodPost, Path: "/api/v2/sources/src_sf/credentials/cred_kp/update",
		Body: map[string]any{"credential": map[string]any{"type": "key_pair", "private_key": core.NewSecret("s3cr3t-k"), "bogus": 1, "private_key_name": true}}}
	retry, err := send(t, tg, req)
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422",
		"Unprocessable Entity: credential.bogus: Unexpected field: bogus",
		"Unprocessable Entity: credential.private_key_name: Invalid string. Got: boolean")
}

func TestSendRateLimited(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(onPOST(feltfake.ErrorFault(http.StatusTooManyRequests, "7", 1)))
	tg := e.target(t, pgTarget)
	req := mustBuild(t, tg, credPassword)
	retry, err := send(t, tg, req)
	ce := wantError(t, retry, err, core.CodeRateLimited, true, "HTTP 429", "Too Many Requests")
	if ce.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %v, want 7s", ce.RetryAfter)
	}
	// The fault answered once: the retry lands.
	if retry, err := send(t, tg, req); err != nil || retry {
		t.Fatalf("second Send = %v, %v", retry, err)
	}
	conn, _ := e.fake.Connection("src_pg")
	if conn["password"] != "s3cr3t-pw-1" {
		t.Errorf("fake connection = %v", conn)
	}
}

func TestSendServerError(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(onPOST(feltfake.ErrorFault(http.StatusInternalServerError, "", 0)))
	tg := e.target(t, pgTarget)
	retry, err := send(t, tg, mustBuild(t, tg, credPassword))
	ce := wantError(t, retry, err, core.CodeVendorError, true, "HTTP 500", "Internal Server Error: Something went wrong")
	if ce.NotSent {
		t.Error("NotSent set on a 500 answer to the update: it may have been applied")
	}
}

func TestSendUnreadableBodies(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
		want   string
	}{
		"html":  {http.StatusBadGateway, "<html><body>Bad gateway</body></html>", "<html><body>Bad gateway"},
		"empty": {http.StatusUnprocessableEntity, "", "HTTP 422: Unprocessable Entity"},
		"huge":  {http.StatusBadRequest, `{"errors":[` + strings.Repeat(`{"title":"T","detail":"`+strings.Repeat("x", 2000)+`","source":{"pointer":"/a"}},`, 300) + `{}]}`, "and 296 more"},
		"other": {http.StatusBadRequest, `{"message":"nope"}`, `{"message":"nope"}`},
		"junk":  {http.StatusBadRequest, strings.Repeat("\xff", 3<<20), "HTTP 400: ?"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := seeded(t)
			e.fake.SetFault(onPOST(func(w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
				return true
			}))
			tg := e.target(t, pgTarget)
			_, err := send(t, tg, mustBuild(t, tg, credPassword))
			ce := asCoreError(t, err)
			if !strings.Contains(ce.Message, c.want) || len(ce.Message) > 3000 {
				t.Errorf("message (%d bytes) %.300q does not contain %q", len(ce.Message), ce.Message, c.want)
			}
		})
	}
}

// noPieceOf fails when text holds 8 or more characters in a row of secret.
func noPieceOf(t *testing.T, what, text, secret string) {
	t.Helper()
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+8]) {
			t.Fatalf("%s holds a piece of the secret (%q): %s", what, secret[i:i+8], text)
		}
	}
}

// echoFault answers with status and a Felt error whose detail quotes secret after pad bytes
// (Felt's messages are cut at 300 bytes of detail), or, for 200, a body that is not a source with
// the secret after pad bytes (cut at 200).
func echoFault(status, pad int, secret string) fakeutil.Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		if status == http.StatusOK {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(strings.Repeat("d", pad) + "password " + secret + " rejected"))
			return true
		}
		fakeutil.WriteJSON(w, status, map[string]any{"errors": []any{map[string]any{"title": http.StatusText(status),
			"detail": strings.Repeat("d", pad) + "password " + secret + " rejected", "source": map[string]any{"pointer": "/connection/password"}}}})
		return true
	}
}

// TestSendScrubsEchoedSecrets: a Felt answer that quotes the submitted secret, to the update or
// to any call of its verification (Felt holds the secret from the update on), does not get it
// into an error or warning, not even a piece of it where the message is cut to length.
func TestSendScrubsEchoedSecrets(t *testing.T) {
	secret := "s3cr3t-pw-" + strings.Repeat("q", 40)
	credJSON := `{"type":"password","password":"` + secret + `"}`
	const short = "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 30ms\n"
	for _, pad := range []int{0, 180, 190, 280, 290, 299} {
		// The update.
		e := seeded(t)
		e.fake.SetFault(onPOST(echoFault(http.StatusUnprocessableEntity, pad, secret)))
		tg := e.target(t, pgTarget)
		_, err := send(t, tg, mustBuild(t, tg, credJSON))
		ce := asCoreError(t, err)
		noPieceOf(t, "the update's error", ce.Message, secret)
		if pad == 0 && !strings.Contains(ce.Message, core.Redacted) {
			t.Errorf("the echoed secret was dropped, not marked: %s", ce.Message)
		}

		// The baseline read.
		e = seeded(t)
		e.fake.SetFault(fakeutil.When(fakeutil.Method(http.MethodGet), echoFault(http.StatusNotFound, pad, secret)))
		tg = e.target(t, pgTarget)
		_, err = send(t, tg, mustBuild(t, tg, credJSON))
		noPieceOf(t, "the baseline read's error", asCoreError(t, err).Message, secret)

		// The polls: a final answer (error), a transient one and an unreadable one (warning).
		for _, status := range []int{http.StatusForbidden, http.StatusServiceUnavailable, http.StatusOK} {
			e = seeded(t)
			tg = e.target(t, short)
			res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credJSON))
			if err != nil {
				t.Fatal(err)
			}
			e.fake.SetFault(echoFault(status, pad, secret))
			v, _, _, err := adaptertest.Verify(context.Background(), tg, res)
			text := v.Warning
			if err != nil {
				text = asCoreError(t, err).Message
			}
			if text == "" {
				t.Fatalf("poll answered %d: no error nor warning (%+v)", status, v)
			}
			noPieceOf(t, "a poll's error or warning", text, secret)
		}

		// Sync Source, in credential mode.
		e = seeded(t)
		tg = e.target(t, "source_id: src_sf\ncredential_id: cred_pat\ncredential_type: snowflake_pat\npoll_interval: 5ms\n")
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, `{"type":"token","token":"`+secret+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.SetFault(onPOST(echoFault(http.StatusUnprocessableEntity, pad, secret)))
		_, _, _, err = adaptertest.Verify(context.Background(), tg, res)
		noPieceOf(t, "Sync Source's error", asCoreError(t, err).Message, secret)
	}
}

func TestSendNetworkError(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	e.server.Close()
	retry, err := send(t, tg, mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeNetwork, true)
}

func TestSendEscapesPath(t *testing.T) {
	e := newEnv(t)
	e.fake.AddSource("src/a b", "postgresql")
	e.fake.AddCredential("src/a b", "cred?1", "snowflake_pat")
	tg := e.target(t, "source_id: \"src/a b\"\ncredential_id: \"cred?1\"\ncredential_type: snowflake_pat\npoll_interval: 1ms\n")
	req := mustBuild(t, tg, credToken)
	if req.Path != "/api/v2/sources/src%2Fa%20b/credentials/cred%3F1/update" {
		t.Errorf("path = %s", req.Path)
	}
	if res, err := adaptertest.Deliver(context.Background(), tg, req); err != nil || !res.Verify.Verified {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	if c, _ := e.fake.Credential("src/a b", "cred?1"); c.Fields["token"] != "s3cr3t-token-1" {
		t.Errorf("fake credential = %v", c.Fields)
	}
	for _, c := range calls(e) {
		if !strings.Contains(c, "/api/v2/sources/src%2Fa%20b") {
			t.Errorf("request %s does not escape the source id", c)
		}
	}
}

func TestVerifyFailed(t *testing.T) {
	for _, src := range []string{pgTarget, kpTarget} {
		e := seeded(t)
		e.fake.SetSyncOutcome("src_pg", "failed")
		e.fake.SetSyncOutcome("src_sf", "failed")
		tg := e.target(t, src)
		c := credPassword
		if tg.credentialMode() {
			c = credKeyPair
		}
		res, err := deliver(t, tg, c)
		wantError(t, res.Retry, err, core.CodeVerificationFailed, false, "Felt could not connect", tg.sourceID, "sync_status: failed")
		if res.Verify.Verified {
			t.Error("Verified despite a failed sync")
		}
	}
}

func TestVerifyDisabled(t *testing.T) {
	e := seeded(t)
	for _, src := range []string{"source_id: src_pg\nconnection_type: postgresql\nverify: false\n",
		"source_id: src_sf\ncredential_id: cred_kp\ncredential_type: key_pair\nverify: false\n"} {
		e.fake.Reset()
		tg := e.target(t, src)
		c := credPassword
		if tg.credentialMode() {
			c = credKeyPair
		}
		res, err := deliver(t, tg, c)
		if err != nil || res.Retry || res.Send.Check || res.Verify.Verified || res.Verify.Warning != "" || res.Polls != 0 {
			t.Fatalf("Deliver = %+v, %v", res, err)
		}
		// Only the update: no baseline read, no sync, no poll.
		if reqs := e.fake.Requests(); len(reqs) != 1 || reqs[0].Method != http.MethodPost || strings.HasSuffix(reqs[0].Path, "/sync") {
			t.Errorf("verify: false sent %v", calls(e))
		}
	}
}

func TestVerifyTimesOutWithWarning(t *testing.T) {
	e := seeded(t)
	e.fake.SetSyncingPolls(1 << 20)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 60ms\n")
	start := time.Now()
	res, err := deliver(t, tg, credPassword)
	if err != nil || res.Retry || res.Verify.Verified {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	if !strings.Contains(res.Verify.Warning, "verification unknown") || !strings.Contains(res.Verify.Warning, "sync_status syncing") {
		t.Errorf("warning = %q", res.Verify.Warning)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("delivery took %v with verify_timeout 60ms", d)
	}
	if res.Polls < 3 {
		t.Errorf("only %d checks: verification did not keep polling", res.Polls)
	}
}

// TestVerifyStaleCompletedUntilTimeout: a source whose sync never starts keeps showing the
// completed status of the sync before the update. That is not a verification.
func TestVerifyStaleCompletedUntilTimeout(t *testing.T) {
	e := seeded(t)
	e.fake.SetStalePolls(1 << 20)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 60ms\n")
	res, err := deliver(t, tg, credPassword)
	if err != nil || res.Verify.Verified || !strings.Contains(res.Verify.Warning, "sync_status completed from before the update") {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
}

func TestVerifyRetriesFailingPolls(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		e := seeded(t)
		e.fake.SetStalePolls(0)
		e.fake.SetSyncingPolls(0)
		tg := e.target(t, pgTarget)
		res, retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil || retry {
			t.Fatal(err)
		}
		e.fake.SetFault(feltfake.ErrorFault(status, "", 2))
		v, polls, _, err := adaptertest.Verify(context.Background(), tg, res)
		if err != nil || !v.Verified {
			t.Fatalf("status %d: Verify = %+v, %v", status, v, err)
		}
		if polls != 3 {
			t.Errorf("status %d: %d checks, want 2 failed + 1 good", status, polls)
		}
		if n := len(e.fake.Requests()); n != 5 {
			t.Errorf("status %d: %d requests, want baseline + POST + 2 failed polls + 1 good poll", status, n)
		}
	}
}

// TestVerifyWaitsRetryAfter: a poll answered 429 with Retry-After is asked again no sooner.
func TestVerifyWaitsRetryAfter(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SetFault(feltfake.ErrorFault(http.StatusTooManyRequests, "1", 1))
	v, retry, err := tg.Verify(context.Background(), core.VerifyRequest{Receipt: res.Receipt})
	if err != nil || retry || v.Verified || v.Warning != "" || v.Again != time.Second {
		t.Fatalf("Verify = %+v, %v, %v; want Again 1s (Retry-After)", v, retry, err)
	}
}

func TestVerifyFailingPollsUntilTimeout(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 50ms\n")
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SetFault(feltfake.ErrorFault(http.StatusServiceUnavailable, "", 0))
	v, _, retry, err := adaptertest.Verify(context.Background(), tg, res)
	if err != nil || retry || v.Verified || !strings.Contains(v.Warning, "HTTP 503") {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
}

// TestVerifySyncRequestRetried: in credential mode a Sync Source answered 5xx is asked again
// at the next check, before any poll.
func TestVerifySyncRequestRetried(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, kpTarget)
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credKeyPair))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SetFault(onPOST(feltfake.ErrorFault(http.StatusServiceUnavailable, "", 1)))
	v, _, _, err := adaptertest.Verify(context.Background(), tg, res)
	if err != nil || !v.Verified {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	wantCalls(t, e, showSF, updateKP, syncSF, syncSF, showSF, showSF, showSF)
}

func TestVerifyFinalErrors(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_missing\nconnection_type: postgresql\npoll_interval: 5ms\n")
	_, retry, err := tg.Verify(context.Background(), core.VerifyRequest{Receipt: &receipt{}})
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "parameter source_id", "checking the source after the update")
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("a 404 poll was repeated: %d requests", n)
	}
	tg = e.target(t, "source_id: src_missing\ncredential_id: c\ncredential_type: key_pair\npoll_interval: 5ms\n")
	_, retry, err = tg.Verify(context.Background(), core.VerifyRequest{Receipt: &receipt{syncNeeded: true}})
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "starting a sync after the update")

	e = newEnvToken(t, "wrong-token")
	e.fake.AddSource("src_pg", "postgresql")
	tg = e.target(t, pgTarget)
	_, retry, err = tg.Verify(context.Background(), core.VerifyRequest{Receipt: &receipt{}})
	wantError(t, retry, err, core.CodeUnauthorized, false, "HTTP 401")

	_, _, err = tg.Verify(context.Background(), core.VerifyRequest{})
	wantError(t, false, err, core.CodeInternal, false, "without the receipt")
}

func TestVerifyCanceled(t *testing.T) {
	e := seeded(t)
	e.fake.SetSyncingPolls(1 << 20)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	res, err := adaptertest.Deliver(ctx, tg, mustBuild(t, tg, credPassword))
	var ce *core.Error
	if !errors.Is(err, context.Canceled) && !(errors.As(err, &ce) && ce.Code == core.CodeCanceled) {
		t.Fatalf("Deliver = %+v, %v; want canceled", res, err)
	}
	if res.Verify.Verified || res.Verify.Warning != "" {
		t.Errorf("a canceled verification gave a verdict: %+v", res.Verify)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %v to stop verification", d)
	}
	// A check made with a canceled context is not asked again: it answers its error.
	_, retry, err := tg.Verify(ctx, core.VerifyRequest{Receipt: &receipt{}})
	if err == nil {
		t.Fatalf("Verify with a canceled context = %v, %v", retry, err)
	}
}

func TestVerifyUnreadableShow(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 30ms\n")
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("not json"))
		return true
	})
	v, _, _, err := adaptertest.Verify(context.Background(), tg, res)
	if err != nil || v.Verified || !strings.Contains(v.Warning, "readable sync_status") {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}

// verifyStep makes one check and returns it.
func verifyStep(t *testing.T, tg *target, rc any, poll int, elapsed time.Duration) (core.Verification, error) {
	t.Helper()
	v, retry, err := tg.Verify(context.Background(), core.VerifyRequest{Receipt: rc, Poll: poll, Elapsed: elapsed})
	if retry {
		t.Errorf("check %d answered retry: Felt's checks are asked again through Again", poll)
	}
	return v, err
}

func wantAgain(t *testing.T, v core.Verification, err error, tg *target, what string) {
	t.Helper()
	if err != nil || v.Verified || v.Warning != "" || v.Again != tg.pollInterval {
		t.Fatalf("%s: check = %+v, %v; want Again %v and no verdict", what, v, err, tg.pollInterval)
	}
}

// The single checks of a verification, one at a time.
func TestVerifySteps(t *testing.T) {
	t.Run("credential mode: poll 0 starts a sync", func(t *testing.T) {
		e := seeded(t)
		tg := e.target(t, kpTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credKeyPair))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.Reset()
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		wantAgain(t, v, err, tg, "poll 0")
		wantCalls(t, e, syncSF)
		// The next check reads the source; it does not ask for another sync.
		v, err = verifyStep(t, tg, res.Receipt, 1, tg.pollInterval)
		wantAgain(t, v, err, tg, "poll 1")
		wantCalls(t, e, syncSF, showSF)
	})
	t.Run("connection mode: poll 0 reads the source", func(t *testing.T) {
		e := seeded(t)
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.Reset()
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		wantAgain(t, v, err, tg, "poll 0 (the stale completed)")
		wantCalls(t, e, showPG)
	})
	t.Run("a stale completed answers Again", func(t *testing.T) {
		e := seeded(t)
		e.fake.SetStalePolls(2)
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		for poll := 0; poll < 2; poll++ {
			if st := e.fake.SyncStatus("src_pg"); st != "completed" {
				t.Fatalf("the fake shows %s, want the completed of before the update", st)
			}
			v, err := verifyStep(t, tg, res.Receipt, poll, 0)
			wantAgain(t, v, err, tg, "stale completed")
		}
	})
	t.Run("a stale failed answers Again", func(t *testing.T) {
		e := seeded(t)
		// A sync that failed before the update (the old password revoked early, say).
		e.fake.SetStalePolls(0)
		e.fake.SetSyncingPolls(0)
		e.fake.SetSyncOutcome("src_pg", "failed")
		e.fake.StartSync("src_pg")
		e.get(t, "/api/v2/sources/src_pg") // it runs and fails
		if st := e.fake.SyncStatus("src_pg"); st != "failed" {
			t.Fatalf("setup: sync_status %s, want failed", st)
		}
		e.fake.SetStalePolls(1)
		e.fake.SetSyncOutcome("src_pg", "completed")
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		wantAgain(t, v, err, tg, "stale failed")
	})
	t.Run("a fresh completed answers Verified", func(t *testing.T) {
		e := seeded(t)
		e.fake.SetStalePolls(0)
		e.fake.SetSyncingPolls(0)
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		if err != nil || !v.Verified || v.Again != 0 || v.Warning != "" {
			t.Fatalf("check = %+v, %v; want Verified", v, err)
		}
	})
	t.Run("a fresh failed answers verification_failed", func(t *testing.T) {
		e := seeded(t)
		e.fake.SetStalePolls(0)
		e.fake.SetSyncingPolls(0)
		e.fake.SetSyncOutcome("src_pg", "failed")
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		ce := wantError(t, false, err, core.CodeVerificationFailed, false, "sync_status: failed")
		if v.Verified || ce.VendorStatus != http.StatusOK {
			t.Errorf("check = %+v, %+v", v, ce)
		}
	})
	t.Run("syncing answers Again", func(t *testing.T) {
		e := seeded(t)
		e.fake.SetStalePolls(0)
		e.fake.SetSyncingPolls(5)
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifyStep(t, tg, res.Receipt, 0, 0)
		wantAgain(t, v, err, tg, "syncing")
	})
	t.Run("time running out answers a warning", func(t *testing.T) {
		e := seeded(t)
		e.fake.SetSyncingPolls(5)
		tg := e.target(t, pgTarget)
		res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
		if err != nil {
			t.Fatal(err)
		}
		// Just enough time for one more interval: Again.
		v, err := verifyStep(t, tg, res.Receipt, 0, tg.verifyTimeout-tg.pollInterval)
		wantAgain(t, v, err, tg, "the last interval")
		// Not enough: the warning, unverified, no error.
		v, err = verifyStep(t, tg, res.Receipt, 1, tg.verifyTimeout-tg.pollInterval+time.Millisecond)
		if err != nil || v.Verified || v.Again != 0 || !strings.Contains(v.Warning, "verification unknown") ||
			!strings.Contains(v.Warning, "within "+tg.verifyTimeout.String()) || !strings.Contains(v.Warning, "src_pg") {
			t.Fatalf("check = %+v, %v; want the timeout warning", v, err)
		}
	})
}

// TestVerifySyncRunningAtBaseline: a sync that was already running when the baseline was read
// started before the update, so the first one seen to finish proves nothing (here it fails, as
// a sync with a revoked password would). Verification asks for a sync and waits for a later one.
func TestVerifySyncRunningAtBaseline(t *testing.T) {
	e := seeded(t)
	e.fake.SetStalePolls(0)
	e.fake.SetSyncingPolls(1)
	e.fake.SetSyncOutcome("src_pg", "failed")
	e.fake.StartSync("src_pg")
	tg := e.target(t, pgTarget)
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	if rc := res.Receipt.(*receipt); !rc.running {
		t.Fatalf("receipt %+v: the sync under way was not noticed", rc)
	}
	// The sync from before the update ends, failed: not a verdict on the new password.
	v, err := verifyStep(t, tg, res.Receipt, 0, 0)
	wantAgain(t, v, err, tg, "the earlier sync's failure")
	e.fake.SetSyncOutcome("src_pg", "completed")
	v, polls, _, err := adaptertest.Verify(context.Background(), tg, core.SendResult{Receipt: res.Receipt})
	if err != nil || !v.Verified {
		t.Fatalf("Verify = %+v after %d checks, %v", v, polls, err)
	}
	got := calls(e)
	if got[len(got)-polls] != "POST /api/v2/sources/src_pg/sync" {
		t.Errorf("requests %v: no sync asked for after the earlier one ended", got)
	}
}

// TestConcurrentTargets runs several rotations through one platform at once (go test -race).
func TestConcurrentTargets(t *testing.T) {
	e := newEnv(t)
	e.fake.SetSyncingPolls(0)
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var wg sync.WaitGroup
	for _, id := range ids {
		e.fake.AddSource(id, "postgresql")
	}
	tg := make([]*target, len(ids))
	for i, id := range ids {
		tg[i] = e.target(t, "source_id: "+id+"\nconnection_type: postgresql\npoll_interval: 1ms\n")
	}
	for i := range ids {
		wg.Add(1)
		go func(a *target) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				req, err := a.Build(core.Credential{Type: core.TypePassword, Password: core.NewSecret("s3cr3t-pw-c")})
				if err != nil {
					t.Error(err)
					return
				}
				if res, err := adaptertest.Deliver(context.Background(), a, req); err != nil || !res.Verify.Verified {
					t.Errorf("Deliver = %+v, %v", res, err)
				}
			}
		}(tg[i])
	}
	wg.Wait()
	for _, id := range ids {
		if conn, _ := e.fake.Connection(id); conn["password"] != "s3cr3t-pw-c" {
			t.Errorf("%s: %v", id, conn)
		}
		if n := e.fake.Syncs(id); n != 5 {
			t.Errorf("%s: %d syncs, want one per delivery", id, n)
		}
	}
}
