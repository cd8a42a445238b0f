package feltfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/golden"
)

// call sends a raw request to the fake and returns the status and body.
func call(t *testing.T, e *env, method, path, token, contentType, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.server.URL+path, rd)
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
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// specResponseSchema returns the schema of an operation's answer with the given status.
func specResponseSchema(t *testing.T, path, method string, status int) map[string]any {
	t.Helper()
	s := mustSpec()
	paths := s.doc["paths"].(map[string]any)
	op := paths[path].(map[string]any)[method].(map[string]any)
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s has no %d answer in the spec", method, path, status)
	}
	return resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
}

// checkAnswer validates an answer of the fake against the spec (the embedded validator; the
// contract test does it again with kin-openapi).
func checkAnswer(t *testing.T, specPath, method string, status int, body []byte) {
	t.Helper()
	v, err := decodeJSON(body)
	if err != nil {
		t.Fatalf("answer is not JSON: %s", body)
	}
	if errs := mustSpec().validate(specResponseSchema(t, specPath, method, status), v, ""); len(errs) > 0 {
		t.Errorf("%s %s %d answer does not match the spec: %v\n%s", method, specPath, status, errs, body)
	}
}

const (
	specShow       = "/api/v2/sources/{source_id}"
	specUpdate     = "/api/v2/sources/{source_id}/update"
	specSync       = "/api/v2/sources/{source_id}/sync"
	specCredUpdate = "/api/v2/sources/{source_id}/credentials/{credential_id}/update"
)

func TestFakeRejectsBadToken(t *testing.T) {
	e := seeded(t)
	for _, tok := range []string{"", "wrong"} {
		for _, r := range []struct{ method, path, specPath string }{
			{"GET", "/api/v2/sources/src_pg", specShow},
			{"POST", "/api/v2/sources/src_pg/update", specUpdate},
			{"POST", "/api/v2/sources/src_pg/sync", specSync},
			{"POST", "/api/v2/sources/src_sf/credentials/cred_kp/update", specCredUpdate},
		} {
			status, body := call(t, e, r.method, r.path, tok, "application/json", `{"connection":{"type":"postgresql","password":"x"}}`)
			if status != http.StatusUnauthorized || !strings.Contains(string(body), `"header":"authorization"`) {
				t.Errorf("token %q %s %s: %d %s", tok, r.method, r.path, status, body)
			}
			checkAnswer(t, r.specPath, strings.ToLower(r.method), status, body)
		}
	}
	if conn, _ := e.fake.Connection("src_pg"); conn["password"] != nil {
		t.Error("unauthorized update was applied")
	}
	if e.fake.Syncs("src_pg") != 0 || e.fake.SyncStatus("src_pg") != "completed" {
		t.Error("an unauthorized request started a sync")
	}
}

func TestFakeRejectsUnknownIDs(t *testing.T) {
	e := seeded(t)
	cases := []struct{ method, path, specPath, body, param string }{
		{"GET", "/api/v2/sources/nope", specShow, "", "source_id"},
		{"POST", "/api/v2/sources/nope/update", specUpdate, `{"connection":{"type":"postgresql","password":"x"}}`, "source_id"},
		{"POST", "/api/v2/sources/nope/sync", specSync, "", "source_id"},
		{"POST", "/api/v2/sources/nope/credentials/cred_kp/update", specCredUpdate, `{"credential":{"type":"key_pair","private_key":"x"}}`, "source_id"},
		{"POST", "/api/v2/sources/src_sf/credentials/nope/update", specCredUpdate, `{"credential":{"type":"key_pair","private_key":"x"}}`, "credential_id"},
	}
	for _, c := range cases {
		status, body := call(t, e, c.method, c.path, testToken, "application/json", c.body)
		if status != http.StatusNotFound || !strings.Contains(string(body), `"parameter":"`+c.param+`"`) {
			t.Errorf("%s %s: %d %s", c.method, c.path, status, body)
		}
		checkAnswer(t, c.specPath, strings.ToLower(c.method), status, body)
	}
	for _, p := range []string{"/api/v2/sources", "/api/v2/other", "/api/v2/sources/src_pg/sync/now", "/api/v2/sources/src_pg/credentials/cred_kp"} {
		if status, _ := call(t, e, "POST", p, testToken, "", ""); status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, status)
		}
	}
	if status, _ := call(t, e, "DELETE", "/api/v2/sources/src_pg", testToken, "", ""); status != http.StatusNotFound {
		t.Errorf("DELETE: %d, want 404 (not served)", status)
	}
	if status, _ := call(t, e, "GET", "/api/v2/sources/src_pg/sync", testToken, "", ""); status != http.StatusNotFound {
		t.Errorf("GET .../sync: %d, want 404 (Sync Source is a POST)", status)
	}
}

