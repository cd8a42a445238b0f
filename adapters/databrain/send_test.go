package databrain

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

// sendPG builds and sends a password rotation to the postgres datasource "pg".
func sendPG(t *testing.T, e *env) (bool, error) {
	t.Helper()
	a := e.target(t, pgTarget)
	req, err := a.Build(cred(t, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	return send(t, a, req)
}

func TestSendSuccessAndVerify(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	retry, err := sendPG(t, e)
	if err != nil || retry {
		t.Fatalf("Send: retry=%v err=%v", retry, err)
	}
	stored, ok := e.fake.Credentials("pg")
	if !ok || stored["password"] != pw1 || stored["username"] != "dbuser" {
		t.Fatalf("fake holds %v", stored)
	}
	if e.fake.Updates("pg") != 1 {
		t.Errorf("updates = %d", e.fake.Updates("pg"))
	}
	// Databrain tested the connection in the update: the delivery is verified with the one PUT
	// and no further call.
	a := e.target(t, pgTarget)
	req, _ := a.Build(cred(t, `{"type":"password","password":"s3cr3t-pw-2"}`))
	before := len(e.fake.Requests())
	res, err := adaptertest.Deliver(context.Background(), a, req)
	if err != nil || res.Retry || !res.Verify.Verified || res.Verify.Warning != "" || res.Polls != 0 {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	if res.Send.Check || !res.Send.Verified {
		t.Errorf("SendResult = %+v, want Verified without a Verify call", res.Send)
	}
	if n := len(e.fake.Requests()) - before; n != 1 {
		t.Errorf("the delivery made %d calls, want the one PUT", n)
	}
	// Verify, should it be asked anyway, calls nothing and says verified.
	v, retry, err := a.Verify(context.Background(), core.VerifyRequest{})
	if err != nil || retry || !v.Verified || v.Again != 0 {
		t.Fatalf("Verify = %+v, %v, %v", v, retry, err)
	}
	if n := len(e.fake.Requests()) - before; n != 1 {
		t.Error("Verify called Databrain")
	}
	// The second rotation replaced the first.
	if stored, _ := e.fake.Credentials("pg"); stored["password"] != "s3cr3t-pw-2" {
		t.Errorf("after the second rotation the fake holds %v", stored["password"])
	}
}

func TestSendUnauthorized(t *testing.T) {
	e := newEnvToken(t, "dbn_wrong_token")
	e.fake.AddDatasource("pg", "postgres")
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if retry || ce.Code != core.CodeUnauthorized || ce.VendorStatus != 401 {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
	if !strings.Contains(ce.Message, "AUTHENTICATION_ERROR: Invalid or missing service token") {
		t.Errorf("message %q", ce.Message)
	}
	if _, ok := e.fake.Credentials("pg"); ok {
		t.Error("the fake changed the datasource for a bad token")
	}
}

func TestSendNotFound(t *testing.T) {
	e := newEnv(t) // no datasource "pg"
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if retry || ce.Code != core.CodeNotFound || ce.VendorStatus != 404 || !strings.Contains(ce.Message, "DATASOURCE_NOT_FOUND") {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
}

func TestSendTypeMismatch(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "mysql")
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if retry || ce.Code != core.CodeRejected || ce.VendorStatus != 400 || !strings.Contains(ce.Message, "INVALID_REQUEST_BODY: datasourceType must match") {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
}

func TestSendValidationError(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	a := e.target(t, pgTarget)
	// A body Build would never produce: the fake validates like Databrain.
	req := core.Request{Method: http.MethodPut, Path: UpdatePath, Body: map[string]any{
		"datasourceType": "postgres",
		"credentials":    map[string]any{"name": "pg", "host": "h", "port": "5432", "password": core.NewSecret(pw1)},
	}}
	retry, err := send(t, a, req)
	ce := asCoreError(t, err)
	if retry || ce.Code != core.CodeRejected || ce.VendorStatus != 400 {
		t.Fatalf("got retry=%v %+v", retry, ce)
	}
	for _, want := range []string{"INVALID_REQUEST_BODY", "credentials.port must be a number", "credentials.username is required"} {
		if !strings.Contains(ce.Message, want) {
			t.Errorf("message %q lacks %q", ce.Message, want)
		}
	}
	assertNoSecret(t, "error", ce.Message)
}

func TestSendCredentialTestFailed(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.SetCredentialTestFails("pg", true)
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if retry || ce.Code != core.CodeVerificationFailed || ce.VendorStatus != 400 || !strings.Contains(ce.Message, "CREDENTIAL_TEST_FAILED") {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
	if _, ok := e.fake.Credentials("pg"); ok {
		t.Error("a failed connection test stored the credential")
	}
	e.fake.SetCredentialTestFails("pg", false)
	if _, err := sendPG(t, e); err != nil {
		t.Errorf("after the test passes again: %v", err)
	}
}

func TestSendVendorCodes(t *testing.T) {
	cases := []struct {
		code   string
		status int
		want   string
		retry  bool
	}{
		{"SCHEMA_CACHE_FAILED", 500, core.CodeVendorError, true},
		{"TENANCY_SETTINGS_CREATE_FAILED", 500, core.CodeVendorError, true},
		{"TENANCY_SETTINGS_UPDATE_FAILED", 500, core.CodeVendorError, true},
		{"INTERNAL_SERVER_ERROR", 500, core.CodeVendorError, true},
		{"DATASOURCE_NAME_ERROR", 400, core.CodeNotFound, false},
		{"INVALID_REQUEST_BODY", 400, core.CodeRejected, false},
		{"CREDENTIAL_TEST_FAILED", 400, core.CodeVerificationFailed, false},
		{"DATASOURCE_NOT_FOUND", 404, core.CodeNotFound, false},
		{"AUTHENTICATION_ERROR", 401, core.CodeUnauthorized, false},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			e := newEnv(t)
			e.fake.AddDatasource("pg", "postgres")
			e.fake.FailUpdates("pg", tc.code)
			retry, err := sendPG(t, e)
			ce := asCoreError(t, err)
			if retry != tc.retry || ce.Code != tc.want || ce.VendorStatus != tc.status {
				t.Errorf("got retry=%v %+v", retry, ce)
			}
			if !strings.Contains(ce.Message, tc.code+": ") {
				t.Errorf("message %q lacks %q", ce.Message, tc.code)
			}
			if _, ok := e.fake.Credentials("pg"); ok {
				t.Error("a failed update stored the credential")
			}
		})
	}
}

// A vendor code overrides the status-based class: CREDENTIAL_TEST_FAILED is final even if some
// proxy turned it into a 5xx, and INTERNAL_SERVER_ERROR is retried whatever the status.
func TestSendCodeOverridesStatus(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"error":{"code":"CREDENTIAL_TEST_FAILED","message":"connection refused"}}`))
		return true
	})
	retry, err := sendPG(t, e)
	if ce := asCoreError(t, err); retry || ce.Code != core.CodeVerificationFailed {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"INTERNAL_SERVER_ERROR","message":"oops"}}`))
		return true
	})
	retry, err = sendPG(t, e)
	if ce := asCoreError(t, err); !retry || ce.Code != core.CodeVendorError || ce.RetryAfter != 3*time.Second {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
}

