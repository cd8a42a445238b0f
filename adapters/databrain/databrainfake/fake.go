package databrainfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/credsync/credsync/adapters/fakeutil"
)

// Server is an in-memory Databrain serving PUT /api/v2/datasource as seed 002 describes it, as
// strictly as the real one: the bearer service token, Content-Type application/json, the full
// credentials structure of the datasource's type, tenancySettings, and a connection test. It
// checks bodies with its own reading of seed 002 (schema.go), never with the adapter's table: it
// is a second, independent reading of the vendor document, so a wrong entry in the adapter's
// table makes the fake refuse the adapter's request instead of passing both. It keeps what each
// datasource now holds. Errors use the body credsync assumes for Databrain:
// {"error": {"code": "...", "message": "..."}}.
//
// Seed it with AddDatasource; steer it with SetCredentialTestFails and FailUpdates; read it with
// Credentials, TenancySettings and Updates. Faults (429, hangs...) go through SetFault. It is safe
// for concurrent use.
type Server struct {
	*fakeutil.Base

	mu  sync.Mutex
	dss map[string]*fakeDatasource
}

type fakeDatasource struct {
	dsType    string
	creds     map[string]any // as last received, secrets in clear; nil until the first update
	tenancy   map[string]any
	testFails bool
	failCode  string
	updates   int
}

// New returns a fake Databrain accepting the service token token.
func New(token string) *Server {
	return &Server{Base: fakeutil.NewBase(token), dss: map[string]*fakeDatasource{}}
}