func TestFakeRejectsMalformedBodies(t *testing.T) {
	e := seeded(t)
	const cu = "/api/v2/sources/src_sf/credentials/cred_kp/update"
	const su = "/api/v2/sources/src_pg/update"
	cases := []struct {
		name, path, contentType, body, pointer, detail string
	}{
		{"content type", su, "text/plain", `{"connection":{"type":"postgresql","password":"x"}}`, "", "Unsupported Content-Type"},
		{"no content type", su, "", `{"connection":{"type":"postgresql","password":"x"}}`, "", "Unsupported Content-Type"},
		{"not json", su, "application/json", `{"connection":`, "", "Invalid JSON"},
		{"two values", su, "application/json", `{} {}`, "", "Invalid JSON"},
		{"not an object", su, "application/json", `[1]`, "", "Invalid object"},
		{"unknown top field", su, "application/json", `{"connection":{"type":"postgresql"},"extra":1}`, "/extra", "Unexpected field: extra"},
		{"unknown conn field", su, "application/json", `{"connection":{"type":"postgresql","pasword":"x"}}`, "/connection/pasword", "Unexpected field: pasword"},
		{"token on postgres", su, "application/json", `{"connection":{"type":"postgresql","token":"x"}}`, "/connection/token", "Unexpected field: token"},
		{"wrong type", su, "application/json", `{"connection":{"type":"postgresql","port":"5432"}}`, "/connection/port", "Invalid integer"},
		{"float port", su, "application/json", `{"connection":{"type":"postgresql","port":54.5}}`, "/connection/port", "Invalid integer"},
		{"unknown conn type", su, "application/json", `{"connection":{"type":"oracle","password":"x"}}`, "/connection/type", "Invalid value for enum"},
		{"missing conn type", su, "application/json", `{"connection":{"password":"x"}}`, "/connection/type", "Missing field: type"},
		{"null password", su, "application/json", `{"connection":{"type":"postgresql","password":null}}`, "/connection/password", "null value"},
		{"unknown cred field", cu, "application/json", `{"credential":{"type":"key_pair","private_key":"x","user":"u"}}`, "/credential/user", "Unexpected field: user"},
		{"cred not updatable", cu, "application/json", `{"credential":{"type":"databricks_pat","token":"x"}}`, "/credential/type", "Invalid value for enum"},
		{"header missing sensitive", cu, "application/json", `{"credential":{"type":"custom_headers","headers":[{"name":"a","value":"b"}]}}`, "/credential/headers/0/sensitive", "Missing field: sensitive"},
		{"bad use_case", cu, "application/json", `{"use_case":"other"}`, "/use_case", "Invalid value for enum"},
		{"type mismatch", cu, "application/json", `{"credential":{"type":"snowflake_pat","token":"x"}}`, "/credential/type", "does not match the credential's type key_pair"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := call(t, e, "POST", c.path, testToken, c.contentType, c.body)
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s, want 422", status, body)
			}
			specPath := specUpdate
			if c.path == cu {
				specPath = specCredUpdate
			}
			checkAnswer(t, specPath, "post", status, body)
			var er struct {
				Errors []struct {
					Title, Detail string
					Source        struct{ Pointer string }
				}
			}
			if err := json.Unmarshal(body, &er); err != nil || len(er.Errors) == 0 {
				t.Fatalf("answer %s", body)
			}
			found := false
			for _, x := range er.Errors {
				if x.Source.Pointer == c.pointer && strings.Contains(x.Detail, c.detail) && x.Title == "Unprocessable Entity" {
					found = true
				}
			}
			if !found {
				t.Errorf("answer %s has no error at %q with %q", body, c.pointer, c.detail)
			}
		})
	}
	if conn, _ := e.fake.Connection("src_pg"); len(conn) != 1 {
		t.Errorf("a refused update changed the connection: %v", conn)
	}
	if c, _ := e.fake.Credential("src_sf", "cred_kp"); c.Fields["private_key"] != "seeded-private-key" {
		t.Errorf("a refused update changed the credential: %v", c.Fields)
	}
}