func TestSendRateLimited(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"RATE_LIMITED","message":"slow down"}}`))
		return true
	})
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if !retry || ce.Code != core.CodeRateLimited || ce.RetryAfter != 7*time.Second || ce.VendorStatus != 429 {
		t.Errorf("got retry=%v %+v (RetryAfter %v)", retry, ce, ce.RetryAfter)
	}
	if !strings.Contains(ce.Message, "RATE_LIMITED: slow down") {
		t.Errorf("message %q", ce.Message)
	}
}

func TestSendServerErrorNonJSON(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html>" + strings.Repeat("x", 5000) + "</html>"))
		return true
	})
	retry, err := sendPG(t, e)
	ce := asCoreError(t, err)
	if !retry || ce.Code != core.CodeVendorError || ce.VendorStatus != 500 {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
	if len(ce.Message) > 400 || !strings.Contains(ce.Message, "<html>") {
		t.Errorf("message (%d bytes) %q", len(ce.Message), ce.Message)
	}
}

func TestSendNetworkError(t *testing.T) {
	e := newEnv(t)
	a := e.target(t, pgTarget)
	req, _ := a.Build(cred(t, credPassword))
	e.srv.Close()
	retry, err := send(t, a, req)
	ce := asCoreError(t, err)
	if !retry || ce.Code != core.CodeNetwork {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
}

func TestSendTimeout(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	release := make(chan struct{})
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	defer close(release)
	p, err := NewPlatform(vendorhttp.Platform{Name: "db", BaseURL: e.srv.URL, Token: core.NewSecret(testToken), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := p.NewTarget(parseNode(t, pgTarget))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ad.Build(cred(t, credPassword))
	retry, err := send(t, ad, req)
	if ce := asCoreError(t, err); !retry || ce.Code != core.CodeTimeout {
		t.Errorf("got retry=%v %+v", retry, ce)
	}
}

func TestParseError(t *testing.T) {
	huge := `{"error":{"code":"INVALID_REQUEST_BODY","message":"` + strings.Repeat("m", 10000) + `"}}`
	cases := []struct {
		body, code, msg string
	}{
		{`{"error":{"code":"INVALID_REQUEST_BODY","message":"credentials.host is required"}}`, "INVALID_REQUEST_BODY", "INVALID_REQUEST_BODY: credentials.host is required"},
		{`{"error":{"code":"SCHEMA_CACHE_FAILED"}}`, "SCHEMA_CACHE_FAILED", "SCHEMA_CACHE_FAILED"},
		{`{"error":"Datasource not found"}`, "", "Datasource not found"},
		{`{"code":"DATASOURCE_NAME_ERROR","message":"Datasource not found"}`, "DATASOURCE_NAME_ERROR", "DATASOURCE_NAME_ERROR: Datasource not found"},
		{`{"error":{"code":"not a code!","message":"m"}}`, "", "m"},
		{`{"error":{"code":42,"message":["x"]}}`, "", "42"},
		{`{"message":"line1\n\tline2"}`, "", "line1 line2"},
		{``, "", ""},
		{`null`, "", "null"},
		{`[1,2]`, "", "[1,2]"},
		{"\xff\xfe not json", "", "? not json"},
		{`{"error":null}`, "", `{"error":null}`},
	}
	for _, tc := range cases {
		code, msg := parseError([]byte(tc.body))
		if code != tc.code || msg != tc.msg {
			t.Errorf("parseError(%q) = %q, %q; want %q, %q", tc.body, code, msg, tc.code, tc.msg)
		}
	}
	code, msg := parseError([]byte(huge))
	if code != "INVALID_REQUEST_BODY" || len(msg) > maxMessage+40 {
		t.Errorf("huge body: %q, %d bytes", code, len(msg))
	}
}

// TestConcurrentSends runs many rotations through one adapter and one client at once (-race).
func TestConcurrentSends(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	a := e.target(t, pgTarget)
	c := cred(t, credPasswordUser)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := a.Build(c)
			if err == nil {
				var res adaptertest.Result
				res, err = adaptertest.Deliver(context.Background(), a, req)
				if err == nil && !res.Verify.Verified {
					err = fmt.Errorf("delivery not verified: %+v", res)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if e.fake.Updates("pg") != 20 {
		t.Errorf("updates = %d", e.fake.Updates("pg"))
	}
}

// TestSendScrubsEchoedSecrets: a vendor that echoes the submitted secret in its error body does
// not get it into the error.
func TestSendScrubsEchoedSecrets(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"CREDENTIAL_TEST_FAILED","message":"password s3cr3t-pw-1 rejected; key -----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-SSH-KEY-1\n-----END OPENSSH PRIVATE KEY-----"}}`))
		return true
	})
	a := e.target(t, pgSSH)
	req, err := a.Build(cred(t, credPasswordSSH))
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(t, a, req)
	ce := asCoreError(t, err)
	assertNoSecret(t, "error", ce.Error())
	if !strings.Contains(ce.Message, "password [REDACTED] rejected") {
		t.Errorf("message %q", ce.Message)
	}
}

