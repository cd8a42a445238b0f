package rivergen_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

// coreErr asserts err is a *core.Error and returns it.
func coreErr(t *testing.T, err error) *core.Error {
	t.Helper()
	require.Error(t, err)
	var ce *core.Error
	require.True(t, errors.As(err, &ce), "want *core.Error, got %T: %v", err, err)
	return ce
}

// fault answers every request with status, headers and body.
func fault(status int, body string, headers ...string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return true
	}
}

// send builds and sends cred. It also checks what Send says of verification: RiverGen never
// verifies during the update (Test Connection is a call of its own), and a failed send reports
// nothing.
func send(t *testing.T, a core.Adapter, cred core.Credential) (bool, error) {
	t.Helper()
	req, err := a.Build(cred)
	require.NoError(t, err)
	return sendReq(t, a, req)
}

func sendReq(t *testing.T, a core.Adapter, req core.Request) (bool, error) {
	t.Helper()
	res, retry, err := a.Send(context.Background(), req)
	if err != nil {
		assert.Equal(t, core.SendResult{}, res, "a failed Send reports nothing")
	} else {
		assert.False(t, res.Verified, "RiverGen does not verify during the update")
		assert.Nil(t, res.Receipt, "RiverGen's Test Connection needs no receipt")
	}
	return retry, err
}

func TestSendSuccessIsPartialUpdate(t *testing.T) {
	e := newEnv(t, testToken)
	before := rivergenfake.Credentials{Username: "olduser", Password: "old-pw", APIKey: "old-key", OAuthToken: "old-oauth", SSHPrivateKey: "old-ssh", SSHPassphrase: "old-pass"}
	e.fake.SetCredentials(1, before)
	a := e.target(t, "data_source_id: 1\ntoken_field: oauth_token")

	retry, err := send(t, a, password(pw1))
	require.NoError(t, err)
	assert.False(t, retry)
	got, _ := e.fake.Credentials(1)
	assert.Equal(t, pw1, got.Password)
	assert.Equal(t, "olduser", got.Username, "username untouched when not rotated")
	assert.Equal(t, "old-key", got.APIKey)
	assert.Equal(t, "old-oauth", got.OAuthToken)
	assert.Equal(t, "old-ssh", got.SSHPrivateKey)
	assert.Equal(t, 0, got.Rotations)

	_, err = send(t, a, token(tok1))
	require.NoError(t, err)
	got, _ = e.fake.Credentials(1)
	assert.Equal(t, tok1, got.OAuthToken)
	assert.Equal(t, pw1, got.Password, "password kept from the previous rotation")
	assert.Equal(t, "old-key", got.APIKey)
	assert.Equal(t, 2, got.Updates)
}

func TestSendUnauthorized(t *testing.T) {
	e := newEnv(t, "wrong-token")
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.False(t, retry)

	assert.Equal(t, core.CodeUnauthorized, ce.Code)
	assert.Equal(t, 401, ce.VendorStatus)
	assert.Contains(t, ce.Message, "UNAUTHORIZED: Invalid or missing authentication token")
	got, _ := e.fake.Credentials(1)
	assert.Empty(t, got.Password, "nothing stored")
}

func TestSendForbidden(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetOrganizationMember(false)
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.False(t, retry)
	assert.Equal(t, core.CodeForbidden, ce.Code)
	assert.Equal(t, 403, ce.VendorStatus)
	assert.Contains(t, ce.Message, "not a member of any RiverGen organization (add them to an organization or use another token)")
	assert.Contains(t, ce.Message, "FORBIDDEN")
}

func TestSendNotFound(t *testing.T) {
	e := newEnv(t, testToken)
	retry, err := send(t, e.target(t, "data_source_id: 99"), password(pw1))
	ce := coreErr(t, err)
	assert.False(t, retry)
	assert.Equal(t, core.CodeNotFound, ce.Code)
	assert.Equal(t, 404, ce.VendorStatus)
	assert.Contains(t, ce.Message, "data source 99 not found")
	assert.Contains(t, ce.Message, "NOT_FOUND")
}