func TestFakeAnswersMatchSpec(t *testing.T) {
	e := newEnv(t)
	types := []string{"abs_bucket", "bigquery", "databricks", "feature_server", "gcs_bucket", "lightning_server", "mssql",
		"postgresql", "redshift", "s3_bucket", "snowflake", "stac", "wfs", "wherobots", "wms_wmts"}
	for _, ct := range types {
		e.fake.AddSource("s_"+ct, ct)
		status, body := call(t, e, "GET", "/api/v2/sources/s_"+ct, testToken, "", "")
		if status != http.StatusOK {
			t.Fatalf("show %s: %d %s", ct, status, body)
		}
		checkAnswer(t, specShow, "get", status, body)
	}
	// After an update the Show answer holds the new non-secret fields, never a secret.
	status, body := call(t, e, "POST", "/api/v2/sources/s_postgresql/update", testToken, "application/json",
		`{"connection":{"type":"postgresql","host":"db.internal","port":5432,"user":"u","password":"s3cr3t-pw-9"},"name":"PG"}`)
	if status != http.StatusAccepted {
		t.Fatalf("update: %d %s", status, body)
	}
	checkAnswer(t, specUpdate, "post", status, body)
	for _, want := range []string{"completed", "syncing", "completed"} { // stale, running, done
		_, body = call(t, e, "GET", "/api/v2/sources/s_postgresql", testToken, "", "")
		checkAnswer(t, specShow, "get", http.StatusOK, body)
		if !strings.Contains(string(body), `"host":"db.internal"`) || strings.Contains(string(body), "s3cr3t") || !strings.Contains(string(body), `"sync_status":"`+want+`"`) {
			t.Errorf("show after update, want %s: %s", want, body)
		}
	}
	status, body = call(t, e, "POST", "/api/v2/sources/s_postgresql/sync", testToken, "", "")
	if status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", status, body)
	}
	checkAnswer(t, specSync, "post", status, body)

	for feltType := range seedFields {
		e.fake.AddCredential("s_stac", "c_"+feltType, feltType)
	}
	for _, body := range []string{
		`{"credential":{"type":"key_pair","private_key":"s3cr3t-1","private_key_passphrase":"s3cr3t-2"}}`,
		`{"credential":{"type":"snowflake_pat","token":"s3cr3t-1"}}`,
		`{"credential":{"type":"gcp_service_account_json","service_account_json":{"private_key":"s3cr3t-1"}}}`,
		`{"credential":{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r"}}`,
		`{"credential":{"type":"azure_storage_connection_string","connection_string":"s3cr3t-1"}}`,
		`{"credential":{"type":"custom_headers","headers":[{"name":"A","value":"s3cr3t-1","sensitive":true},{"name":"B","value":"plain","sensitive":false}]}}`,
	} {
		var probe struct{ Credential struct{ Type string } }
		_ = json.Unmarshal([]byte(body), &probe)
		status, answer := call(t, e, "POST", "/api/v2/sources/s_stac/credentials/c_"+probe.Credential.Type+"/update", testToken, "application/json", body)
		if status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", body, status, answer)
		}
		checkAnswer(t, specCredUpdate, "post", status, answer)
		if strings.Contains(string(answer), "s3cr3t") || (probe.Credential.Type != "aws_assume_role" && !strings.Contains(string(answer), Redacted)) {
			t.Errorf("credential answer not redacted: %s", answer)
		}
		if probe.Credential.Type == "custom_headers" && !strings.Contains(string(answer), `"value":"plain"`) {
			t.Errorf("non-sensitive header redacted: %s", answer)
		}
	}
}

// syncState is what Show Source says of a source's sync.
type syncState struct {
	Status string
	At     int64
}

