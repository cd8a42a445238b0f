package databrainfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// raw sends a request straight to the fake and returns status and the decoded error code.
func raw(t *testing.T, e *env, method, path, token, contentType, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
		Name  string                         `json:"name"`
	}
	_ = json.Unmarshal(b, &env)
	if resp.StatusCode == 200 {
		return 200, "", env.Name
	}
	return resp.StatusCode, env.Error.Code, env.Error.Message
}

// updatePath is seed 002's endpoint.
const updatePath = "/api/v2/datasource"

const goodPG = `{"datasourceType":"postgres","credentials":{"name":"pg","host":"h","port":5432,"username":"u","password":"p","database":"d","schema":"s"}}`

func TestFakeAuth(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	for _, tok := range []string{"", "wrong"} {
		status, code, _ := raw(t, e, "PUT", updatePath, tok, "application/json", goodPG)
		if status != 401 || code != "AUTHENTICATION_ERROR" {
			t.Errorf("token %q: %d %s", tok, status, code)
		}
	}
	status, _, name := raw(t, e, "PUT", updatePath, testToken, "application/json; charset=utf-8", goodPG)
	if status != 200 || name != "pg" {
		t.Errorf("good request: %d %q", status, name)
	}
}

func TestFakeRoutes(t *testing.T) {
	e := newEnv(t)
	if status, _, _ := raw(t, e, "POST", updatePath, testToken, "application/json", goodPG); status != 405 {
		t.Errorf("POST: %d", status)
	}
	if status, _, _ := raw(t, e, "PUT", "/api/v2/datasources", testToken, "application/json", goodPG); status != 404 {
		t.Errorf("wrong path: %d", status)
	}
}

func TestFakeNotFound(t *testing.T) {
	e := newEnv(t)
	status, code, msg := raw(t, e, "PUT", updatePath, testToken, "application/json", goodPG)
	if status != 404 || code != "DATASOURCE_NOT_FOUND" || !strings.Contains(msg, `"pg"`) {
		t.Errorf("%d %s %s", status, code, msg)
	}
}

func TestFakeRejectsMalformed(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	e.fake.AddDatasource("sf", "snowflake")
	e.fake.AddDatasource("es", "elasticsearch")
	cases := []struct {
		name, ct, body, contains string
	}{
		{"wrong content type", "text/plain", goodPG, "Content-Type must be application/json"},
		{"no content type", "", goodPG, "Content-Type"},
		{"not json", "application/json", `{"datasourceType":`, "JSON object"},
		{"array", "application/json", `[]`, "JSON object"},
		{"two documents", "application/json", goodPG + goodPG, "single JSON object"},
		{"unknown top-level field", "application/json", `{"datasourceType":"postgres","credentials":{"name":"pg"},"verify":true}`, "unknown field(s): verify"},
		{"no datasourceType", "application/json", `{"credentials":{"name":"pg"}}`, "datasourceType is required"},
		{"datasourceType number", "application/json", `{"datasourceType":1,"credentials":{"name":"pg"}}`, "datasourceType is required"},
		{"no credentials", "application/json", `{"datasourceType":"postgres"}`, "credentials is required"},
		{"no name", "application/json", `{"datasourceType":"postgres","credentials":{"host":"h"}}`, "credentials.name is required"},
		{"unknown credentials field", "application/json", strings.Replace(goodPG, `"schema":"s"`, `"schema":"s","hostname":"x"`, 1), "credentials.hostname is not a field of postgres"},
		{"port as string", "application/json", strings.Replace(goodPG, `5432`, `"5432"`, 1), "credentials.port must be a number"},
		{"port out of range", "application/json", strings.Replace(goodPG, `5432`, `65536`, 1), "between 1 and 65535"},
		{"missing password", "application/json", strings.Replace(goodPG, `"password":"p",`, ``, 1), "credentials.password is required"},
		{"sslMode string", "application/json", strings.Replace(goodPG, `"schema":"s"`, `"schema":"s","sslMode":"yes"`, 1), "credentials.sslMode must be a boolean"},
		{"ssh enable without fields", "application/json", strings.Replace(goodPG, `"schema":"s"`, `"schema":"s","sshTunnel":"enable"`, 1), "credentials.sshHost is required when sshTunnel"},
		{"snowflake key pair without key", "application/json", `{"datasourceType":"snowflake","credentials":{"name":"sf","host":"h","username":"u","role":"r","warehouse":"w","database":"d","schema":"s","credentials":"Key-pair authentication","password":"p"}}`, "credentials.privateKey is required"},
		{"es self-managed without url", "application/json", `{"datasourceType":"elasticsearch","credentials":{"name":"es","server_type":"self-managed","username":"u","password":"p"}}`, "credentials.server_url is required"},
		{"tenancy not an object", "application/json", strings.TrimSuffix(goodPG, "}") + `,"tenancySettings":"TABLE"}`, "tenancySettings must be an object"},
		{"tenancy TABLE incomplete", "application/json", strings.TrimSuffix(goodPG, "}") + `,"tenancySettings":{"tenancyLevel":"TABLE"}}`, "tenancySettings.clientColumnType is required"},
		{"type mismatch", "application/json", strings.Replace(goodPG, `"name":"pg"`, `"name":"sf"`, 1), "must match the existing datasource type (snowflake)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := raw(t, e, "PUT", updatePath, testToken, tc.ct, tc.body)
			if status != 400 || code != "INVALID_REQUEST_BODY" || !strings.Contains(msg, tc.contains) {
				t.Errorf("%d %s %q, want 400 INVALID_REQUEST_BODY containing %q", status, code, msg, tc.contains)
			}
		})
	}
	for _, n := range []string{"pg", "sf", "es"} {
		if _, ok := e.fake.Credentials(n); ok {
			t.Errorf("%s changed by a rejected request", n)
		}
	}
}

func TestFakeTenancyKeptWhenOmitted(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDatasource("pg", "postgres")
	withTenancy := strings.TrimSuffix(goodPG, "}") + `,"tenancySettings":{"tenancyLevel":"DATABASE"}}`
	if status, code, msg := raw(t, e, "PUT", updatePath, testToken, "application/json", withTenancy); status != 200 {
		t.Fatalf("%d %s %s", status, code, msg)
	}
	if status, _, _ := raw(t, e, "PUT", updatePath, testToken, "application/json", goodPG); status != 200 {
		t.Fatal(status)
	}
	ts, ok := e.fake.TenancySettings("pg")
	if !ok || ts["tenancyLevel"] != "DATABASE" {
		t.Errorf("tenancy after an update without it: %v %v", ts, ok)
	}
	if e.fake.Updates("pg") != 2 {
		t.Errorf("updates = %d", e.fake.Updates("pg"))
	}
}

func TestFakeSeedingPanicsOnMistakes(t *testing.T) {
	f := New("t")
	mustPanic(t, "unknown type", func() { f.AddDatasource("x", "oracle") })
	mustPanic(t, "unknown datasource", func() { f.SetCredentialTestFails("nope", true) })
	f.AddDatasource("x", "postgres")
	mustPanic(t, "unknown code", func() { f.FailUpdates("x", "NOPE") })
	f.FailUpdates("x", "SCHEMA_CACHE_FAILED")
	f.FailUpdates("x", "")
	if _, ok := f.Credentials("x"); ok {
		t.Error("a new datasource has credentials")
	}
	if f.Updates("nope") != 0 {
		t.Error("updates of an unknown datasource")
	}
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	fn()
}
