package api

// The OpenAPI contract tests: the document served at GET /v1/openapi.json must describe exactly
// the routes echo serves, and every answer the API gives (success and error, of every route)
// must validate against it, as must every request that the API accepts.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/metrics"
	"github.com/credsync/credsync/store/memstore"
)

const (
	docToken  = "docs-api-token-0123456789"
	docNarrow = "docs-narrow-token-0123456789" // flaky only, rotate only
	docSecret = "Docs-S3cret-never-in-an-answer"
)

// docRejected is how the failing stand-in fails: echoing the secret, which the engine must
// scrub.
func docRejected() *core.Error {
	return &core.Error{Code: core.CodeRejected, Message: `HTTP 400: bad password "` + docSecret + `"`, VendorStatus: 400}
}

// brokenStore is a memstore whose reads, writes and ping fail while broken is set (a bug: 500),
// or are unavailable while unavailable is set (the store's condition: 503).
type brokenStore struct {
	*memstore.Store
	broken      atomic.Bool
	unavailable atomic.Bool
}

var errStoreDown = errors.New("store is down (test)")

var errStoreUnavailable = &core.StoreUnavailableError{Message: "the test store did not answer within 1s (store.timeout)"}

func (s *brokenStore) fault() error {
	if s.unavailable.Load() {
		return errStoreUnavailable
	}
	if s.broken.Load() {
		return errStoreDown
	}
	return nil
}

func (s *brokenStore) CreateRotation(ctx context.Context, n core.NewRotation) (*core.IdempotencyHit, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.CreateRotation(ctx, n)
}

func (s *brokenStore) GetRotation(ctx context.Context, id string) (*core.Rotation, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.GetRotation(ctx, id)
}

func (s *brokenStore) GetRotationPage(ctx context.Context, id string, p core.TargetPage) (*core.Rotation, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.GetRotationPage(ctx, id, p)
}

func (s *brokenStore) LastOutcomes(ctx context.Context) (map[string]map[string]core.LastOutcome, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.LastOutcomes(ctx)
}

func (s *brokenStore) ListRotations(ctx context.Context, f core.ListFilter) ([]*core.Rotation, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.ListRotations(ctx, f)
}

func (s *brokenStore) ListAudit(ctx context.Context, f core.AuditFilter) ([]core.AuditEvent, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.ListAudit(ctx, f)
}

func (s *brokenStore) CreatePause(ctx context.Context, p core.Pause) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.CreatePause(ctx, p)
}

func (s *brokenStore) ListPauses(ctx context.Context, active bool) ([]core.Pause, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.ListPauses(ctx, active)
}

func (s *brokenStore) EndPause(ctx context.Context, id, by string, at time.Time) (core.Pause, error) {
	if err := s.fault(); err != nil {
		return core.Pause{}, err
	}
	return s.Store.EndPause(ctx, id, by, at)
}

func (s *brokenStore) Ping(ctx context.Context) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

type docEnv struct {
	s       *Server
	eng     *core.Engine
	srv     *httptest.Server
	store   *brokenStore
	pw      *standin.Adapter // target "a" of source "db"
	failing *standin.Adapter // target "x" of source "flaky": every send fails, until told to refuse at Build
}