func show(t *testing.T, e *env, id string) syncState {
	t.Helper()
	status, body := call(t, e, "GET", "/api/v2/sources/"+id, testToken, "", "")
	if status != http.StatusOK {
		t.Fatalf("show %s: %d %s", id, status, body)
	}
	checkAnswer(t, specShow, "get", status, body)
	var s struct {
		SyncStatus   string `json:"sync_status"`
		LastSyncedAt *int64 `json:"last_synced_at"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.LastSyncedAt == nil {
		t.Fatalf("show %s: %s", id, body)
	}
	return syncState{s.SyncStatus, *s.LastSyncedAt}
}

// TestFakeSyncJob: after Update Source or Sync Source, Show Source keeps the previous sync's
// status and last_synced_at for SetStalePolls answers (the job has not started), says syncing
// for SetSyncingPolls answers, then shows the outcome with a strictly greater last_synced_at.
func TestFakeSyncJob(t *testing.T) {
	for _, tc := range []struct {
		name           string
		stale, syncing int
		outcome        string
		start          func(t *testing.T, e *env)
	}{
		{"update, defaults", -1, -1, "completed", func(t *testing.T, e *env) {
			if status, body := call(t, e, "POST", "/api/v2/sources/src_pg/update", testToken, "application/json", `{"connection":{"type":"postgresql","password":"x"}}`); status != 202 {
				t.Fatalf("%d %s", status, body)
			}
		}},
		{"update, 3 stale, 2 syncing, failed", 3, 2, "failed", func(t *testing.T, e *env) {
			if status, body := call(t, e, "POST", "/api/v2/sources/src_pg/update", testToken, "application/json", `{"name":"renamed"}`); status != 202 {
				t.Fatalf("%d %s", status, body)
			}
		}},
		{"sync, no stale, no syncing", 0, 0, "completed", func(t *testing.T, e *env) {
			if status, body := call(t, e, "POST", "/api/v2/sources/src_pg/sync", testToken, "", ""); status != 202 {
				t.Fatalf("%d %s", status, body)
			}
		}},
		{"sync, 2 stale, 1 syncing", 2, 1, "completed", func(t *testing.T, e *env) {
			if status, body := call(t, e, "POST", "/api/v2/sources/src_pg/sync", testToken, "", ""); status != 202 {
				t.Fatalf("%d %s", status, body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := seeded(t)
			stale, syncing := 1, 1 // the defaults
			if tc.stale >= 0 {
				stale, syncing = tc.stale, tc.syncing
				e.fake.SetStalePolls(stale)
				e.fake.SetSyncingPolls(syncing)
			}
			e.fake.SetSyncOutcome("src_pg", tc.outcome)
			before := show(t, e, "src_pg")
			if before.Status != "completed" || before.At <= 0 {
				t.Fatalf("a new source shows %+v, want completed with a last_synced_at", before)
			}
			tc.start(t, e)
			for i := 0; i < stale; i++ {
				if got := show(t, e, "src_pg"); got != before {
					t.Fatalf("answer %d: %+v, want the previous sync's %+v (the job has not started)", i+1, got, before)
				}
			}
			for i := 0; i < syncing; i++ {
				if got := show(t, e, "src_pg"); got.Status != "syncing" || got.At != before.At {
					t.Fatalf("syncing answer %d: %+v", i+1, got)
				}
			}
			after := show(t, e, "src_pg")
			if after.Status != tc.outcome || after.At <= before.At {
				t.Fatalf("after the job: %+v, want %s with last_synced_at past %d", after, tc.outcome, before.At)
			}
			if again := show(t, e, "src_pg"); again != after || e.fake.Syncs("src_pg") != 1 {
				t.Errorf("the job did not end: %+v, %d syncs", again, e.fake.Syncs("src_pg"))
			}
		})
	}
}

// TestFakeCredentialUpdateStartsNoSync: Felt documents no sync after Update Source Credential.
func TestFakeCredentialUpdateStartsNoSync(t *testing.T) {
	e := seeded(t)
	e.fake.SetStalePolls(0)
	e.fake.SetSyncingPolls(0)
	before := show(t, e, "src_sf")
	status, body := call(t, e, "POST", "/api/v2/sources/src_sf/credentials/cred_kp/update", testToken, "application/json", `{"credential":{"type":"key_pair","private_key":"k2"}}`)
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	for i := 0; i < 3; i++ {
		if got := show(t, e, "src_sf"); got != before {
			t.Fatalf("answer %d after a credential update: %+v, want %+v unchanged", i+1, got, before)
		}
	}
	if e.fake.Syncs("src_sf") != 0 {
		t.Errorf("%d syncs after a credential update alone", e.fake.Syncs("src_sf"))
	}
	// Sync Source is what starts one.
	status, body = call(t, e, "POST", "/api/v2/sources/src_sf/sync", testToken, "", "")
	if status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", status, body)
	}
	checkAnswer(t, specSync, "post", status, body)
	if got := show(t, e, "src_sf"); got.At <= before.At || e.fake.Syncs("src_sf") != 1 {
		t.Errorf("after Sync Source: %+v, %d syncs", got, e.fake.Syncs("src_sf"))
	}
}

// TestFakeSyncSourceAnswer: Sync Source answers 202 with the source as it is now (the job has
// not started: the previous status), and refuses a body, which it does not document.
func TestFakeSyncSourceAnswer(t *testing.T) {
	e := seeded(t)
	before := show(t, e, "src_pg")
	status, body := call(t, e, "POST", "/api/v2/sources/src_pg/sync", testToken, "", "")
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	checkAnswer(t, specSync, "post", status, body)
	var ref struct {
		Type, ID, SyncStatus, ConnectionType string
		LastSyncedAt                         int64 `json:"last_synced_at"`
	}
	_ = json.Unmarshal(body, &ref)
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if raw["type"] != "source_reference" || raw["id"] != "src_pg" || raw["connection_type"] != "postgresql" ||
		raw["sync_status"] != before.Status || ref.LastSyncedAt != before.At {
		t.Errorf("answer %s, want the source reference as before the sync", body)
	}
	status, body = call(t, e, "POST", "/api/v2/sources/src_sf/sync", testToken, "application/json", `{"full":true}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "takes no request body") {
		t.Errorf("sync with a body: %d %s", status, body)
	}
	checkAnswer(t, specSync, "post", status, body)
	if e.fake.Syncs("src_sf") != 0 {
		t.Error("a refused sync request started a sync")
	}
}

