package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

const (
	token     = "test-api-token-0123456789"
	theSecret = "Sup3r-S3cret-value-for-api"
)

// rejectedEcho is how the failing stand-in fails: the vendor's answer echoes the secret, which
// the engine must scrub.
func rejectedEcho() *core.Error {
	return &core.Error{Code: core.CodeRejected, Message: `HTTP 400: bad password "` + theSecret + `"`, VendorStatus: 400}
}

type env struct {
	srv     *httptest.Server
	pw, tok *standin.Adapter
	failing *standin.Adapter
	logs    *observer.ObservedLogs
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pw := standin.New(core.TypePassword)
	pw2 := standin.New(core.TypePassword, core.TypeToken)
	failing := standin.New(core.TypePassword)
	failing.FailWith(rejectedEcho())
	obs, logs := observer.New(zap.DebugLevel)
	log := zap.New(obs)
	kr, err := keyring.Generate()
	require.NoError(t, err)
	eng, err := core.NewEngine(core.EngineConfig{
		Sealer:    kr,
		Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources: []*core.Source{
			{Name: "db", Targets: []*core.Target{{Name: "a", Platform: "p", Vendor: "fake", Adapter: pw}, {Name: "b", Platform: "p", Vendor: "fake", Adapter: pw2}}},
			{Name: "flaky", Targets: []*core.Target{{Name: "x", Platform: "p", Vendor: "fake", Adapter: failing}}},
		},
		Store: memstore.New(), Logger: log,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(eng, []api.Token{{Name: "job", Token: core.NewSecret(token)}}, log).Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return &env{srv: srv, pw: pw, tok: pw2, failing: failing, logs: logs}
}

type call struct {
	method, path, body string
	header             map[string]string
	noAuth             bool
}

func (e *env) do(t *testing.T, c call) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, e.srv.URL+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if !c.noAuth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotContains(t, string(b), theSecret, "a response leaked the secret")
	return resp, b
}

func errCode(t *testing.T, b []byte) api.ErrorDetail {
	t.Helper()
	var eb api.ErrorBody
	require.NoError(t, json.Unmarshal(b, &eb), "error body %s", b)
	require.NotEmpty(t, eb.Error.Code)
	require.NotEmpty(t, eb.Error.Message)
	return eb.Error
}

func pwBody(source string) string {
	return `{"source":"` + source + `","credential":{"type":"password","password":"` + theSecret + `"}}`
}

func TestRefusedRequestsReachNoVendor(t *testing.T) {
	e := newEnv(t)
	big := `{"source":"db","credential":{"type":"password","password":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}}`
	cases := []struct {
		name   string
		c      call
		status int
		code   string
		field  string
	}{
		{"no token", call{method: "POST", path: "/v1/rotations", body: pwBody("db"), noAuth: true}, 401, "unauthorized", ""},
		{"wrong token", call{method: "POST", path: "/v1/rotations", body: pwBody("db"), noAuth: true, header: map[string]string{"Authorization": "Bearer nope"}}, 401, "unauthorized", ""},
		{"basic auth", call{method: "POST", path: "/v1/rotations", body: pwBody("db"), noAuth: true, header: map[string]string{"Authorization": "Basic " + token}}, 401, "unauthorized", ""},
		{"malformed json", call{method: "POST", path: "/v1/rotations", body: `{"source":`}, 400, "malformed_json", ""},
		{"not json content type", call{method: "POST", path: "/v1/rotations", body: pwBody("db"), header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", ""},
		{"too large", call{method: "POST", path: "/v1/rotations", body: big}, 413, "payload_too_large", ""},
		{"unknown source", call{method: "POST", path: "/v1/rotations", body: pwBody("nope")}, 404, "not_found", ""},
		{"missing source", call{method: "POST", path: "/v1/rotations", body: `{"credential":{"type":"password","password":"x"}}`}, 422, "invalid_request", "source"},
		{"missing credential", call{method: "POST", path: "/v1/rotations", body: `{"source":"db"}`}, 422, "invalid_request", "credential"},
		{"unknown top-level field", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"x"},"force":true}`}, 422, "invalid_request", "force"},
		{"a key in the wrong case", call{method: "POST", path: "/v1/rotations", body: `{"SOURCE":"db","credential":{"type":"password","password":"x"}}`}, 422, "invalid_request", "SOURCE"},
		{"a nested key in the wrong case", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"x","ssh_tunnel":{"Private_Key":"k"}}}`}, 422, "invalid_request", "credential.ssh_tunnel.Private_Key"},
		{"invalid UTF-8 in the secret", call{method: "POST", path: "/v1/rotations", body: "{\"source\":\"db\",\"credential\":{\"type\":\"password\",\"password\":\"pw-\xff\"}}"}, 400, "bad_request", "credential.password"},
		{"a lone surrogate in the secret", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"pw-\ud800"}}`}, 400, "bad_request", "credential.password"},
		{"a duplicated key at the top", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","source":"other","credential":{"type":"password","password":"x"}}`}, 400, "bad_request", "source"},
		{"a duplicated key in the credential", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"a","password":"b"}}`}, 400, "bad_request", "credential.password"},
		{"a negative wait", call{method: "POST", path: "/v1/rotations?wait=-5", body: pwBody("db")}, 400, "bad_request", ""},
		{"a wait that is not a number", call{method: "POST", path: "/v1/rotations?wait=1e3", body: pwBody("db")}, 400, "bad_request", ""},
		{"a malformed query escape", call{method: "GET", path: "/v1/rotations?source=%zz"}, 400, "bad_request", ""},
		{"a repeated query parameter", call{method: "GET", path: "/v1/rotations?status=failed&status=succeeded"}, 400, "bad_request", ""},
		{"unknown type", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"kerberos","password":"x"}}`}, 422, "invalid_request", "credential.type"},
		{"missing field", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","username":"u"}}`}, 422, "invalid_request", "credential.password"},
		{"unknown field", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"x","pin":"1"}}`}, 422, "invalid_request", "credential.pin"},
		{"a target cannot take it", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"token","token":"` + theSecret + `"}}`}, 422, "invalid_request", "credential.type"},
		{"unknown target", call{method: "POST", path: "/v1/rotations", body: `{"source":"db","targets":["zzz"],"credential":{"type":"password","password":"x"}}`}, 422, "invalid_request", "targets[0]"},
		{"bad wait", call{method: "POST", path: "/v1/rotations?wait=soon", body: pwBody("db")}, 400, "bad_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := e.do(t, tc.c)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", b)
			d := errCode(t, b)
			require.Equal(t, tc.code, d.Code)
			if tc.field != "" {
				found := false
				for _, p := range d.Details {
					found = found || p.Field == tc.field
				}
				require.True(t, found, "details %+v name no %s", d.Details, tc.field)
			}
			if tc.status == 401 {
				require.Equal(t, `Bearer realm="credsync"`, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, e.pw.Sends()+e.tok.Sends(), "no refused request may reach a vendor")
}

func TestRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	resp, b := e.do(t, call{method: "GET", path: "/v1/rotations/rot_missing"})
	require.Equal(t, 404, resp.StatusCode)
	require.Equal(t, "not_found", errCode(t, b).Code)
	resp, b = e.do(t, call{method: "GET", path: "/v1/nothing"})
	require.Equal(t, 404, resp.StatusCode)
	require.Equal(t, "not_found", errCode(t, b).Code)
	resp, b = e.do(t, call{method: "DELETE", path: "/v1/rotations"})
	require.Equal(t, 405, resp.StatusCode)
	require.Equal(t, "method_not_allowed", errCode(t, b).Code)
	resp, _ = e.do(t, call{method: "GET", path: "/healthz", noAuth: true})
	require.Equal(t, 200, resp.StatusCode)
	resp, _ = e.do(t, call{method: "GET", path: "/readyz", noAuth: true})
	require.Equal(t, 200, resp.StatusCode)
	resp, _ = e.do(t, call{method: "GET", path: "/v1/sources", noAuth: true})
	require.Equal(t, 401, resp.StatusCode)
	resp, b = e.do(t, call{method: "GET", path: "/v1/rotations?status=weird"})
	require.Equal(t, 400, resp.StatusCode, "%s", b)
	resp, _ = e.do(t, call{method: "GET", path: "/v1/rotations?source=nope"})
	require.Equal(t, 404, resp.StatusCode)
	resp, _ = e.do(t, call{method: "POST", path: "/v1/rotations/rot_missing/retry"})
	require.Equal(t, 404, resp.StatusCode)
}

