package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

// Tokens of the scope tests, each a different scope.
const (
	tokAll      = "all-token-0123456789abcdef"    // no scope: everything
	tokWarehous = "wh-job-token-0123456789abcdef" // warehouse-*: rotate, read
	tokReader   = "reader-token-0123456789abcdef" // every source: read
	tokWhAdmin  = "wh-admin-token-0123456789abcd" // warehouse-*: admin, read
	tokCRMRetry = "crm-retry-token-0123456789abc" // crm: retry
)

type scopeEnv struct {
	srv      *httptest.Server
	eng      *core.Engine
	adapters map[string]*standin.Adapter // by source
}

func newScopeEnv(t *testing.T) *scopeEnv {
	t.Helper()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	e := &scopeEnv{adapters: map[string]*standin.Adapter{}}
	var sources []*core.Source
	for _, name := range []string{"warehouse-pg", "warehouse-mysql", "crm"} {
		a := standin.New(core.TypePassword)
		if name == "crm" {
			a.FailWith(&core.Error{Code: core.CodeRejected, Message: "no", VendorStatus: 400})
		}
		e.adapters[name] = a
		sources = append(sources, &core.Source{Name: name, Targets: []*core.Target{{Name: "t", Platform: "p", Vendor: "fake", Adapter: a}}})
	}
	e.eng, err = core.NewEngine(core.EngineConfig{Sealer: kr, Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources: sources, Store: memstore.New(), Logger: zap.NewNop()})
	require.NoError(t, err)
	require.NoError(t, e.eng.Start(context.Background()))
	tokens := []api.Token{
		{Name: "all", Token: core.NewSecret(tokAll)},
		{Name: "warehouse-job", Token: core.NewSecret(tokWarehous), Scope: api.Scope{Sources: []string{"warehouse-*"}, Actions: []api.Action{api.ActionRotate, api.ActionRead}}},
		{Name: "reader", Token: core.NewSecret(tokReader), Scope: api.Scope{Actions: []api.Action{api.ActionRead}}},
		{Name: "warehouse-admin", Token: core.NewSecret(tokWhAdmin), Scope: api.Scope{Sources: []string{"warehouse-*"}, Actions: []api.Action{api.ActionAdmin, api.ActionRead}}},
		{Name: "crm-retry", Token: core.NewSecret(tokCRMRetry), Scope: api.Scope{Sources: []string{"crm"}, Actions: []api.Action{api.ActionRetry}}},
	}
	e.srv = httptest.NewServer(api.New(e.eng, tokens, zap.NewNop()).Handler())
	t.Cleanup(func() {
		e.srv.Close()
		_ = e.eng.Shutdown(context.Background())
	})
	return e
}