// The fake's own validation, reached with requests Build would never make.
func TestSendValidationErrorsFromFake(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.target(t, "data_source_id: 1")
	cases := []struct {
		name string
		body any
		want string
	}{
		{"unknown field", map[string]any{"passwd": core.NewSecret(pw1)}, "VALIDATION_ERROR: Invalid request body (passwd: extra fields not permitted)"},
		{"wrong type", map[string]any{"password": core.NewSecret(pw1), "rotate_credentials": "yes"}, "rotate_credentials: must be a boolean"},
		{"number as string", map[string]any{"username": 5}, "username: must be a string"},
		{"not an object", []any{"x"}, "body: must be a JSON object, got an array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			retry, err := sendReq(t, a, core.Request{Method: "PATCH", Path: "/api/v1/data-sources/1/credentials", Body: tc.body})
			ce := coreErr(t, err)
			assert.False(t, retry)
			assert.Equal(t, core.CodeRejected, ce.Code)
			assert.Equal(t, 422, ce.VendorStatus)
			assert.Contains(t, ce.Message, tc.want)
			assert.NotContains(t, ce.Message, allSecrets)
		})
	}
	got, _ := e.fake.Credentials(1)
	assert.Equal(t, 0, got.Updates, "refused bodies change nothing")
}

// Vendor error bodies in other shapes, and secrets the vendor echoes back.
func TestSendVendorErrorShapes(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   string
		retry  bool
		want   string
	}{
		{"fastapi detail list echoing input", 422, `{"detail":[{"loc":["body","password"],"msg":"String should have at most 8 characters","input":"s3cr3t-pw-1"}]}`,
			core.CodeRejected, false, "HTTP 422: password: String should have at most 8 characters"},
		{"detail string", 400, `{"detail":"Invalid payload"}`, core.CodeRejected, false, "HTTP 400: Invalid payload"},
		{"plain message", 400, `{"message":"bad things"}`, core.CodeRejected, false, "HTTP 400: bad things"},
		{"error string", 409, `{"success":false,"error":"CONFLICT"}`, core.CodeRejected, false, "HTTP 409: CONFLICT"},
		{"secret echoed in message", 400, `{"success":false,"error":{"code":"BAD_REQUEST","message":"password s3cr3t-pw-1 is too weak"}}`,
			core.CodeRejected, false, "BAD_REQUEST: password [REDACTED] is too weak"},
		{"html 500", 500, `<html><body>Internal Server Error s3cr3t-pw-1</body></html>`, core.CodeVendorError, true, "HTTP 500: <html><body>Internal Server Error [REDACTED]"},
		{"empty 502", 502, ``, core.CodeVendorError, true, "HTTP 502: Bad Gateway"},
		{"json without message", 503, `{"foo":1}`, core.CodeVendorError, true, `HTTP 503: {"foo":1}`},
		{"unauthorized detail", 401, `{"detail":"Not authenticated"}`, core.CodeUnauthorized, false, "RiverGen refused the access token of platform \"rivergen\" (invalid or expired) (RiverGen: Not authenticated)"},
		{"redirect", 302, ``, core.CodeBadResponse, false, "not followed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testToken)
			e.fake.SetFault(fault(tc.status, tc.body, "Location", "https://elsewhere.example/"))
			retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
			ce := coreErr(t, err)
			assert.Equal(t, tc.retry, retry)

			assert.Equal(t, tc.code, ce.Code)
			assert.Equal(t, tc.status, ce.VendorStatus)
			assert.Contains(t, ce.Message, tc.want)
			assert.NotContains(t, ce.Message, allSecrets)
		})
	}
}

