package rivergenfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
)

type fakeAnswer struct {
	status int
	body   map[string]any
}

// call sends a raw request to the fake.
func call(t *testing.T, e *env, method, path, token, contentType, body string) fakeAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return fakeAnswer{resp.StatusCode, out}
}

func errCode(a fakeAnswer) string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestFakeRejects(t *testing.T) {
	const cred = "/api/v1/data-sources/1/credentials"
	const test = "/api/v1/data-sources/1/test"
	const js = "application/json"
	cases := []struct {
		name                             string
		method, path, token, ctype, body string
		status                           int
		code                             string
		detail                           string
	}{
		{"missing token", "PATCH", cred, "", js, `{"password":"x"}`, 401, "UNAUTHORIZED", ""},
		{"wrong token", "PATCH", cred, "nope", js, `{"password":"x"}`, 401, "UNAUTHORIZED", ""},
		{"wrong token on test", "POST", test, "nope", "", ``, 401, "UNAUTHORIZED", ""},
		{"unknown id", "PATCH", "/api/v1/data-sources/42/credentials", testToken, js, `{"password":"x"}`, 404, "NOT_FOUND", ""},
		{"unknown id on test", "POST", "/api/v1/data-sources/42/test", testToken, "", ``, 404, "NOT_FOUND", ""},
		{"non-integer id", "PATCH", "/api/v1/data-sources/abc/credentials", testToken, js, `{"password":"x"}`, 422, "VALIDATION_ERROR", "data_source_id"},
		{"unknown endpoint", "PATCH", "/api/v1/data-sources/1/secrets", testToken, js, `{}`, 404, "NOT_FOUND", ""},
		{"wrong method", "PUT", cred, testToken, js, `{"password":"x"}`, 405, "METHOD_NOT_ALLOWED", ""},
		{"wrong content type", "PATCH", cred, testToken, "text/plain", `{"password":"x"}`, 400, "BAD_REQUEST", ""},
		{"missing content type", "PATCH", cred, testToken, "", `{"password":"x"}`, 400, "BAD_REQUEST", ""},
		{"non-JSON", "PATCH", cred, testToken, js, `password=x`, 400, "BAD_REQUEST", ""},
		{"trailing data", "PATCH", cred, testToken, js, `{"password":"x"} {}`, 400, "BAD_REQUEST", ""},
		{"empty body", "PATCH", cred, testToken, js, ``, 400, "BAD_REQUEST", ""},
		{"unknown field", "PATCH", cred, testToken, js, `{"password":"x","host":"db"}`, 422, "VALIDATION_ERROR", "host"},
		{"wrong type", "PATCH", cred, testToken, js, `{"password":123}`, 422, "VALIDATION_ERROR", "password"},
		{"null value", "PATCH", cred, testToken, js, `{"api_key":null}`, 422, "VALIDATION_ERROR", "api_key"},
		{"bool as string", "PATCH", cred, testToken, js, `{"rotate_credentials":"true"}`, 422, "VALIDATION_ERROR", "rotate_credentials"},
		{"array body", "PATCH", cred, testToken, js, `[]`, 422, "VALIDATION_ERROR", "body"},
		{"test unknown field", "POST", test, testToken, js, `{"query":"SELECT 1"}`, 422, "VALIDATION_ERROR", "query"},
		{"test timeout as string", "POST", test, testToken, js, `{"timeout_seconds":"10"}`, 422, "VALIDATION_ERROR", "timeout_seconds"},
		{"test timeout fractional", "POST", test, testToken, js, `{"timeout_seconds":1.5}`, 422, "VALIDATION_ERROR", "timeout_seconds"},
		{"test timeout zero", "POST", test, testToken, js, `{"timeout_seconds":0}`, 422, "VALIDATION_ERROR", "timeout_seconds"},
		{"test wrong content type", "POST", test, testToken, "text/plain", `{}`, 400, "BAD_REQUEST", ""},
		{"test wrong method", "GET", test, testToken, "", ``, 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake.SetCredentials(1, rivergenfake.Credentials{Password: "old-pw"})
			got := call(t, e, tc.method, tc.path, tc.token, tc.ctype, tc.body)
			assert.Equal(t, tc.status, got.status)
			assert.Equal(t, false, got.body["success"])
			assert.Equal(t, tc.code, errCode(got))
			if tc.detail != "" {
				e, _ := got.body["error"].(map[string]any)
				details, _ := json.Marshal(e["details"])
				assert.Contains(t, string(details), `"field":"`+tc.detail+`"`)
			}
			c, _ := e.fake.Credentials(1)
			assert.Equal(t, rivergenfake.Credentials{Password: "old-pw"}, c, "a refused request changes nothing")
			assert.Equal(t, 0, e.fake.TestCount(1))
		})
	}
}