// newDocEnv serves the API as the gateway builds it (with its metrics), plus opts.
func newDocEnv(t *testing.T, opts ...Option) *docEnv {
	t.Helper()
	e := &docEnv{
		store:   &brokenStore{Store: memstore.New()},
		pw:      standin.New(core.TypePassword),
		failing: standin.New(core.TypePassword),
	}
	e.failing.FailWith(docRejected())
	tok := standin.New(core.TypePassword, core.TypeToken)
	kr, err := keyring.Generate()
	require.NoError(t, err)
	e.eng, err = core.NewEngine(core.EngineConfig{
		Sealer:    kr,
		Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources: []*core.Source{
			{Name: "db", Targets: []*core.Target{{Name: "a", Platform: "p", Vendor: "fake", Adapter: e.pw, VerifyEvery: time.Hour}, {Name: "b", Platform: "p", Vendor: "fake", Adapter: tok}}},
			{Name: "flaky", Targets: []*core.Target{{Name: "x", Platform: "p", Vendor: "fake", Adapter: e.failing}}},
		},
		Store: e.store, Logger: zap.NewNop(), Notifications: []core.Subscription{{Name: "ops", Events: core.DefaultEvents()}},
	})
	require.NoError(t, err)
	m := metrics.New()
	tokens := []Token{{Name: "job", Token: core.NewSecret(docToken)},
		{Name: "narrow", Token: core.NewSecret(docNarrow), Scope: Scope{Sources: []string{"flaky"}, Actions: []Action{ActionRotate}}}}
	e.s = New(e.eng, tokens, zap.NewNop(), append([]Option{WithMetrics(m.Handler(), m)}, opts...)...)
	e.srv = httptest.NewServer(e.s.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		_ = e.eng.Shutdown(context.Background())
	})
	return e
}

// loadSpec fetches the document the way a client does and returns it with its router.
func loadSpec(t *testing.T, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	resp, err := http.Get(base + "/v1/openapi.json")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	require.NoError(t, err, "GET /v1/openapi.json is not an OpenAPI document")
	require.NoError(t, doc.Validate(loader.Context), "GET /v1/openapi.json is not valid OpenAPI")
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.0."), "OpenAPI 3.0, got %s", doc.OpenAPI)
	r, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return doc, r
}

// specPath turns echo's /v1/rotations/:id into OpenAPI's /v1/rotations/{id}.
func specPath(echoPath string) string {
	parts := strings.Split(echoPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newDocEnv(t)
	doc, _ := loadSpec(t, e.srv.URL)

	served := map[string]bool{}
	for _, r := range e.s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		key := r.Method + " " + specPath(r.Path)
		served[key] = true
		item := doc.Paths.Value(specPath(r.Path))
		require.NotNil(t, item, "echo serves %s %s but the OpenAPI document has no path %s", r.Method, r.Path, specPath(r.Path))
		require.NotNil(t, item.GetOperation(r.Method), "echo serves %s %s but the OpenAPI document does not describe that method", r.Method, r.Path)
	}
	require.NotEmpty(t, served)

	public := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			require.True(t, served[key], "the OpenAPI document describes %s, which echo does not serve", key)
			require.NotEmpty(t, op.OperationID, "%s has no operationId", key)
			require.NotEmpty(t, op.Summary, "%s has no summary", key)
			if op.Security != nil && len(*op.Security) == 0 {
				public[key] = true
			}
		}
	}
	require.Equal(t, map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /v1/openapi.json": true}, public,
		"only these operations are described as needing no token")
	require.NotNil(t, doc.Components.SecuritySchemes["bearerAuth"])
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["bearerAuth"].Value.Scheme)
}

// docCall is one request of the contract test and what the spec must say about it.
type docCall struct {
	name        string
	method      string
	path        string
	body        string
	contentType string // default application/json when there is a body
	header      map[string]string
	noAuth      bool
	token       string // instead of docToken
	status      int
	// reqInvalid: the request breaks the spec (and the API refuses it). Otherwise the request
	// must validate, except reqAny: the spec cannot tell (e.g. a body over 1 MiB).
	reqInvalid, reqAny bool
}

type contract struct {
	t       *testing.T
	doc     *openapi3.T
	router  routers.Router
	client  *http.Client
	covered map[string]bool // "operationId status"
}

func newContract(t *testing.T, base string) *contract {
	doc, r := loadSpec(t, base)
	return &contract{t: t, doc: doc, router: r, covered: map[string]bool{},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var contractOptions = &openapi3filter.Options{
	MultiError: true,
	// Authentication is the server's job; the spec's part is to say which credentials a route
	// takes. A request carrying none of them fails validation.
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		r := in.RequestValidationInput.Request
		switch in.SecuritySchemeName {
		case "bearerAuth":
			if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				return nil
			}
		case "statusCookie":
			if _, err := r.Cookie(StatusCookie); err == nil {
				return nil
			}
		case "statusToken":
			if r.URL.Query().Has("token") {
				return nil
			}
		}
		return in.NewError(nil)
	},
}