// AddDatasource creates (or replaces) the datasource name of type datasourceType, as if it had
// been created in Databrain before. It panics on a datasourceType Databrain does not have.
func (f *Server) AddDatasource(name, datasourceType string) {
	if _, ok := wireTypes[datasourceType]; !ok {
		panic(fmt.Sprintf("databrain fake: unknown datasourceType %q", datasourceType))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dss[name] = &fakeDatasource{dsType: datasourceType}
}

// SetCredentialTestFails makes Databrain's connection test for the datasource fail (fails true:
// updates answer 400 CREDENTIAL_TEST_FAILED and change nothing) or pass again (false).
func (f *Server) SetCredentialTestFails(name string, fails bool) {
	f.with(name, func(d *fakeDatasource) { d.testFails = fails })
}

// FailUpdates makes every valid update of the datasource answer the given Databrain error code
// with its documented status (e.g. "SCHEMA_CACHE_FAILED" → 500), changing nothing; "" clears.
func (f *Server) FailUpdates(name, code string) {
	if _, ok := errorStatus[code]; code != "" && !ok {
		panic(fmt.Sprintf("databrain fake: unknown error code %q", code))
	}
	f.with(name, func(d *fakeDatasource) { d.failCode = code })
}

// Credentials returns a copy of the credentials object the datasource holds (secrets in clear,
// numbers as json.Number), and false if the datasource does not exist or was never updated.
func (f *Server) Credentials(name string) (map[string]any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.dss[name]
	if !ok || d.creds == nil {
		return nil, false
	}
	return copyMap(d.creds), true
}

// TenancySettings returns a copy of the datasource's tenancy settings, false if it has none.
func (f *Server) TenancySettings(name string) (map[string]any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.dss[name]
	if !ok || d.tenancy == nil {
		return nil, false
	}
	return copyMap(d.tenancy), true
}

// Updates returns how many updates of the datasource succeeded.
func (f *Server) Updates(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dss[name]; ok {
		return d.updates
	}
	return 0
}

func (f *Server) with(name string, fn func(*fakeDatasource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.dss[name]
	if !ok {
		panic(fmt.Sprintf("databrain fake: no datasource %q (call AddDatasource first)", name))
	}
	fn(d)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// errorStatus is seed 002's error code table.
var errorStatus = map[string]int{
	"INVALID_REQUEST_BODY":           http.StatusBadRequest,
	"DATASOURCE_NAME_ERROR":          http.StatusBadRequest,
	"CREDENTIAL_TEST_FAILED":         http.StatusBadRequest,
	"AUTHENTICATION_ERROR":           http.StatusUnauthorized,
	"SCHEMA_CACHE_FAILED":            http.StatusInternalServerError,
	"DATASOURCE_NOT_FOUND":           http.StatusNotFound,
	"TENANCY_SETTINGS_CREATE_FAILED": http.StatusInternalServerError,
	"TENANCY_SETTINGS_UPDATE_FAILED": http.StatusInternalServerError,
	"INTERNAL_SERVER_ERROR":          http.StatusInternalServerError,
}

var errorText = map[string]string{
	"SCHEMA_CACHE_FAILED":            "Schema caching failed",
	"TENANCY_SETTINGS_CREATE_FAILED": "Failed to create tenancy settings for the datasource",
	"TENANCY_SETTINGS_UPDATE_FAILED": "Failed to update existing tenancy settings",
	"INTERNAL_SERVER_ERROR":          "Server error occurred",
	"DATASOURCE_NAME_ERROR":          "Datasource not found",
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	fakeutil.WriteJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func invalid(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, "INVALID_REQUEST_BODY", fmt.Sprintf(format, args...))
}

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := f.Begin(w, r)
	if !ok {
		return
	}
	if r.URL.Path != wireUpdatePath {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint")
		return
	}
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use PUT")
		return
	}
	if !f.Authorized(r) {
		writeError(w, http.StatusUnauthorized, "AUTHENTICATION_ERROR", "Invalid or missing service token")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		invalid(w, "Content-Type must be application/json")
		return
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var req map[string]any
	if err := dec.Decode(&req); err != nil || req == nil {
		invalid(w, "request body must be a JSON object")
		return
	}
	if dec.More() {
		invalid(w, "request body must be a single JSON object")
		return
	}
	var unknown []string
	for k := range req {
		if k != "datasourceType" && k != "credentials" && k != "tenancySettings" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		invalid(w, "unknown field(s): %s", strings.Join(unknown, ", "))
		return
	}
	dsType, ok := req["datasourceType"].(string)
	if !ok || dsType == "" {
		invalid(w, "datasourceType is required and must be a string")
		return
	}
	creds, ok := req["credentials"].(map[string]any)
	if !ok {
		invalid(w, "credentials is required and must be an object")
		return
	}
	name, ok := creds["name"].(string)
	if !ok || name == "" {
		invalid(w, "credentials.name is required and must be a string")
		return
	}
	var tenancy map[string]any
	if raw, present := req["tenancySettings"]; present {
		if tenancy, ok = raw.(map[string]any); !ok {
			invalid(w, "tenancySettings must be an object")
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	d, exists := f.dss[name]
	if !exists {
		writeError(w, http.StatusNotFound, "DATASOURCE_NOT_FOUND", fmt.Sprintf("The specified datasource %q does not exist", name))
		return
	}
	if dsType != d.dsType {
		invalid(w, "datasourceType must match the existing datasource type (%s)", d.dsType)
		return
	}
	if ps := checkCredentials(dsType, creds); len(ps) > 0 {
		invalid(w, "%s", joinProblems("credentials.", ps))
		return
	}
	if tenancy != nil {
		if ps := checkTenancy(tenancy); len(ps) > 0 {
			invalid(w, "%s", joinProblems("", ps))
			return
		}
	}
	if d.failCode != "" {
		msg := errorText[d.failCode]
		if msg == "" {
			msg = "update failed"
		}
		writeError(w, errorStatus[d.failCode], d.failCode, msg)
		return
	}
	if d.testFails {
		writeError(w, http.StatusBadRequest, "CREDENTIAL_TEST_FAILED", "Connection test failed: could not connect to the datasource with the given credentials")
		return
	}
	d.creds = copyMap(creds)
	if tenancy != nil {
		d.tenancy = copyMap(tenancy)
	}
	d.updates++
	fakeutil.WriteJSON(w, http.StatusOK, map[string]any{"name": name})
}

// joinProblems puts prefix before each message that names a field of "credentials".
func joinProblems(prefix string, ps []string) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		if !strings.HasPrefix(p, "datasourceType ") && !strings.HasPrefix(p, "tenancySettings.") {
			p = prefix + p
		}
		parts[i] = p
	}
	return strings.Join(parts, "; ")
}