func TestFakeAccepts(t *testing.T) {
	e := newEnv(t)
	got := call(t, e, "PATCH", "/api/v1/data-sources/1/credentials", testToken, "application/json; charset=utf-8",
		`{"username":"newuser","password":"newpassword","rotate_credentials":false}`)
	assert.Equal(t, 200, got.status)
	assert.Equal(t, true, got.body["success"])
	assert.Equal(t, "Credentials updated successfully", got.body["message"])
	data, _ := got.body["data"].(map[string]any)
	assert.Equal(t, float64(1), data["data_source_id"])
	assert.NotEmpty(t, data["credentials_updated_at"])
	c, _ := e.fake.Credentials(1)
	assert.Equal(t, "newuser", c.Username)
	assert.Equal(t, "newpassword", c.Password)
	assert.Equal(t, 0, c.Rotations)

	// {} is a valid (empty) partial update.
	got = call(t, e, "PATCH", "/api/v1/data-sources/1/credentials", testToken, "application/json", `{}`)
	assert.Equal(t, 200, got.status)
	c, _ = e.fake.Credentials(1)
	assert.Equal(t, "newpassword", c.Password)
	assert.Equal(t, 2, c.Updates)

	// Test Connection: no body, {} and a full body are all fine; it answers 200 on failure too.
	for _, body := range []string{``, `{}`, `{"test_query":"SELECT 1","timeout_seconds":10}`} {
		ct := "application/json"
		if body == "" {
			ct = ""
		}
		got = call(t, e, "POST", "/api/v1/data-sources/1/test", testToken, ct, body)
		assert.Equal(t, 200, got.status, body)
		data, _ = got.body["data"].(map[string]any)
		assert.Equal(t, true, data["connection_successful"])
		assert.Nil(t, data["error_code"])
	}
	e.fake.SetConnectionOK(1, false, "TIMEOUT", "connection timed out")
	got = call(t, e, "POST", "/api/v1/data-sources/1/test", testToken, "", ``)
	assert.Equal(t, 200, got.status)
	data, _ = got.body["data"].(map[string]any)
	assert.Equal(t, false, data["connection_successful"])
	assert.Equal(t, "TIMEOUT", data["error_code"])
	assert.Equal(t, "connection timed out", data["error_message"])
	assert.Equal(t, 4, e.fake.TestCount(1))

	// A database password: Test Connection logs in with the stored one.
	e.fake.SetDatabasePassword(1, "newpassword")
	got = call(t, e, "POST", "/api/v1/data-sources/1/test", testToken, "", ``)
	data, _ = got.body["data"].(map[string]any)
	assert.Equal(t, true, data["connection_successful"], "the stored password is the database's")
	e.fake.SetDatabasePassword(1, "changed-at-the-database")
	got = call(t, e, "POST", "/api/v1/data-sources/1/test", testToken, "", ``)
	data, _ = got.body["data"].(map[string]any)
	assert.Equal(t, false, data["connection_successful"])
	assert.Equal(t, "AUTHENTICATION_FAILED", data["error_code"])
}

func TestFakeUnknownSourceHasNoCredentials(t *testing.T) {
	f := rivergenfake.New("t")
	_, ok := f.Credentials(9)
	assert.False(t, ok)
	f.AddDataSource(9)
	c, ok := f.Credentials(9)
	assert.True(t, ok)
	assert.Equal(t, rivergenfake.Credentials{}, c)
}