func (e *scopeEnv) call(t *testing.T, tok, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// rotate submits a rotation of source with the unscoped token, waits for it and returns its ID.
func (e *scopeEnv) rotate(t *testing.T, source string) string {
	t.Helper()
	code, b := e.call(t, tokAll, "POST", "/v1/rotations?wait=10s", pwBody(source))
	require.Equal(t, http.StatusOK, code, "%s", b)
	var r core.Rotation
	require.NoError(t, json.Unmarshal(b, &r))
	return r.ID
}

func TestScopeDecidesEveryRoute(t *testing.T) {
	e := newScopeEnv(t)
	wh, crm := e.rotate(t, "warehouse-pg"), e.rotate(t, "crm")

	cases := []struct {
		name, tok, method, path, body string
		want                          int
	}{
		{"scoped token rotates its source", tokWarehous, "POST", "/v1/rotations", pwBody("warehouse-mysql"), 202},
		{"scoped token may not rotate another source", tokWarehous, "POST", "/v1/rotations", pwBody("crm"), 403},
		{"nor plan one", tokWarehous, "POST", "/v1/rotations", `{"source":"crm","dry_run":true,"credential":{"type":"password","password":"x"}}`, 403},
		{"an unknown source outside the scope is 403 too: the scope does not say what exists", tokWarehous, "POST", "/v1/rotations", pwBody("nope"), 403},
		{"a source the scope matches but no config has is the engine's 404", tokWarehous, "POST", "/v1/rotations", pwBody("warehouse-none"), 404},
		{"a reader may not rotate", tokReader, "POST", "/v1/rotations", pwBody("warehouse-pg"), 403},
		{"a reader reads any rotation", tokReader, "GET", "/v1/rotations/" + crm, "", 200},
		{"scoped token reads its rotation", tokWarehous, "GET", "/v1/rotations/" + wh, "", 200},
		{"but not another source's", tokWarehous, "GET", "/v1/rotations/" + crm, "", 403},
		{"a missing rotation is still 404", tokWarehous, "GET", "/v1/rotations/rot_missing", "", 404},
		{"listing another source by name", tokWarehous, "GET", "/v1/rotations?source=crm", "", 403},
		{"audit of another source by name", tokWarehous, "GET", "/v1/audit?source=crm", "", 403},
		{"retry needs retry", tokWarehous, "POST", "/v1/rotations/" + wh + "/retry", "", 403},
		{"a retry token retries its source", tokCRMRetry, "POST", "/v1/rotations/" + crm + "/retry", "", 202},
		{"not another's", tokCRMRetry, "POST", "/v1/rotations/" + wh + "/retry", "", 403},
		{"a retry-only token may not read", tokCRMRetry, "GET", "/v1/rotations/" + crm, "", 403},
		{"nor list sources", tokCRMRetry, "GET", "/v1/sources", "", 403},
		{"pauses need admin", tokWarehous, "GET", "/v1/pauses", "", 403},
		{"a reader may not pause", tokReader, "POST", "/v1/pauses", `{"reason":"x"}`, 403},
		{"a scoped admin may not pause everything", tokWhAdmin, "POST", "/v1/pauses", `{"reason":"x"}`, 403},
		{"nor a platform (it holds other sources)", tokWhAdmin, "POST", "/v1/pauses", `{"platform":"p","reason":"x"}`, 403},
		{"nor a source outside its scope", tokWhAdmin, "POST", "/v1/pauses", `{"source":"crm","reason":"x"}`, 403},
		{"it pauses its own source", tokWhAdmin, "POST", "/v1/pauses", `{"source":"warehouse-mysql","reason":"x"}`, 201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := e.call(t, c.tok, c.method, c.path, c.body)
			require.Equal(t, c.want, code, "%s", b)
			if c.want == 403 {
				d := errCode(t, b)
				require.Equal(t, "forbidden", d.Code)
				require.Contains(t, d.Message, "its scope is", "says why")
			}
		})
	}
	require.Equal(t, 1, e.adapters["warehouse-pg"].Sends(), "no refused request reached a vendor")
}

func TestScopedListingsShowOnlyTheScope(t *testing.T) {
	e := newScopeEnv(t)
	e.rotate(t, "warehouse-pg")
	e.rotate(t, "crm")
	e.rotate(t, "warehouse-mysql")

	sourcesOf := func(tok, path string) []string {
		t.Helper()
		code, b := e.call(t, tok, "GET", path, "")
		require.Equal(t, 200, code, "%s", b)
		var doc struct {
			Rotations []core.Rotation   `json:"rotations"`
			Sources   []core.SourceView `json:"sources"`
			Events    []core.AuditEvent `json:"events"`
		}
		require.NoError(t, json.Unmarshal(b, &doc))
		seen := map[string]bool{}
		var out []string
		add := func(s string) {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		for _, r := range doc.Rotations {
			add(r.Source)
		}
		for _, s := range doc.Sources {
			add(s.Name)
		}
		for _, ev := range doc.Events {
			add(ev.Source)
		}
		return out
	}
	for _, path := range []string{"/v1/rotations", "/v1/sources", "/v1/audit"} {
		require.ElementsMatch(t, []string{"warehouse-pg", "warehouse-mysql"}, sourcesOf(tokWarehous, path), path)
		require.ElementsMatch(t, []string{"warehouse-pg", "warehouse-mysql", "crm"}, sourcesOf(tokReader, path), path)
	}
	require.ElementsMatch(t, []string{"warehouse-mysql"}, sourcesOf(tokWarehous, "/v1/rotations?source=warehouse-mysql"))
	require.ElementsMatch(t, []string{"warehouse-pg"}, sourcesOf(tokWarehous, "/v1/audit?source=warehouse-pg"))

	// The status page too.
	req, err := http.NewRequest("GET", e.srv.URL+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tokWarehous)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(page), "warehouse-pg")
	require.NotContains(t, string(page), "crm", "the status page shows only the token's sources")

	req.Header.Set("Authorization", "Bearer "+tokCRMRetry)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 403, resp.StatusCode, "a token that may not read does not open the status page")
}