// TestFakeSyncStampsIncrease: every finished sync has a last_synced_at greater than the one
// before, even several within one millisecond, and across sources.
func TestFakeSyncStampsIncrease(t *testing.T) {
	e := seeded(t)
	e.fake.SetStalePolls(0)
	e.fake.SetSyncingPolls(0)
	last := show(t, e, "src_pg").At
	for i := 0; i < 50; i++ {
		id := []string{"src_pg", "src_sf"}[i%2]
		e.fake.StartSync(id)
		got := show(t, e, id)
		if got.At <= last {
			t.Fatalf("sync %d: last_synced_at %d, not past %d", i, got.At, last)
		}
		last = got.At
	}
}

// TestFakeSyncRequestsWhileQueuedOrRunning: a request while a job is queued joins it; one while
// a job runs queues another after it.
func TestFakeSyncRequestsWhileQueuedOrRunning(t *testing.T) {
	e := seeded(t)
	e.fake.SetStalePolls(1)
	e.fake.SetSyncingPolls(1)
	e.fake.StartSync("src_pg")
	e.fake.StartSync("src_pg") // queued: joins
	show(t, e, "src_pg")       // stale
	if got := show(t, e, "src_pg"); got.Status != "syncing" {
		t.Fatalf("%+v, want syncing", got)
	}
	e.fake.StartSync("src_pg") // running: another follows
	first := show(t, e, "src_pg")
	if first.Status != "completed" || e.fake.Syncs("src_pg") != 1 {
		t.Fatalf("%+v after %d syncs", first, e.fake.Syncs("src_pg"))
	}
	if got := show(t, e, "src_pg"); got.Status != "syncing" {
		t.Fatalf("%+v: the sync asked for while one ran did not follow it", got)
	}
	if got := show(t, e, "src_pg"); got.Status != "completed" || got.At <= first.At || e.fake.Syncs("src_pg") != 2 {
		t.Fatalf("%+v after %d syncs", got, e.fake.Syncs("src_pg"))
	}
}

func TestFakeSeedingPanics(t *testing.T) {
	f := New(testToken)
	for name, fn := range map[string]func(){
		"unknown connection type": func() { f.AddSource("s", "oracle") },
		"unknown source":          func() { f.AddCredential("nope", "c", "key_pair") },
		"unknown credential type": func() { f.AddSource("s", "snowflake"); f.AddCredential("s", "c", "password") },
		"bad outcome":             func() { f.AddSource("s", "snowflake"); f.SetSyncOutcome("s", "done") },
		"sync of unknown source":  func() { f.StartSync("nope") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

// The embedded spec and the contract test's copy are the vendor's document, unchanged.
func TestSpecCopies(t *testing.T) {
	root := golden.Root(t)
	td, err := os.ReadFile(filepath.Join(root, "testdata", "felt", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(td, OpenAPISpec()) {
		t.Error("adapters/felt/feltfake/openapi.json and testdata/felt/openapi.json differ")
	}
	if shared, err := os.ReadFile(filepath.Join(root, "..", "shared", "specs", "felt-sources-openapi.json")); err == nil && !bytes.Equal(shared, td) {
		t.Error("testdata/felt/openapi.json differs from ../shared/specs/felt-sources-openapi.json")
	}
}