func TestRotationLifecycle(t *testing.T) {
	e := newEnv(t)
	// 202 without wait, with Location.
	release := e.pw.Hold()
	resp, b := e.do(t, call{method: "POST", path: "/v1/rotations", body: pwBody("db")})
	require.Equal(t, 202, resp.StatusCode, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Equal(t, "/v1/rotations/"+rot.ID, resp.Header.Get("Location"))
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	require.Len(t, rot.Targets, 2)
	release()

	// ?wait holds the answer until the end: 200 with the final state.
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations?wait=10s", body: pwBody("db")})
	require.Equal(t, 200, resp.StatusCode, "%s", b)
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Equal(t, core.RotationSucceeded, rot.Status)
	for _, tr := range rot.Targets {
		require.Equal(t, core.TargetSucceeded, tr.Status)
		require.True(t, tr.Verified)
		require.Equal(t, 1, tr.Attempts)
	}

	resp, b = e.do(t, call{method: "GET", path: "/v1/rotations/" + rot.ID})
	require.Equal(t, 200, resp.StatusCode)
	var got core.Rotation
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, rot.ID, got.ID)

	resp, b = e.do(t, call{method: "GET", path: "/v1/rotations?source=db&status=succeeded&limit=1"})
	require.Equal(t, 200, resp.StatusCode)
	var list api.ListResponse
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Rotations, 1)
	require.Equal(t, rot.ID, list.Rotations[0].ID, "newest first")

	resp, b = e.do(t, call{method: "GET", path: "/v1/sources"})
	require.Equal(t, 200, resp.StatusCode)
	var srcs api.SourcesResponse
	require.NoError(t, json.Unmarshal(b, &srcs))
	require.Len(t, srcs.Sources, 2)
	require.Equal(t, "db", srcs.Sources[0].Name)
	require.Equal(t, rot.ID, srcs.Sources[0].Targets[0].Last.RotationID)

	// Retry of a fully succeeded rotation: nothing to do.
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations/" + rot.ID + "/retry"})
	require.Equal(t, 409, resp.StatusCode, "%s", b)
}