func TestPauseThroughTheAPI(t *testing.T) {
	e := newScopeEnv(t)
	code, b := e.call(t, tokAll, "POST", "/v1/pauses", `{"platform":"p","reason":"vendor incident 42"}`)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	var p core.Pause
	require.NoError(t, json.Unmarshal(b, &p))
	require.Equal(t, "p", p.Platform)
	require.Equal(t, "all", p.Actor, "the pause names its token")
	require.Nil(t, p.EndedAt)

	code, b = e.call(t, tokAll, "POST", "/v1/rotations", pwBody("warehouse-pg"))
	require.Equal(t, http.StatusAccepted, code, "accepted while paused: %s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Eventually(t, func() bool {
		_, b := e.call(t, tokAll, "GET", "/v1/rotations/"+rot.ID, "")
		var r core.Rotation
		require.NoError(t, json.Unmarshal(b, &r))
		return len(r.Targets) == 1 && r.Targets[0].Paused && r.Targets[0].Status == core.TargetPending
	}, 5*time.Second, 20*time.Millisecond, "the held target shows pending, paused")
	_, b = e.call(t, tokAll, "GET", "/v1/sources", "")
	require.Contains(t, string(b), `"paused":{"id":"`+p.ID, "the source view says which pause holds the target")
	require.Zero(t, e.adapters["warehouse-pg"].Sends())

	code, b = e.call(t, tokAll, "GET", "/v1/pauses", "")
	require.Equal(t, 200, code)
	var list api.PausesResponse
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Pauses, 1)

	for _, bad := range []struct{ body, field string }{
		{`{"reason":""}`, "reason"}, {`{"platform":"nope","reason":"x"}`, "platform"},
		{`{"source":"nope","reason":"x"}`, "source"}, {`{"reason":"x","Reason":"y"}`, "Reason"}, {`{"reason":"x","extra":1}`, "extra"},
	} {
		code, b := e.call(t, tokAll, "POST", "/v1/pauses", bad.body)
		require.Equal(t, 422, code, "%s: %s", bad.body, b)
		require.Contains(t, string(b), bad.field)
	}
	code, _ = e.call(t, tokAll, "POST", "/v1/pauses", `{"reason":"x","reason":"y"}`)
	require.Equal(t, 400, code, "a duplicated key is ambiguous")

	code, b = e.call(t, tokAll, "DELETE", "/v1/pauses/"+p.ID, "")
	require.Equal(t, 200, code, "%s", b)
	var ended core.Pause
	require.NoError(t, json.Unmarshal(b, &ended))
	require.NotNil(t, ended.EndedAt)
	require.Equal(t, "all", ended.EndedBy)
	code, _ = e.call(t, tokAll, "DELETE", "/v1/pauses/"+p.ID, "")
	require.Equal(t, 404, code, "ended once")

	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := e.eng.Wait(wctx, rot.ID)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, r.Status, "goes on once the pause ends")
	code, b = e.call(t, tokAll, "GET", "/v1/pauses?all=true", "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Pauses, 1, "ended pauses are listed with all=true")
	code, b = e.call(t, tokAll, "GET", "/v1/pauses", "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(b, &list))
	require.Empty(t, list.Pauses)
}