var responseOptions = &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}

// do sends c to the API, checks the request and the answer against the spec, and returns the answer.
func (k *contract) do(base string, c docCall) (*http.Response, []byte) {
	t := k.t
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if !c.noAuth {
		tok := docToken
		if c.token != "" {
			tok = c.token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.body != "" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for h, v := range c.header {
		req.Header.Set(h, v)
	}
	resp, err := k.client.Do(req)
	require.NoError(t, err, c.name)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, c.status, resp.StatusCode, "%s: %s %s answered %s", c.name, c.method, c.path, body)
	require.NotContains(t, string(body), docSecret, "%s: an answer holds the secret", c.name)

	// The request as the spec sees it (the same method, URL, headers and body).
	vreq, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	vreq.Header = req.Header.Clone()
	route, params, err := k.router.FindRoute(vreq)
	require.NoError(t, err, "%s: %s %s is not in the OpenAPI document", c.name, c.method, c.path)
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: contractOptions}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case c.reqAny:
	case c.reqInvalid:
		require.Error(t, reqErr, "%s: the API refused this request (%d) but the OpenAPI document allows it", c.name, resp.StatusCode)
	default:
		require.NoError(t, reqErr, "%s: the API took this request but the OpenAPI document refuses it", c.name)
	}

	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: responseOptions}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), rin),
		"%s: the answer %d does not match the OpenAPI document: %s", c.name, resp.StatusCode, body)
	k.covered[fmt.Sprintf("%s %d", route.Operation.OperationID, resp.StatusCode)] = true
	return resp, body
}

func pwRotation(source string) string {
	return `{"source":"` + source + `","credential":{"type":"password","password":"` + docSecret + `"}}`
}