func TestFailedTargetAndRetryNeverLeakTheSecret(t *testing.T) {
	e := newEnv(t)
	resp, b := e.do(t, call{method: "POST", path: "/v1/rotations?wait=10s", body: pwBody("flaky")})
	require.Equal(t, 200, resp.StatusCode, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Equal(t, core.RotationFailed, rot.Status)
	require.Equal(t, core.CodeRejected, rot.Targets[0].Error.Code)
	require.Contains(t, rot.Targets[0].Error.Message, core.Redacted, "the echoed secret is scrubbed")
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations/" + rot.ID + "/retry"})
	require.Equal(t, 202, resp.StatusCode, "%s", b)
	require.Eventually(t, func() bool { return e.failing.Sends() == 2 }, 5*time.Second, 10*time.Millisecond)
	for _, entry := range e.logs.All() {
		j, _ := json.Marshal(entry.ContextMap())
		require.NotContains(t, entry.Message+string(j), theSecret)
	}
}

func TestDryRunRedactsAndSendsNothing(t *testing.T) {
	e := newEnv(t)
	resp, b := e.do(t, call{method: "POST", path: "/v1/rotations", body: `{"source":"db","dry_run":true,"credential":{"type":"password","username":"svc","password":"` + theSecret + `"}}`})
	require.Equal(t, 200, resp.StatusCode, "%s", b)
	var plan api.PlanResponse
	require.NoError(t, json.Unmarshal(b, &plan))
	require.True(t, plan.DryRun)
	require.Len(t, plan.Requests, 2)
	require.Contains(t, string(b), `"password":"[REDACTED]"`)
	require.Contains(t, string(b), `"username":"svc"`)
	require.Zero(t, e.pw.Sends()+e.tok.Sends())
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	h := map[string]string{"Idempotency-Key": "job-42"}
	resp, b := e.do(t, call{method: "POST", path: "/v1/rotations?wait=5s", body: pwBody("db"), header: h})
	require.Equal(t, 200, resp.StatusCode)
	var first, again core.Rotation
	require.NoError(t, json.Unmarshal(b, &first))
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations", body: pwBody("db"), header: h})
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	require.NoError(t, json.Unmarshal(b, &again))
	require.Equal(t, first.ID, again.ID)
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations", body: `{"source":"db","credential":{"type":"password","password":"other"}}`, header: h})
	require.Equal(t, 409, resp.StatusCode, "%s", b)
	require.Equal(t, 1, e.pw.Sends())
}

func TestOneLogLinePerRequest(t *testing.T) {
	e := newEnv(t)
	e.do(t, call{method: "GET", path: "/v1/sources", header: map[string]string{"X-Request-Id": "req-abc"}})
	e.do(t, call{method: "GET", path: "/v1/sources", noAuth: true})
	reqs := e.logs.FilterMessage("request").All()
	require.Len(t, reqs, 2)
	require.Equal(t, "req-abc", reqs[0].ContextMap()["request_id"])
	require.EqualValues(t, 200, reqs[0].ContextMap()["status"])
	require.Equal(t, "job", reqs[0].ContextMap()["actor"])
	require.EqualValues(t, 401, reqs[1].ContextMap()["status"])
}

func TestPagingAndAudit(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 3; i++ {
		_, b := e.do(t, call{method: "POST", path: "/v1/rotations?wait=5s", body: pwBody("db")})
		var rot core.Rotation
		require.NoError(t, json.Unmarshal(b, &rot))
		ids = append(ids, rot.ID)
	}
	resp, b := e.do(t, call{method: "GET", path: "/v1/rotations?limit=2"})
	require.Equal(t, 200, resp.StatusCode)
	var page api.ListResponse
	require.NoError(t, json.Unmarshal(b, &page))
	require.Len(t, page.Rotations, 2)
	require.Equal(t, ids[2], page.Rotations[0].ID)
	require.Equal(t, ids[1], page.NextBefore)
	_, b = e.do(t, call{method: "GET", path: "/v1/rotations?limit=2&before=" + page.NextBefore})
	page = api.ListResponse{}
	require.NoError(t, json.Unmarshal(b, &page))
	require.Len(t, page.Rotations, 1)
	require.Equal(t, ids[0], page.Rotations[0].ID)
	require.Empty(t, page.NextBefore)

	resp, b = e.do(t, call{method: "GET", path: "/v1/audit?source=db&limit=50"})
	require.Equal(t, 200, resp.StatusCode)
	var audit api.AuditResponse
	require.NoError(t, json.Unmarshal(b, &audit))
	submitted := 0
	for _, ev := range audit.Events {
		if ev.Action == "rotation.submitted" {
			submitted++
			require.Equal(t, "job", ev.Actor, "the audit trail names the API token")
		}
	}
	require.Equal(t, 3, submitted)
	resp, _ = e.do(t, call{method: "GET", path: "/v1/audit?limit=0"})
	require.Equal(t, 400, resp.StatusCode)
}

func TestPanicAnswers500WithoutDetails(t *testing.T) {
	// The stand-in's Build panics with a secret in the panic value.
	panicky := &standin.Adapter{OnBuild: func(c core.Credential) error {
		panic("adapter bug while holding " + c.Password.Reveal())
	}}
	obs, logs := observer.New(zap.DebugLevel)
	eng, err := core.NewEngine(core.EngineConfig{
		Platforms: []core.Platform{{Name: "p", Vendor: "fake"}},
		Sources:   []*core.Source{{Name: "db", Targets: []*core.Target{{Name: "a", Platform: "p", Vendor: "fake", Adapter: panicky}}}},
		Store:     memstore.New(),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(eng, []api.Token{{Name: "job", Token: core.NewSecret(token)}}, zap.New(obs)).Handler())
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/rotations", strings.NewReader(pwBody("db")))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, 500, resp.StatusCode)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error; the gateway log has the details"}}`, string(b))
	panics := logs.FilterMessage("panic while serving a request").All()
	require.Len(t, panics, 1)
	require.Contains(t, panics[0].ContextMap()["stack"], "api_test.go", "the stack is logged")
	for _, e := range logs.All() {
		j, _ := json.Marshal(e.ContextMap())
		require.NotContains(t, string(j), theSecret, "the panic value is scrubbed of the secret")
	}
}

// TestErrorAnswersAreBounded: however many problems a request has, the answer lists the first
// MaxDetails and says how many there were; a targets list over the maximum is refused whole.
func TestErrorAnswersAreBounded(t *testing.T) {
	e := newEnv(t)
	names := make([]string, 9000)
	for i := range names {
		names[i] = fmt.Sprintf("%q", fmt.Sprintf("no-such-target-%05d", i))
	}
	body := `{"source":"db","targets":[` + strings.Join(names, ",") + `],"credential":{"type":"password","password":"x"}}`
	resp, b := e.do(t, call{method: "POST", path: "/v1/rotations", body: body})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Less(t, len(b), 64<<10, "the answer stays small: %d bytes", len(b))
	var eb api.ErrorBody
	require.NoError(t, json.Unmarshal(b, &eb))
	require.Len(t, eb.Error.Details, api.MaxDetails)
	require.Equal(t, 9000, eb.Error.DetailsTotal)
	require.Contains(t, eb.Error.Message, "9000 problems")

	many := make([]string, api.MaxTargetsPerRequest+1)
	for i := range many {
		many[i] = `"t"`
	}
	resp, b = e.do(t, call{method: "POST", path: "/v1/rotations", body: `{"source":"db","targets":[` + strings.Join(many, ",") + `],"credential":{"type":"password","password":"x"}}`})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Less(t, len(b), 4<<10)
	require.Contains(t, string(b), "at most 10000")
	require.Zero(t, e.pw.Sends(), "nothing was sent")
}