func TestSendHugeBody(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetFault(fault(500, strings.Repeat("x", 3<<20)))
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.True(t, retry)
	assert.Less(t, len(ce.Message), 400)

	long := `{"error":{"code":"X","message":"` + strings.Repeat("y", 5000) + `"}}`
	e.fake.SetFault(fault(400, long))
	_, err = send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce = coreErr(t, err)
	assert.Less(t, len(ce.Message), 700)
}

func TestSendSuccessFalseIn200(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetFault(fault(200, `{"success":false,"error":{"code":"ENCRYPTION_FAILED","message":"could not store"}}`))
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.False(t, retry)
	assert.Equal(t, core.CodeRejected, ce.Code)
	assert.Contains(t, ce.Message, "ENCRYPTION_FAILED: could not store")

	// A 2xx with an unreadable body is success: RiverGen stored the credentials.
	e.fake.SetFault(fault(204, ``))
	_, err = send(t, e.target(t, "data_source_id: 1"), password(pw1))
	require.NoError(t, err)
}

func TestSendRateLimited(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetFault(fault(429, `{"success":false,"error":{"code":"RATE_LIMITED","message":"slow down"}}`, "Retry-After", "7"))
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.True(t, retry)

	assert.Equal(t, core.CodeRateLimited, ce.Code)
	assert.Equal(t, 7*time.Second, ce.RetryAfter)
	assert.Contains(t, ce.Message, "RATE_LIMITED: slow down")
}

func TestSendServerError(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetFault(fault(500, `{"success":false,"error":{"code":"INTERNAL_ERROR","message":"boom"}}`))
	retry, err := send(t, e.target(t, "data_source_id: 1"), password(pw1))
	ce := coreErr(t, err)
	assert.True(t, retry)
	assert.Equal(t, core.CodeVendorError, ce.Code)
	assert.Equal(t, 500, ce.VendorStatus)
	assert.Contains(t, ce.Message, "INTERNAL_ERROR: boom")
}

func TestSendNetworkError(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.target(t, "data_source_id: 1")
	e.srv.Close()
	retry, err := send(t, a, password(pw1))
	ce := coreErr(t, err)
	assert.True(t, retry)
	assert.Equal(t, core.CodeNetwork, ce.Code)
}

func TestSendTimeout(t *testing.T) {
	e := newEnv(t, testToken)
	release := make(chan struct{})
	defer close(release)
	e.fake.SetFault(func(http.ResponseWriter, *http.Request) bool { <-release; return true })
	p, err := rivergen.NewPlatform(vendorhttp.Platform{Name: "rg", BaseURL: e.srv.URL, Token: core.NewSecret(testToken), Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	a, err := p.NewTarget(yamlNode(t, "data_source_id: 1"))
	require.NoError(t, err)
	retry, err := send(t, a, password(pw1))
	ce := coreErr(t, err)
	assert.True(t, retry)
	assert.Equal(t, core.CodeTimeout, ce.Code)
}

func TestSendConcurrent(t *testing.T) {
	e := newEnv(t, testToken)
	for id := 1; id <= 4; id++ {
		e.fake.AddDataSource(id)
	}
	var wg sync.WaitGroup
	for id := 1; id <= 4; id++ {
		a := e.target(t, fmt.Sprintf("data_source_id: %d\ntoken_field: api_key", id))
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, err := a.Build(token(tok1))
				if err != nil {
					t.Error(err)
					return
				}
				res, err := adaptertest.Deliver(context.Background(), a, req)
				if err != nil || !res.Verify.Verified || res.Polls != 1 {
					t.Errorf("deliver: %+v %v", res, err)
				}
			}()
		}
	}
	wg.Wait()
	for id := 1; id <= 4; id++ {
		got, _ := e.fake.Credentials(id)
		assert.Equal(t, 5, got.Updates)
		assert.Equal(t, tok1, got.APIKey)
		assert.Equal(t, 5, e.fake.TestCount(id))
	}
}