func rotationID(t *testing.T, body []byte) string {
	t.Helper()
	i := bytes.Index(body, []byte(`"id":"`))
	require.GreaterOrEqual(t, i, 0, "%s", body)
	rest := body[i+len(`"id":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func TestOpenAPIRealAnswersValidate(t *testing.T) {
	e := newDocEnv(t)
	k := newContract(t, e.srv.URL)
	do := func(c docCall) (*http.Response, []byte) { t.Helper(); return k.do(e.srv.URL, c) }

	// Operations.
	do(docCall{name: "healthz", method: "GET", path: "/healthz", noAuth: true, status: 200})
	do(docCall{name: "readyz", method: "GET", path: "/readyz", noAuth: true, status: 200})
	do(docCall{name: "openapi", method: "GET", path: "/v1/openapi.json", noAuth: true, status: 200})
	_, b := do(docCall{name: "metrics", method: "GET", path: "/metrics", noAuth: true, status: 200})
	require.Contains(t, string(b), "# TYPE credsync_")

	// Rotations: 202 while a target is held, then the same with ?wait (200), a dry run (200),
	// an Idempotency-Key replay (200) and its conflict (409).
	release := e.pw.Hold()
	t.Cleanup(release) // before the engine's shutdown, should the test stop early
	resp, _ := do(docCall{name: "submit", method: "POST", path: "/v1/rotations", body: pwRotation("db"), status: 202})
	require.NotEmpty(t, resp.Header.Get("Location"))
	release()
	_, b = do(docCall{name: "submit and wait", method: "POST", path: "/v1/rotations?wait=10s", body: pwRotation("db"), status: 200})
	okID := rotationID(t, b)
	do(docCall{name: "dry run", method: "POST", path: "/v1/rotations", status: 200,
		body: `{"source":"db","dry_run":true,"targets":["a"],"credential":{"type":"password","username":"svc","password":"` + docSecret + `"}}`})
	idem := map[string]string{"Idempotency-Key": "docs-1"}
	do(docCall{name: "idempotent first", method: "POST", path: "/v1/rotations?wait=10", body: pwRotation("db"), header: idem, status: 200})
	resp, _ = do(docCall{name: "idempotent replay", method: "POST", path: "/v1/rotations", body: pwRotation("db"), header: idem, status: 200})
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	do(docCall{name: "idempotent conflict", method: "POST", path: "/v1/rotations", header: idem, status: 409,
		body: `{"source":"db","credential":{"type":"password","password":"another-one"}}`})
	_, b = do(docCall{name: "failing target", method: "POST", path: "/v1/rotations?wait=10s", body: pwRotation("flaky"), status: 200})
	failedID := rotationID(t, b)
	require.Contains(t, string(b), `"vendor_status":400`)

	// Every credential type the spec describes is one the API takes (422 only because no
	// target of "db" takes it), and a malformed one is refused by both.
	for _, cred := range []string{
		`{"type":"key_pair","username":"u","private_key":"k","private_key_passphrase":"p","private_key_name":"n"}`,
		`{"type":"oauth_client","client_id":"c","client_secret":"s"}`,
		`{"type":"gcp_service_account","service_account_json":{"type":"service_account"},"filename":"f.json"}`,
		`{"type":"gcp_service_account","service_account_json":"{\"type\":\"service_account\"}"}`,
		`{"type":"aws_access_key","access_key_id":"AKIA","secret_access_key":"s"}`,
		`{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r","role_session_name":"s"}`,
		`{"type":"azure_connection_string","connection_string":"s"}`,
		`{"type":"custom_headers","headers":[{"name":"X-Key","value":"v","sensitive":true}]}`,
		`{"type":"password","password":"p","ssh_tunnel":{"private_key":"k","passphrase":"p"}}`,
	} {
		status := 422
		if strings.Contains(cred, `"password"`) {
			status = 200
		}
		do(docCall{name: "credential " + cred, method: "POST", path: "/v1/rotations", status: status,
			body: `{"source":"db","dry_run":true,"credential":` + cred + `}`})
	}
	do(docCall{name: "token to a target that cannot take it", method: "POST", path: "/v1/rotations", status: 422,
		body: `{"source":"db","credential":{"type":"token","token":"` + docSecret + `"}}`})

	// Refused submissions.
	big := `{"source":"db","credential":{"type":"password","password":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	for _, c := range []docCall{
		{name: "no token", body: pwRotation("db"), noAuth: true, status: 401, reqInvalid: true},
		{name: "wrong token", body: pwRotation("db"), noAuth: true, header: map[string]string{"Authorization": "Bearer nope"}, status: 401},
		{name: "malformed json", body: `{"source":`, status: 400, reqInvalid: true},
		{name: "bad wait", path: "/v1/rotations?wait=soon", body: pwRotation("db"), status: 400, reqInvalid: true},
		{name: "long Idempotency-Key", body: pwRotation("db"), header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, status: 400, reqInvalid: true},
		{name: "unknown source", body: pwRotation("nope"), status: 404},
		{name: "too large", body: big, status: 413, reqAny: true},
		{name: "not JSON", body: pwRotation("db"), contentType: "text/plain", status: 415, reqInvalid: true},
		{name: "missing source", body: `{"credential":{"type":"password","password":"x"}}`, status: 422, reqInvalid: true},
		{name: "missing credential", body: `{"source":"db"}`, status: 422, reqInvalid: true},
		{name: "unknown field", body: `{"source":"db","credential":{"type":"password","password":"x"},"force":true}`, status: 422, reqInvalid: true},
		{name: "unknown type", body: `{"source":"db","credential":{"type":"kerberos","password":"x"}}`, status: 422, reqInvalid: true},
		{name: "missing password", body: `{"source":"db","credential":{"type":"password","username":"u"}}`, status: 422, reqInvalid: true},
		{name: "empty password", body: `{"source":"db","credential":{"type":"password","password":""}}`, status: 422, reqInvalid: true},
		{name: "unknown credential field", body: `{"source":"db","credential":{"type":"password","password":"x","pin":"1"}}`, status: 422, reqInvalid: true},
		{name: "ssh tunnel without key", body: `{"source":"db","credential":{"type":"password","password":"x","ssh_tunnel":{}}}`, status: 422, reqInvalid: true},
		{name: "header without value", body: `{"source":"db","credential":{"type":"custom_headers","headers":[{"name":"X"}]}}`, status: 422, reqInvalid: true},
		{name: "unknown target", body: `{"source":"db","targets":["zzz"],"credential":{"type":"password","password":"x"}}`, status: 422},
	} {
		c.method = "POST"
		if c.path == "" {
			c.path = "/v1/rotations"
		}
		do(c)
	}

	// Reading rotations.
	do(docCall{name: "get", method: "GET", path: "/v1/rotations/" + okID, status: 200})
	do(docCall{name: "get failed", method: "GET", path: "/v1/rotations/" + failedID, status: 200})
	do(docCall{name: "get missing", method: "GET", path: "/v1/rotations/rot_missing", status: 404})
	do(docCall{name: "get a page", method: "GET", path: "/v1/rotations/" + okID + "?targets_limit=1&target_status=succeeded", status: 200})
	do(docCall{name: "get a bad page", method: "GET", path: "/v1/rotations/" + okID + "?targets_limit=0", status: 400, reqInvalid: true})
	do(docCall{name: "get a bad cursor", method: "GET", path: "/v1/rotations/" + okID + "?targets_after=x", status: 400, reqInvalid: true})
	do(docCall{name: "get no token", method: "GET", path: "/v1/rotations/" + okID, noAuth: true, status: 401, reqInvalid: true})
	do(docCall{name: "list", method: "GET", path: "/v1/rotations", status: 200})
	_, b = do(docCall{name: "list page", method: "GET", path: "/v1/rotations?source=db&status=succeeded&limit=1", status: 200})
	require.Contains(t, string(b), `"next_before"`)
	do(docCall{name: "list next page", method: "GET", path: "/v1/rotations?limit=1&before=" + okID, status: 200})
	do(docCall{name: "list empty", method: "GET", path: "/v1/rotations?status=running&source=flaky", status: 200})
	do(docCall{name: "list bad status", method: "GET", path: "/v1/rotations?status=weird", status: 400, reqInvalid: true})
	do(docCall{name: "list bad limit", method: "GET", path: "/v1/rotations?limit=0", status: 400, reqInvalid: true})
	do(docCall{name: "list unknown source", method: "GET", path: "/v1/rotations?source=nope", status: 404})
	do(docCall{name: "list no token", method: "GET", path: "/v1/rotations", noAuth: true, status: 401, reqInvalid: true})

	// Retry: 202 for a failed rotation, 409 once nothing is left or while it runs, 404, 401, and
	// 422 when a target no longer takes the stored credential.
	do(docCall{name: "retry succeeded", method: "POST", path: "/v1/rotations/" + okID + "/retry", status: 409})
	do(docCall{name: "retry missing", method: "POST", path: "/v1/rotations/rot_missing/retry", status: 404})
	do(docCall{name: "retry no token", method: "POST", path: "/v1/rotations/" + failedID + "/retry", noAuth: true, status: 401, reqInvalid: true})
	e.failing.Refuse(true)
	do(docCall{name: "retry refused by the target", method: "POST", path: "/v1/rotations/" + failedID + "/retry", status: 422})
	e.failing.Refuse(false)
	resp, _ = do(docCall{name: "retry", method: "POST", path: "/v1/rotations/" + failedID + "/retry", status: 202})
	require.Equal(t, "/v1/rotations/"+failedID, resp.Header.Get("Location"))
	waitFinished(t, e.eng, failedID)

	// Sources and audit.
	do(docCall{name: "sources", method: "GET", path: "/v1/sources", status: 200})
	do(docCall{name: "sources no token", method: "GET", path: "/v1/sources", noAuth: true, status: 401, reqInvalid: true})
	do(docCall{name: "audit", method: "GET", path: "/v1/audit?source=db&limit=50", status: 200})
	do(docCall{name: "audit of a rotation", method: "GET", path: "/v1/audit?rotation_id=" + failedID, status: 200})
	do(docCall{name: "audit bad limit", method: "GET", path: "/v1/audit?limit=0", status: 400, reqInvalid: true})
	do(docCall{name: "audit no token", method: "GET", path: "/v1/audit", noAuth: true, status: 401, reqInvalid: true})
	_, b = do(docCall{name: "notifications", method: "GET", path: "/v1/notifications", status: 200})
	require.Contains(t, string(b), `"name":"ops"`)
	do(docCall{name: "notifications no token", method: "GET", path: "/v1/notifications", noAuth: true, status: 401, reqInvalid: true})

	// A token whose scope does not cover the source or the action: 403 on every route.
	for _, c := range []docCall{
		{method: "POST", path: "/v1/rotations", body: pwRotation("db")},
		{method: "GET", path: "/v1/rotations"},
		{method: "GET", path: "/v1/rotations/" + okID},
		{method: "POST", path: "/v1/rotations/" + failedID + "/retry"},
		{method: "GET", path: "/v1/sources"},
		{method: "GET", path: "/v1/audit"},
		{method: "POST", path: "/v1/pauses", body: `{"reason":"x"}`},
		{method: "GET", path: "/v1/pauses"},
		{method: "DELETE", path: "/v1/pauses/pause_1"},
		{method: "GET", path: "/v1/notifications"},
		{method: "GET", path: "/"},
	} {
		c.name, c.token, c.status = "out of scope "+c.method+" "+c.path, docNarrow, 403
		_, b := do(c)
		require.Contains(t, string(b), `"code":"forbidden"`, c.name)
	}

	// Pauses: start one, see it, end it; and the refusals.
	_, b = do(docCall{name: "pause", method: "POST", path: "/v1/pauses", body: `{"platform":"p","reason":"vendor incident"}`, status: 201})
	pauseID := rotationID(t, b)
	do(docCall{name: "pauses", method: "GET", path: "/v1/pauses?all=true", status: 200})
	do(docCall{name: "pauses bad all", method: "GET", path: "/v1/pauses?all=maybe", status: 400, reqInvalid: true})
	do(docCall{name: "pauses no token", method: "GET", path: "/v1/pauses", noAuth: true, status: 401, reqInvalid: true})
	do(docCall{name: "unpause", method: "DELETE", path: "/v1/pauses/" + pauseID, status: 200})
	do(docCall{name: "unpause again", method: "DELETE", path: "/v1/pauses/" + pauseID, status: 404})
	do(docCall{name: "unpause no token", method: "DELETE", path: "/v1/pauses/" + pauseID, noAuth: true, status: 401, reqInvalid: true})
	for _, c := range []docCall{
		{name: "pause no token", body: `{"reason":"x"}`, noAuth: true, status: 401, reqInvalid: true},
		{name: "pause malformed", body: `{"reason":`, status: 400, reqInvalid: true},
		{name: "pause too large", body: `{"reason":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, status: 413, reqAny: true},
		{name: "pause not JSON", body: `{"reason":"x"}`, contentType: "text/plain", status: 415, reqInvalid: true},
		{name: "pause without reason", body: `{"platform":"p"}`, status: 422, reqInvalid: true},
		{name: "pause of an unknown platform", body: `{"platform":"nope","reason":"x"}`, status: 422},
	} {
		c.method, c.path = "POST", "/v1/pauses"
		do(c)
	}

	// The status page: bearer, ?token= → cookie → page, and the refusals.
	do(docCall{name: "status bearer", method: "GET", path: "/", status: 200})
	do(docCall{name: "status no token", method: "GET", path: "/", noAuth: true, status: 401, reqInvalid: true})
	do(docCall{name: "status bad token", method: "GET", path: "/?token=nope", noAuth: true, status: 401})
	resp, _ = do(docCall{name: "status sign in", method: "GET", path: "/?token=" + docToken, noAuth: true, status: 303})
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == StatusCookie {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	require.NotEmpty(t, cookie)
	do(docCall{name: "status cookie", method: "GET", path: "/", noAuth: true, header: map[string]string{"Cookie": cookie}, status: 200})

	// A broken store: 500 without details, and /readyz says 503.
	e.store.broken.Store(true)
	do(docCall{name: "readyz down", method: "GET", path: "/readyz", noAuth: true, status: 503})
	do(docCall{name: "submit store down", method: "POST", path: "/v1/rotations", body: pwRotation("db"), status: 500})
	do(docCall{name: "list store down", method: "GET", path: "/v1/rotations", status: 500})
	do(docCall{name: "get store down", method: "GET", path: "/v1/rotations/" + okID, status: 500})
	do(docCall{name: "retry store down", method: "POST", path: "/v1/rotations/" + failedID + "/retry", status: 500})
	do(docCall{name: "sources store down", method: "GET", path: "/v1/sources", status: 500})
	do(docCall{name: "audit store down", method: "GET", path: "/v1/audit", status: 500})
	do(docCall{name: "notifications store down", method: "GET", path: "/v1/notifications", status: 500})
	do(docCall{name: "status store down", method: "GET", path: "/", status: 500})
	do(docCall{name: "pause store down", method: "POST", path: "/v1/pauses", body: `{"reason":"x"}`, status: 500})
	do(docCall{name: "pauses store down", method: "GET", path: "/v1/pauses", status: 500})
	do(docCall{name: "unpause store down", method: "DELETE", path: "/v1/pauses/" + pauseID, status: 500})
	e.store.broken.Store(false)

	// An unavailable store: 503 store_unavailable with Retry-After, never 500, on every route
	// that reads or writes it.
	e.store.unavailable.Store(true)
	for _, c := range []docCall{
		{name: "readyz store unavailable", method: "GET", path: "/readyz", noAuth: true},
		{name: "submit store unavailable", method: "POST", path: "/v1/rotations", body: pwRotation("db")},
		{name: "list store unavailable", method: "GET", path: "/v1/rotations"},
		{name: "get store unavailable", method: "GET", path: "/v1/rotations/" + okID},
		{name: "retry store unavailable", method: "POST", path: "/v1/rotations/" + failedID + "/retry"},
		{name: "sources store unavailable", method: "GET", path: "/v1/sources"},
		{name: "audit store unavailable", method: "GET", path: "/v1/audit"},
		{name: "notifications store unavailable", method: "GET", path: "/v1/notifications"},
		{name: "status store unavailable", method: "GET", path: "/"},
		{name: "pause store unavailable", method: "POST", path: "/v1/pauses", body: `{"reason":"x"}`},
		{name: "pauses store unavailable", method: "GET", path: "/v1/pauses"},
		{name: "unpause store unavailable", method: "DELETE", path: "/v1/pauses/" + pauseID},
	} {
		c.status = 503
		resp, b := do(c)
		require.Equal(t, "5", resp.Header.Get("Retry-After"), c.name)
		require.Contains(t, string(b), `"code":"store_unavailable"`, c.name)
		require.Contains(t, string(b), "the test store did not answer within 1s", c.name)
	}
	e.store.unavailable.Store(false)

	// A token over its rate limit: 429 with Retry-After, on every route that takes a token.
	limited := newDocEnv(t, WithRateLimit(0.001, 1))
	k.do(limited.srv.URL, docCall{name: "within the limit", method: "GET", path: "/v1/sources", status: 200})
	for _, c := range []docCall{
		{method: "POST", path: "/v1/rotations", body: pwRotation("db")},
		{method: "GET", path: "/v1/rotations"},
		{method: "GET", path: "/v1/rotations/rot_1"},
		{method: "POST", path: "/v1/rotations/rot_1/retry"},
		{method: "GET", path: "/v1/sources"},
		{method: "GET", path: "/v1/audit"},
		{method: "POST", path: "/v1/pauses", body: `{"reason":"x"}`},
		{method: "GET", path: "/v1/pauses"},
		{method: "DELETE", path: "/v1/pauses/pause_1"},
		{method: "GET", path: "/v1/notifications"},
	} {
		c.name, c.status = "rate limited "+c.method+" "+c.path, 429
		resp, _ := k.do(limited.srv.URL, c)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
	}

	// Shutting down: 503.
	require.NoError(t, e.eng.Shutdown(context.Background()))
	do(docCall{name: "submit while stopping", method: "POST", path: "/v1/rotations", body: pwRotation("db"), status: 503})
	do(docCall{name: "retry while stopping", method: "POST", path: "/v1/rotations/" + failedID + "/retry", status: 503})

	// Every status code the document promises was seen, except those only a panic produces.
	onlyOnPanic := map[string]bool{"healthz 500": true, "readyz 500": true, "openapi 500": true, "metrics 500": true}
	var missing []string
	for _, item := range k.doc.Paths.Map() {
		for _, op := range item.Operations() {
			for code := range op.Responses.Map() {
				key := op.OperationID + " " + code
				if !k.covered[key] && !onlyOnPanic[key] {
					missing = append(missing, key)
				}
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "the OpenAPI document promises answers no test produced")
}

func waitFinished(t *testing.T, eng *core.Engine, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rot, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.True(t, rot.Status.Finished(), "rotation %s did not finish", id)
}

// TestOpenAPIRefusesDrift checks the test itself: an answer with a field the document does not
// describe, or without one it requires, fails validation.
func TestOpenAPIRefusesDrift(t *testing.T) {
	e := newDocEnv(t)
	doc, router := loadSpec(t, e.srv.URL)
	_ = doc
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/rotations/rot_1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer x")
	route, params, err := router.FindRoute(req)
	require.NoError(t, err)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: contractOptions}
	good := `{"id":"rot_1","source":"db","seq":1,"status":"succeeded","created_at":"2025-01-02T03:04:05Z","finished_at":null,"credential_type":"password",` +
		`"targets":[{"name":"a","platform":"p","vendor":"fake","status":"failed","verified":false,"attempts":1,"error":{"code":"rejected","message":"m","retryable":false}}]}`
	for name, body := range map[string]string{
		"":                          good,
		"an undescribed field":      strings.Replace(good, `"seq":1`, `"seq":1,"priority":3`, 1),
		"a missing required field":  strings.Replace(good, `"seq":1,`, ``, 1),
		"an unknown status":         strings.Replace(good, `"status":"succeeded"`, `"status":"done"`, 1),
		"an undescribed error code": strings.Replace(good, `"rejected"`, `"exploded"`, 1),
	} {
		rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}, Body: io.NopCloser(strings.NewReader(body)), Options: responseOptions}
		err := openapi3filter.ValidateResponse(context.Background(), rin)
		if name == "" {
			require.NoError(t, err)
		} else {
			require.Error(t, err, "a rotation with %s passed validation", name)
		}
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: 418,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{}`)), Options: responseOptions}
	require.Error(t, openapi3filter.ValidateResponse(context.Background(), rin), "an undescribed status passed validation")
}

func TestOpenAPIDocumentIsServedAsWritten(t *testing.T) {
	doc, err := openapiJSON()
	require.NoError(t, err)
	// Paths keep the order of openapi.yaml: the document reads as written.
	require.Less(t, bytes.Index(doc, []byte(`"/healthz"`)), bytes.Index(doc, []byte(`"/v1/audit"`)))
	for _, want := range []string{`"openapi": "3.0.3"`, `"Idempotency-Key"`, `"discriminator"`, `"text/html"`, `"text/plain"`} {
		require.Contains(t, string(doc), want)
	}
}
