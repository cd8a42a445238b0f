package felt

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/core"
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
	if ce.Code != code || retry != wantRetry || ce.Retryable != wantRetry {
		t.Errorf("got code=%s retry=%v retryable=%v (%s), want code=%s retry=%v", ce.Code, retry, ce.Retryable, ce.Message, code, wantRetry)
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

func TestSendAndVerifyConnectionMode(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPasswordUser))
	if err != nil || retry {
		t.Fatalf("Send = %v, %v", retry, err)
	}
	conn, _ := e.fake.Connection("src_pg")
	if conn["password"] != "s3cr3t-pw-2" || conn["user"] != "svc_felt_2" {
		t.Errorf("fake connection = %v", conn)
	}
	if got := e.fake.SyncStatus("src_pg"); got != "syncing" {
		t.Errorf("sync_status after update = %q, want syncing", got)
	}
	v, retry, err := tg.Verify(context.Background())
	if err != nil || retry || !v.Verified || v.Warning != "" {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
	// One POST, then one "syncing" poll and one "completed" poll.
	reqs := e.fake.Requests()
	if len(reqs) != 3 || reqs[1].Method != http.MethodGet || reqs[2].Path != "/api/v2/sources/src_pg" {
		t.Errorf("requests = %d, want POST + 2 GET", len(reqs))
	}
}

func TestSendAndVerifyCredentialMode(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, kpTarget)
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credKeyPair)); err != nil {
		t.Fatal(err)
	}
	c, _ := e.fake.Credential("src_sf", "cred_kp")
	if c.Fields["private_key_passphrase"] != "s3cr3t-passphrase-1" {
		t.Errorf("fake credential = %v", c.Fields)
	}
	v, _, err := tg.Verify(context.Background())
	if err != nil || !v.Verified {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}

func TestSendUnauthorized(t *testing.T) {
	e := newEnvToken(t, "wrong-token")
	e.fake.AddSource("src_pg", "postgresql")
	tg := e.target(t, pgTarget)
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	ce := wantError(t, retry, err, core.CodeUnauthorized, false, "HTTP 401", "Unauthorized: header authorization: Invalid or missing API token")
	if ce.VendorStatus != 401 {
		t.Errorf("VendorStatus = %d", ce.VendorStatus)
	}
	conn, _ := e.fake.Connection("src_pg")
	if _, ok := conn["password"]; ok {
		t.Error("the fake stored a password sent with a bad token")
	}
}

func TestSendForbidden(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(ErrorFault(http.StatusForbidden, "", 0))
	tg := e.target(t, pgTarget)
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeForbidden, false, "HTTP 403", "Forbidden: header authorization: Access denied")
}

func TestSendNotFound(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_missing\nconnection_type: postgresql\n")
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "Not Found: parameter source_id: Source not found")

	tg = e.target(t, "source_id: src_sf\ncredential_id: cred_missing\ncredential_type: key_pair\n")
	retry, err = tg.Send(context.Background(), mustBuild(t, tg, credKeyPair))
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "parameter credential_id: Source credential not found")
}

func TestSendCredentialTypeMismatch(t *testing.T) {
	e := seeded(t)
	// The config says key_pair, but Felt's cred_pat is a snowflake_pat credential.
	tg := e.target(t, "source_id: src_sf\ncredential_id: cred_pat\ncredential_type: key_pair\n")
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credKeyPair))
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422", "Unprocessable Entity: credential.type: does not match the credential's type snowflake_pat")
	c, _ := e.fake.Credential("src_sf", "cred_pat")
	if c.Fields["token"] != "seeded-token" {
		t.Errorf("a refused update changed the credential: %v", c.Fields)
	}
}

func TestSendConnectionTypeMismatch(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: mssql\n")
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422", "connection.type: does not match the source's connection type postgresql")
}

func TestSendValidationError(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, kpTarget)
	req := core.Request{Method: http.MethodPost, Path: "/api/v2/sources/src_sf/credentials/cred_kp/update",
		Body: map[string]any{"credential": map[string]any{"type": "key_pair", "private_key": core.NewSecret("s3cr3t-k"), "bogus": 1, "private_key_name": true}}}
	retry, err := tg.Send(context.Background(), req)
	wantError(t, retry, err, core.CodeRejected, false, "HTTP 422",
		"Unprocessable Entity: credential.bogus: Unexpected field: bogus",
		"Unprocessable Entity: credential.private_key_name: Invalid string. Got: boolean")
}

func TestSendRateLimited(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(ErrorFault(http.StatusTooManyRequests, "7", 1))
	tg := e.target(t, pgTarget)
	req := mustBuild(t, tg, credPassword)
	retry, err := tg.Send(context.Background(), req)
	ce := wantError(t, retry, err, core.CodeRateLimited, true, "HTTP 429", "Too Many Requests")
	if ce.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %v, want 7s", ce.RetryAfter)
	}
	// The fault answered once: the retry lands.
	if retry, err := tg.Send(context.Background(), req); err != nil || retry {
		t.Fatalf("second Send = %v, %v", retry, err)
	}
	conn, _ := e.fake.Connection("src_pg")
	if conn["password"] != "s3cr3t-pw-1" {
		t.Errorf("fake connection = %v", conn)
	}
}