func TestVerifySuccess(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.target(t, "data_source_id: 1")
	req, err := a.Build(password(pw1))
	require.NoError(t, err)
	res, err := adaptertest.Deliver(context.Background(), a, req)
	require.NoError(t, err)
	assert.True(t, res.Send.Check, "verify defaults to true: Send asks for Test Connection")
	assert.False(t, res.Retry)
	assert.True(t, res.Verify.Verified)
	assert.Empty(t, res.Verify.Warning)
	assert.Equal(t, 1, res.Polls, "one Test Connection is the whole verification")
	require.Len(t, e.fake.Requests(), 2, "PATCH, then Test Connection")
	assert.Equal(t, 1, e.fake.TestCount(1))
	req2 := e.lastRequest(t)
	assert.Equal(t, "POST", req2.Method)
	assert.Equal(t, "/api/v1/data-sources/1/test", req2.Path)
	assert.Equal(t, "application/json", req2.Header.Get("Content-Type"))
}

func TestVerifyFailure(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetConnectionOK(1, false, "AUTHENTICATION_FAILED", `password authentication failed for user "app"`)
	a := e.target(t, "data_source_id: 1")
	// Delivered as the engine does: the update lands, Test Connection says it does not work.
	req, err := a.Build(password(pw1))
	require.NoError(t, err)
	res, err := adaptertest.Deliver(context.Background(), a, req)
	ce := coreErr(t, err)
	assert.True(t, res.Send.Check)
	assert.False(t, res.Verify.Verified)
	assert.False(t, res.Retry)

	assert.Equal(t, core.CodeVerificationFailed, ce.Code)
	assert.Equal(t, `AUTHENTICATION_FAILED: password authentication failed for user "app"`, ce.Message)
	got, _ := e.fake.Credentials(1)
	assert.Equal(t, pw1, got.Password, "the update itself landed")

	// Each Verify is one Test Connection of what RiverGen holds now.
	e.fake.SetConnectionOK(1, false, "", "")
	_, _, err = a.Verify(context.Background(), core.VerifyRequest{})
	ce = coreErr(t, err)
	assert.Equal(t, core.CodeVerificationFailed, ce.Code)
	assert.Contains(t, ce.Message, "could not connect to data source 1")

	e.fake.SetConnectionOK(1, true, "", "")
	v, _, err := a.Verify(context.Background(), core.VerifyRequest{Poll: 3})
	require.NoError(t, err)
	assert.True(t, v.Verified)
	assert.Zero(t, v.Again, "a Test Connection answers at once: nothing to poll")
	assert.Equal(t, 3, e.fake.TestCount(1))
}

func TestVerifyDisabled(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetConnectionOK(1, false, "X", "would fail")
	a := e.target(t, "data_source_id: 1\nverify: false")
	req, err := a.Build(password(pw1))
	require.NoError(t, err)
	res, err := adaptertest.Deliver(context.Background(), a, req)
	require.NoError(t, err)
	assert.False(t, res.Send.Check, "verify: false: Send asks for no verification")
	assert.False(t, res.Retry)
	assert.False(t, res.Verify.Verified)
	assert.Zero(t, res.Polls)
	assert.Zero(t, e.fake.TestCount(1), "no Test Connection call")
	require.Len(t, e.fake.Requests(), 1, "the PATCH only")
	assert.Equal(t, "PATCH", e.fake.Requests()[0].Method)
}