// TestSSHTunnelGoesToTunnellingDatasourcesOnly: a credential's ssh_tunnel is for the targets of
// the source that tunnel. A datasource without sshTunnel: enable takes the rotation and stores
// no SSH field; one with it stores the key.
func TestSSHTunnelGoesToTunnellingDatasourcesOnly(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	for _, tc := range []struct {
		name, target string
		tunnels      bool
	}{
		{"no SSH fields", pgTarget, false},
		{"sshTunnel: enable", pgSSH, true},
	} {
		a := e.target(t, tc.target)
		req, err := a.Build(cred(t, credPasswordSSH))
		if err != nil {
			t.Fatalf("%s: Build refused the rotation: %v", tc.name, err)
		}
		res, err := adaptertest.Deliver(context.Background(), a, req)
		if err != nil || !res.Verify.Verified {
			t.Fatalf("%s: Deliver = %+v, %v", tc.name, res, err)
		}
		stored, _ := e.fake.Credentials("pg")
		if stored["password"] != pw1 {
			t.Errorf("%s: the rotation did not land: %v", tc.name, stored["password"])
		}
		_, hasKey := stored["sshPrivateKey"]
		switch {
		case tc.tunnels && stored["sshPrivateKey"] != sshKey1:
			t.Errorf("%s: fake holds sshPrivateKey %v, want the rotated key", tc.name, stored["sshPrivateKey"])
		case !tc.tunnels && hasKey:
			t.Errorf("%s: sshPrivateKey sent to a datasource that does not tunnel", tc.name)
		}
		if !tc.tunnels {
			for k := range stored {
				if strings.HasPrefix(k, "ssh") {
					t.Errorf("%s: %s sent to a datasource that does not tunnel", tc.name, k)
				}
			}
		}
	}
}