func TestSendServerError(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(ErrorFault(http.StatusInternalServerError, "", 0))
	tg := e.target(t, pgTarget)
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeVendorError, true, "HTTP 500", "Internal Server Error: Something went wrong")
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
			e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
				return true
			})
			tg := e.target(t, pgTarget)
			_, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
			ce := asCoreError(t, err)
			if !strings.Contains(ce.Message, c.want) || len(ce.Message) > 3000 {
				t.Errorf("message (%d bytes) %.300q does not contain %q", len(ce.Message), ce.Message, c.want)
			}
		})
	}
}

func TestSendNetworkError(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, pgTarget)
	e.server.Close()
	retry, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	wantError(t, retry, err, core.CodeNetwork, true)
}

func TestSendEscapesPath(t *testing.T) {
	e := newEnv(t)
	e.fake.AddSource("src/a b", "postgresql")
	e.fake.AddCredential("src/a b", "cred?1", "snowflake_pat")
	tg := e.target(t, "source_id: \"src/a b\"\ncredential_id: \"cred?1\"\ncredential_type: snowflake_pat\nverify: false\n")
	req := mustBuild(t, tg, credToken)
	if req.Path != "/api/v2/sources/src%2Fa%20b/credentials/cred%3F1/update" {
		t.Errorf("path = %s", req.Path)
	}
	if _, err := tg.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.fake.Credential("src/a b", "cred?1"); c.Fields["token"] != "s3cr3t-token-1" {
		t.Errorf("fake credential = %v", c.Fields)
	}
}

func TestVerifyFailed(t *testing.T) {
	e := seeded(t)
	e.fake.SetSyncOutcome("src_pg", "failed")
	tg := e.target(t, pgTarget)
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
		t.Fatal(err)
	}
	v, retry, err := tg.Verify(context.Background())
	wantError(t, retry, err, core.CodeVerificationFailed, false, "Felt could not connect", "src_pg", "sync_status: failed")
	if v.Verified {
		t.Error("Verified despite a failed sync")
	}
}

func TestVerifyDisabled(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\nverify: false\n")
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
		t.Fatal(err)
	}
	e.fake.Reset()
	v, retry, err := tg.Verify(context.Background())
	if err != nil || retry || v.Verified || v.Warning != "" {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Verify with verify: false sent %d requests", n)
	}
}

func TestVerifyTimesOutWithWarning(t *testing.T) {
	e := seeded(t)
	e.fake.SetSyncingPolls(1 << 20)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 60ms\n")
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, retry, err := tg.Verify(context.Background())
	if err != nil || retry || v.Verified {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
	if !strings.Contains(v.Warning, "verification unknown") || !strings.Contains(v.Warning, "sync_status syncing") {
		t.Errorf("warning = %q", v.Warning)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Verify took %v with verify_timeout 60ms", d)
	}
	if n := len(e.fake.Requests()); n < 3 {
		t.Errorf("only %d requests: Verify did not keep polling", n)
	}
}

func TestVerifyRetriesFailingPolls(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		e := seeded(t)
		e.fake.SetSyncingPolls(0)
		tg := e.target(t, pgTarget)
		if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
			t.Fatal(err)
		}
		e.fake.SetFault(ErrorFault(status, "", 2))
		v, _, err := tg.Verify(context.Background())
		if err != nil || !v.Verified {
			t.Fatalf("status %d: Verify = %+v, %v", status, v, err)
		}
		if n := len(e.fake.Requests()); n != 4 {
			t.Errorf("status %d: %d requests, want POST + 2 failed polls + 1 good poll", status, n)
		}
	}
}

func TestVerifyFailingPollsUntilTimeout(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 50ms\n")
	e.fake.SetFault(ErrorFault(http.StatusServiceUnavailable, "", 0))
	v, retry, err := tg.Verify(context.Background())
	if err != nil || retry || v.Verified || !strings.Contains(v.Warning, "HTTP 503") {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
}

func TestVerifyFinalErrors(t *testing.T) {
	e := seeded(t)
	tg := e.target(t, "source_id: src_missing\nconnection_type: postgresql\npoll_interval: 5ms\n")
	_, retry, err := tg.Verify(context.Background())
	wantError(t, retry, err, core.CodeNotFound, false, "HTTP 404", "parameter source_id")
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("a 404 poll was repeated: %d requests", n)
	}

	e = newEnvToken(t, "wrong-token")
	e.fake.AddSource("src_pg", "postgresql")
	tg = e.target(t, pgTarget)
	_, retry, err = tg.Verify(context.Background())
	wantError(t, retry, err, core.CodeUnauthorized, false, "HTTP 401")
}

func TestVerifyCanceled(t *testing.T) {
	e := seeded(t)
	e.fake.SetSyncingPolls(1 << 20)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\n")
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, retry, err := tg.Verify(ctx)
	wantError(t, retry, err, core.CodeCanceled, false)
}

func TestVerifyUnreadableShow(t *testing.T) {
	e := seeded(t)
	e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("not json"))
		return true
	})
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 5ms\nverify_timeout: 30ms\n")
	v, _, err := tg.Verify(context.Background())
	if err != nil || v.Verified || !strings.Contains(v.Warning, "readable sync_status") {
		t.Fatalf("Verify = %+v, %v", v, err)
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
				if _, err := a.Send(context.Background(), req); err != nil {
					t.Error(err)
				}
				if v, _, err := a.Verify(context.Background()); err != nil || !v.Verified {
					t.Errorf("Verify = %+v, %v", v, err)
				}
			}
		}(tg[i])
	}
	wg.Wait()
	for _, id := range ids {
		if conn, _ := e.fake.Connection(id); conn["password"] != "s3cr3t-pw-c" {
			t.Errorf("%s: %v", id, conn)
		}
	}
}