func TestVerifyErrors(t *testing.T) {
	cases := []struct {
		name   string
		block  string
		setup  func(*rivergenfake.Server)
		code   string
		retry  bool
		status int
		want   string
	}{
		{"not found", "data_source_id: 5", nil, core.CodeNotFound, false, 404, "data source 5 not found"},
		{"forbidden", "data_source_id: 1", func(f *rivergenfake.Server) { f.SetOrganizationMember(false) }, core.CodeForbidden, false, 403, "not a member of any RiverGen organization"},
		{"rate limited", "data_source_id: 1", func(f *rivergenfake.Server) { f.SetFault(fault(429, ``, "Retry-After", "2")) }, core.CodeRateLimited, true, 429, "HTTP 429"},
		{"server error", "data_source_id: 1", func(f *rivergenfake.Server) { f.SetFault(fault(503, `{"detail":"maintenance"}`)) }, core.CodeVendorError, true, 503, "maintenance"},
		{"unreadable 200", "data_source_id: 1", func(f *rivergenfake.Server) { f.SetFault(fault(200, `<html>ok</html>`)) }, core.CodeBadResponse, false, 200, "gave no data.connection_successful: <html>ok</html>"},
		{"200 without verdict", "data_source_id: 1", func(f *rivergenfake.Server) { f.SetFault(fault(200, `{"success":true,"data":{}}`)) }, core.CodeBadResponse, false, 200, "no data.connection_successful"},
		{"200 success false", "data_source_id: 1", func(f *rivergenfake.Server) {
			f.SetFault(fault(200, `{"success":false,"error":{"code":"TEST_FAILED","message":"driver missing"}}`))
		}, core.CodeVerificationFailed, false, 200, "TEST_FAILED: driver missing"},
		{"validation", "data_source_id: 1\ntest_timeout_seconds: 2", func(f *rivergenfake.Server) {
			f.SetFault(fault(422, `{"success":false,"error":{"code":"VALIDATION_ERROR","message":"Invalid request body","details":[{"field":"timeout_seconds","message":"must be at least 5"}]}}`))
		}, core.CodeRejected, false, 422, "VALIDATION_ERROR: Invalid request body (timeout_seconds: must be at least 5)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testToken)
			if tc.setup != nil {
				tc.setup(e.fake)
			}
			v, retry, err := e.target(t, tc.block).Verify(context.Background(), core.VerifyRequest{})
			ce := coreErr(t, err)
			assert.False(t, v.Verified)
			assert.Equal(t, tc.retry, retry)
			assert.Equal(t, tc.code, ce.Code)
			assert.Equal(t, tc.status, ce.VendorStatus)
			assert.Contains(t, ce.Message, tc.want)
			if tc.code == core.CodeRateLimited {
				assert.Equal(t, 2*time.Second, ce.RetryAfter)
			}
		})
	}
}

// TestSSHTunnelRule: every RiverGen data source has the SSH fields (ssh_private_key,
// ssh_passphrase in the credentials PATCH), so a credential's ssh_tunnel goes to it and is
// stored; a credential without one sends no SSH field and leaves the stored key as it was.
func TestSSHTunnelRule(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetCredentials(1, rivergenfake.Credentials{Username: "olduser", Password: "old-pw", SSHPrivateKey: "old-ssh", SSHPassphrase: "old-pass"})
	a := e.target(t, "data_source_id: 1")

	withTunnel := password(pw1)
	withTunnel.SSHTunnel = &core.SSHTunnel{PrivateKey: core.NewSecret(sshKey1), Passphrase: core.NewSecret(sshPass1)}
	req, err := a.Build(withTunnel)
	require.NoError(t, err)
	res, err := adaptertest.Deliver(context.Background(), a, req)
	require.NoError(t, err)
	assert.True(t, res.Verify.Verified)
	got, _ := e.fake.Credentials(1)
	assert.Equal(t, sshKey1, got.SSHPrivateKey)
	assert.Equal(t, sshPass1, got.SSHPassphrase)

	e.fake.Reset()
	_, err = send(t, a, password("s3cr3t-pw-no-tunnel"))
	require.NoError(t, err)
	body := string(e.fake.Requests()[0].Body)
	assert.NotContains(t, body, "ssh_", "no SSH field without an ssh_tunnel")
	got, _ = e.fake.Credentials(1)
	assert.Equal(t, sshKey1, got.SSHPrivateKey, "the stored SSH key is left as it was")
	assert.Equal(t, "s3cr3t-pw-no-tunnel", got.Password)
}
