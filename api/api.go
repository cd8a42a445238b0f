// Package api is credsync's REST API on echo: authentication, the error envelope, request
// decoding and the mapping of engine results and errors to HTTP statuses.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/jsonx"
)

// MaxBodyBytes is the default bound of a request body; a larger one is refused with 413.
const MaxBodyBytes = 1 << 20

// MaxWait bounds ?wait=.
const MaxWait = 5 * time.Minute

// Token is one caller allowed to use the API: its clear value, or only the SHA-256 of it.
type Token struct {
	Name   string
	Token  core.Secret
	SHA256 [sha256.Size]byte // used when Token is empty
	Scope  Scope             // what it may touch; the zero Scope: everything
}

// Recorder receives API metrics; route is the route pattern, never the raw path.
type Recorder interface {
	APIRequest(route string, code int)
	APIRateLimited(token string)
}

// Option tunes the API.
type Option func(*Server)

// WithMetrics serves h at GET /metrics (no auth, like /healthz) and counts requests into r.
func WithMetrics(h http.Handler, r Recorder) Option {
	return func(s *Server) { s.metricsHandler, s.recorder = h, r }
}

// WithRateLimit limits each API token to rps requests per second with bursts of burst; a caller
// over its limit gets 429 with Retry-After.
func WithRateLimit(rps float64, burst int) Option {
	return func(s *Server) { s.rps, s.burst = rps, burst }
}

// WithClock sets the clock status page sessions expire by (tests).
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithMaxBody bounds request bodies (default MaxBodyBytes).
func WithMaxBody(n int64) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxBody = n
		}
	}
}

// Server is the HTTP API in front of an engine.
type Server struct {
	eng            *core.Engine
	log            *zap.Logger
	tokens         []tokenDigest
	echo           *echo.Echo
	metricsHandler http.Handler
	recorder       Recorder
	rps            float64
	burst          int
	maxBody        int64
	limiters       map[string]*rate.Limiter
	// sessionKey signs status page sessions; it exists only in this process (a restart signs
	// everyone out). now is the clock sessions expire by.
	sessionKey   [32]byte
	now          func() time.Time
	shuttingDown atomic.Bool // set by ShuttingDown (drain.go)
}

type tokenDigest struct {
	name   string
	digest [sha256.Size]byte
	scope  Scope
}

// New returns the API with its routes.
func New(eng *core.Engine, tokens []Token, log *zap.Logger, opts ...Option) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{eng: eng, log: log, maxBody: MaxBodyBytes, limiters: map[string]*rate.Limiter{}, now: time.Now}
	if _, err := rand.Read(s.sessionKey[:]); err != nil {
		panic("api: no randomness for the session key: " + err.Error()) // crypto/rand does not fail on Linux
	}
	for _, o := range opts {
		o(s)
	}
	for _, t := range tokens {
		d := t.SHA256
		if !t.Token.IsZero() {
			d = sha256.Sum256([]byte(t.Token.Reveal()))
		}
		s.tokens = append(s.tokens, tokenDigest{name: t.Name, digest: d, scope: t.Scope})
		if s.rps > 0 {
			s.limiters[t.Name] = rate.NewLimiter(rate.Limit(s.rps), max(1, s.burst))
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.requestLog, s.recoverPanic, strictQuery)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz, s.readyUnlessShuttingDown)
	// Auth is per route rather than group middleware: echo's group middleware turns an
	// unsupported method into a 404 instead of a 405.
	e.POST("/v1/rotations", s.createRotation, s.authenticate)
	e.GET("/v1/rotations", s.listRotations, s.authenticate)
	e.GET("/v1/rotations/:id", s.getRotation, s.authenticate)
	e.POST("/v1/rotations/:id/retry", s.retryRotation, s.authenticate)
	e.GET("/v1/sources", s.listSources, s.authenticate)
	e.GET("/v1/audit", s.listAudit, s.authenticate)
	e.GET("/v1/notifications", s.listNotifications, s.authenticate)
	if s.metricsHandler != nil {
		e.GET("/metrics", echo.WrapHandler(s.metricsHandler))
	}
	s.routesPauses(e)
	s.routesDocs(e)
	s.routesStatus(e)
	s.echo = e
	return s
}

// strictQuery refuses a query string that cannot be read exactly: a malformed %-escape (echo
// would drop the parameter silently) or a parameter given twice (which one counts?). The
// message names the parameter, never its value: a status token may travel in ?token=.
func strictQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Request().URL.RawQuery
		if raw == "" {
			return next(c)
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			return fail(http.StatusBadRequest, "bad_request", "the query string is malformed (a %-escape that is not two hex digits, or a ; separator): encode it with URL encoding")
		}
		for k, vs := range q {
			if len(vs) > 1 {
				return fail(http.StatusBadRequest, "bad_request", fmt.Sprintf("the query parameter %q is given %d times: give it once", clip(k, 40), len(vs)))
			}
		}
		return next(c)
	}
}

// Handler returns the API as an http.Handler; HEAD is answered on every GET route (head.go).
func (s *Server) Handler() http.Handler { return headAsGet(s.echo) }

// ErrorBody is the error envelope of every non-2xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong and, for bad input, which fields.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details []core.Problem `json:"details,omitempty"`
	// DetailsTotal is how many problems there were when Details lists only the first
	// MaxDetails of them.
	DetailsTotal int `json:"details_total,omitempty"`
}

// MaxDetails bounds the problems one error answer lists; maxDetailMessage bounds each message.
const (
	MaxDetails       = 50
	maxDetailMessage = 300
)

// apiError is an error with its HTTP status and envelope.
type apiError struct {
	status int
	body   ErrorDetail
	header http.Header
}

func (e *apiError) Error() string { return e.body.Message }

// fail builds an error answer. Its size is bounded whatever the input: at most MaxDetails
// problems (the total is given), each message at most maxDetailMessage bytes.
func fail(status int, code, msg string, details ...core.Problem) *apiError {
	body := ErrorDetail{Code: code, Message: msg}
	if n := len(details); n > MaxDetails {
		body.DetailsTotal = n
		body.Message = fmt.Sprintf("%s (%d problems; the first %d are listed)", msg, n, MaxDetails)
		details = details[:MaxDetails]
	}
	for _, d := range details {
		d.Field, d.Message = clip(d.Field, maxDetailMessage), clip(d.Message, maxDetailMessage)
		body.Details = append(body.Details, d)
	}
	return &apiError{status: status, body: body}
}

// clip bounds s to n bytes without cutting a character in two.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// handleError renders every error, ours or echo's (404 route, 405 method), as the envelope.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := s.toAPIError(err)
	for k, vs := range ae.header {
		for _, v := range vs {
			c.Response().Header().Add(k, v)
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.status)
		return
	}
	_ = c.JSON(ae.status, ErrorBody{Error: ae.body})
}

func (s *Server) toAPIError(err error) *apiError {
	var ae *apiError
	var he *echo.HTTPError
	var ie *core.InputError
	var nf *core.NotFoundError
	var ce *core.ConflictError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, core.ErrStoreUnavailable):
		s.log.Warn("store unavailable", zap.Error(err))
		return storeUnavailable(err)
	case errors.As(err, &ie):
		return fail(http.StatusUnprocessableEntity, "invalid_request", ie.Message, ie.Problems...)
	case errors.As(err, &nf):
		return fail(http.StatusNotFound, "not_found", nf.Error())
	case errors.As(err, &ce):
		return fail(http.StatusConflict, "conflict", ce.Message)
	case errors.Is(err, core.ErrShuttingDown):
		return fail(http.StatusServiceUnavailable, "shutting_down", err.Error())
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return fail(he.Code, "not_found", "no such route: see GET /v1/openapi.json")
		case http.StatusMethodNotAllowed:
			return fail(he.Code, "method_not_allowed", "this route does not take that method")
		default:
			return fail(he.Code, strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), http.StatusText(he.Code))
		}
	default:
		s.log.Error("internal error", zap.Error(err))
		return fail(http.StatusInternalServerError, "internal", "internal error; the gateway log has the details")
	}
}

// StoreRetryAfter is the Retry-After, in seconds, of a 503 store_unavailable.
const StoreRetryAfter = 5

// storeUnavailable is the answer to an error wrapping core.ErrStoreUnavailable: 503
// store_unavailable with the store's message (what is wrong, what to do; never a secret nor a
// DSN's password) and Retry-After.
func storeUnavailable(err error) *apiError {
	msg := "the rotation store is unavailable"
	var ue *core.StoreUnavailableError
	if errors.As(err, &ue) && ue.Message != "" {
		msg = ue.Message
	}
	e := fail(http.StatusServiceUnavailable, "store_unavailable", msg+"; retry after "+strconv.Itoa(StoreRetryAfter)+"s")
	e.header = http.Header{"Retry-After": {strconv.Itoa(StoreRetryAfter)}}
	return e
}

const (
	ctxActor   = "credsync.actor"
	ctxSecrets = "credsync.secrets" // the request's secret values, for scrubbing a panic
)

// authenticate checks the bearer token against every configured token in constant time.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		digest := sha256.Sum256([]byte(strings.TrimSpace(got)))
		name, scope := "", Scope{}
		for _, t := range s.tokens { // no early exit: the time taken does not say which token matched
			if subtle.ConstantTimeCompare(digest[:], t.digest[:]) == 1 && ok && got != "" {
				name, scope = t.name, t.scope
			}
		}
		if name == "" {
			e := fail(http.StatusUnauthorized, "unauthorized", "missing or invalid API token: send Authorization: Bearer <token>")
			e.header = http.Header{"Www-Authenticate": {`Bearer realm="credsync"`}}
			return e
		}
		c.Set(ctxActor, name)
		c.Set(ctxScope, scope)
		if lim := s.limiters[name]; lim != nil && !lim.Allow() {
			r := lim.Reserve()
			wait := r.Delay()
			r.Cancel()
			if s.recorder != nil {
				s.recorder.APIRateLimited(name)
			}
			e := fail(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("token %q is over its request rate limit: retry after %s", name, wait.Round(time.Second)))
			e.header = http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(wait.Seconds())))}}
			return e
		}
		return next(c)
	}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestLog writes one line per request, with a request id (the caller's X-Request-Id when it is
// sane, else a new one) that is also sent back.
func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		rid := c.Request().Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(rid) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			rid = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set("X-Request-Id", rid)
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		actor, _ := c.Get(ctxActor).(string)
		fields := []zap.Field{zap.String("request_id", rid), zap.String("method", requestMethod(c.Request())),
			zap.String("route", c.Path()), zap.String("path", c.Request().URL.Path), zap.Int("status", c.Response().Status),
			zap.Float64("took_ms", millis(time.Since(start))), zap.Int64("bytes_out", c.Response().Size)}
		if actor != "" {
			fields = append(fields, zap.String("actor", actor))
		}
		if id, ok := c.Get("rotation_id").(string); ok {
			fields = append(fields, zap.String("rotation_id", id))
		}
		s.log.Info("request", fields...)
		if s.recorder != nil {
			route := c.Path()
			if route == "" || strings.HasSuffix(route, "*") {
				route = "unmatched"
			}
			s.recorder.APIRequest(route, c.Response().Status)
		}
		return nil
	}
}

// recoverPanic answers 500 without details and logs the stack.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				// Scrub what the request carried: a panic value may quote the credential.
				secrets, _ := c.Get(ctxSecrets).([]string)
				s.log.Error("panic while serving a request", zap.String("panic", core.Scrub(fmt.Sprint(r), secrets)),
					zap.String("stack", core.Scrub(string(debug.Stack()), secrets)))
				err = fail(http.StatusInternalServerError, "internal", "internal error; the gateway log has the details")
			}
		}()
		return next(c)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready only when a write round trip to the store succeeds within store.timeout
// (Engine.Ping): a store that answers reads but would refuse or lose writes is not ready.
func (s *Server) readyz(c echo.Context) error {
	if err := s.eng.Ping(c.Request().Context()); err != nil {
		s.log.Warn("not ready", zap.Error(err))
		if errors.Is(err, core.ErrStoreUnavailable) {
			return storeUnavailable(err)
		}
		return fail(http.StatusServiceUnavailable, "not_ready", "the rotation store does not take a write")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// rotationRequest is the body of POST /v1/rotations.
type rotationRequest struct {
	Source     string          `json:"source"`
	Credential json.RawMessage `json:"credential"`
	Targets    []string        `json:"targets"`
	DryRun     bool            `json:"dry_run"`
	// Generate: credsync makes the credential itself (the source has rotation:); no credential.
	Generate bool `json:"generate"`
}

// MaxTargetsPerRequest bounds the targets list of one rotation request.
const MaxTargetsPerRequest = 10000

// PlanResponse is the answer to a dry run.
type PlanResponse struct {
	DryRun   bool           `json:"dry_run"`
	Source   string         `json:"source"`
	Requests []core.Planned `json:"requests"`
}

func (s *Server) readJSON(c echo.Context) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, s.maxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, fail(http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is over %d bytes", s.maxBody))
		}
		return nil, fail(http.StatusBadRequest, "bad_request", "could not read the request body")
	}
	if !json.Valid(body) {
		return nil, fail(http.StatusBadRequest, "malformed_json", "the body is not valid JSON")
	}
	// A credential must never be silently altered or ambiguous.
	if err := jsonx.Check(body); err != nil {
		var je *jsonx.Error
		errors.As(err, &je)
		field := je.Path
		if field == "" {
			field = "body"
		}
		return nil, fail(http.StatusBadRequest, "bad_request", "the body cannot be read without altering or guessing a value: "+je.Problem,
			core.Problem{Field: field, Message: je.Problem})
	}
	return body, nil
}

// decodeBody decodes a checked body into v, strictly (jsonx.Decode); a mismatch is a 422 that
// names the field.
func decodeBody(body []byte, v any, what string) error {
	if err := jsonx.Decode(body, v); err != nil {
		p := core.Problem{Field: "body", Message: err.Error()}
		var je *jsonx.Error
		if errors.As(err, &je) && je.Path != "" {
			p = core.Problem{Field: je.Path, Message: je.Problem}
		}
		return &core.InputError{Message: what, Problems: []core.Problem{p}}
	}
	return nil
}

func (s *Server) decodeRotation(body []byte) (rotationRequest, core.Credential, error) {
	var req rotationRequest
	if err := decodeBody(body, &req, "invalid rotation request"); err != nil {
		return req, core.Credential{}, err
	}
	if len(req.Targets) > MaxTargetsPerRequest {
		return req, core.Credential{}, &core.InputError{Message: "invalid rotation request", Problems: []core.Problem{{Field: "targets",
			Message: fmt.Sprintf("lists %d targets: at most %d (leave it out to rotate every target of the source)", len(req.Targets), MaxTargetsPerRequest)}}}
	}
	var problems []core.Problem
	if strings.TrimSpace(req.Source) == "" {
		problems = append(problems, core.Problem{Field: "source", Message: "is required"})
	}
	noCred := len(req.Credential) == 0 || string(req.Credential) == "null"
	switch {
	case req.Generate && !noCred:
		problems = append(problems, core.Problem{Field: "credential", Message: "give either generate: true (credsync makes the credential) or a credential, not both"})
	case noCred && !req.Generate:
		problems = append(problems, core.Problem{Field: "credential", Message: "is required (or generate: true for a source credsync rotates itself)"})
	}
	if len(problems) > 0 {
		return req, core.Credential{}, &core.InputError{Message: "invalid rotation request", Problems: problems}
	}
	if req.Generate {
		return req, core.Credential{}, nil
	}
	cred, err := core.DecodeCredential(req.Credential)
	return req, cred, err
}

func (s *Server) createRotation(c echo.Context) error {
	wait, err := parseWait(c.QueryParam("wait"))
	if err != nil {
		return err
	}
	body, err := s.readJSON(c)
	if err != nil {
		return err
	}
	req, cred, err := s.decodeRotation(body)
	if err != nil {
		return err
	}
	c.Set(ctxSecrets, cred.Secrets())
	if err := allowSource(c, ActionRotate, req.Source); err != nil {
		return err
	}
	actor, _ := c.Get(ctxActor).(string)
	sreq := core.SubmitRequest{Source: req.Source, Credential: cred, Targets: req.Targets, Actor: actor, Generate: req.Generate}
	if req.DryRun {
		plan, err := s.eng.Plan(sreq)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, PlanResponse{DryRun: true, Source: req.Source, Requests: plan})
	}
	if key := c.Request().Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 255 {
			return fail(http.StatusBadRequest, "bad_request", "Idempotency-Key is over 255 characters")
		}
		sum := sha256.Sum256(body)
		sreq.IdempotencyKey, sreq.RequestHash = key, hex.EncodeToString(sum[:])
	}
	rot, replayed, err := s.eng.Submit(c.Request().Context(), sreq)
	if err != nil {
		return err
	}
	c.Set("rotation_id", rot.ID)
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	if wait > 0 && !rot.Status.Finished() {
		ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
		defer cancel()
		if rot, err = s.eng.WaitPage(ctx, rot.ID, core.TargetPage{}); err != nil {
			return err
		}
	} // else: Submit's answer is bounded already (counts and the first page)
	c.Response().Header().Set("Location", "/v1/rotations/"+rot.ID)
	status := http.StatusAccepted
	if rot.Status.Finished() {
		status = http.StatusOK
	}
	return c.JSON(status, rot)
}

func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	bad := fail(http.StatusBadRequest, "bad_request", fmt.Sprintf("wait=%q: give a duration such as 30s (at most %s is waited)", clip(v, 40), MaxWait))
	d, err := time.ParseDuration(v)
	if err != nil {
		// Whole seconds, compared before multiplying so that a huge number cannot wrap around
		// into a short wait.
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil || n < 0 {
			return 0, bad
		}
		d = MaxWait
		if n < int64(MaxWait/time.Second) {
			d = time.Duration(n) * time.Second
		}
	}
	if d < 0 {
		return 0, bad
	}
	return min(d, MaxWait), nil // a longer wait is answered at MaxWait with the rotation so far
}

// getRotation answers a rotation with one page of its targets (?targets_limit=, default 100,
// at most 1000; ?targets_after=<next_targets of the previous page>; ?target_status=) and its
// per-status counts: bounded, however many targets it has.
func (s *Server) getRotation(c echo.Context) error {
	c.Set("rotation_id", c.Param("id"))
	if err := allow(c, ActionRead); err != nil {
		return err
	}
	p, err := targetPage(c)
	if err != nil {
		return err
	}
	rot, err := s.eng.GetPage(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return err
	}
	if err := allowSource(c, ActionRead, rot.Source); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rot)
}

// targetPage reads the target page parameters; bad values are 400.
func targetPage(c echo.Context) (core.TargetPage, error) {
	p := core.TargetPage{After: c.QueryParam("targets_after"), Status: core.TargetStatus(c.QueryParam("target_status"))}
	if l := c.QueryParam("targets_limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > core.MaxTargetPage {
			return p, fail(http.StatusBadRequest, "bad_request", fmt.Sprintf("targets_limit=%q: a number from 1 to %d", clip(l, 40), core.MaxTargetPage))
		}
		p.Limit = n
	}
	if _, _, err := p.Bounds(); err != nil {
		var ie *core.InputError
		if errors.As(err, &ie) && len(ie.Problems) > 0 {
			return p, fail(http.StatusBadRequest, "bad_request", ie.Problems[0].Field+" "+ie.Problems[0].Message, ie.Problems...)
		}
		return p, err
	}
	return p, nil
}

// ListResponse is the answer to GET /v1/rotations. NextBefore, when set, fetches the next page
// (?before=<next_before>).
type ListResponse struct {
	Rotations  []*core.Rotation `json:"rotations"`
	NextBefore string           `json:"next_before,omitempty"`
}

func (s *Server) listRotations(c echo.Context) error {
	f := core.ListFilter{Source: c.QueryParam("source"), Status: core.RotationStatus(c.QueryParam("status")), Before: c.QueryParam("before")}
	if err := s.scopeListing(c, f.Source, &f.Sources); err != nil {
		return err
	}
	switch f.Status {
	case "", core.RotationPending, core.RotationRunning, core.RotationSucceeded, core.RotationPartial, core.RotationFailed, core.RotationSuperseded:
	default:
		return fail(http.StatusBadRequest, "bad_request", fmt.Sprintf("status=%q: one of pending, running, succeeded, partial, failed", f.Status))
	}
	limit, err := parseLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	f.Limit = limit
	rots, err := s.eng.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	resp := ListResponse{Rotations: rots}
	if n := len(rots); n > 0 && n == effectiveLimit(limit) {
		resp.NextBefore = rots[n-1].ID
	}
	return c.JSON(http.StatusOK, resp)
}

func parseLimit(l string) (int, error) {
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, fail(http.StatusBadRequest, "bad_request", fmt.Sprintf("limit=%q: a number from 1 to 1000", l))
	}
	return n, nil
}

func effectiveLimit(l int) int {
	if l == 0 {
		return core.DefaultListLimit
	}
	return l
}

// AuditResponse is the answer to GET /v1/audit.
type AuditResponse struct {
	Events []core.AuditEvent `json:"events"`
}

// listAudit answers who rotated which source when, and each target's outcome, newest first.
func (s *Server) listAudit(c echo.Context) error {
	limit, err := parseLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	f := core.AuditFilter{Source: c.QueryParam("source"), RotationID: c.QueryParam("rotation_id"), Limit: limit}
	if err := s.scopeListing(c, f.Source, &f.Sources); err != nil {
		return err
	}
	evs, err := s.eng.Audit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []core.AuditEvent{}
	}
	return c.JSON(http.StatusOK, AuditResponse{Events: evs})
}

func (s *Server) retryRotation(c echo.Context) error {
	c.Set("rotation_id", c.Param("id"))
	if err := allow(c, ActionRetry); err != nil {
		return err
	}
	if !scopeOf(c).All() {
		// Which source is it? A token may only retry what its scope covers.
		rot, err := s.eng.GetPage(c.Request().Context(), c.Param("id"), core.TargetPage{Limit: 1})
		if err != nil {
			return err
		}
		if err := allowSource(c, ActionRetry, rot.Source); err != nil {
			return err
		}
	}
	actor, _ := c.Get(ctxActor).(string)
	rot, err := s.eng.Retry(c.Request().Context(), c.Param("id"), actor) // bounded: counts and the first page
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/rotations/"+rot.ID)
	return c.JSON(http.StatusAccepted, rot)
}

// SourcesResponse is the answer to GET /v1/sources.
type SourcesResponse struct {
	Sources []core.SourceView `json:"sources"`
}

func (s *Server) listSources(c echo.Context) error {
	if err := allow(c, ActionRead); err != nil {
		return err
	}
	srcs, err := s.eng.Sources(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, SourcesResponse{Sources: inScope(scopeOf(c), srcs)})
}

// inScope keeps the sources sc covers.
func inScope(sc Scope, srcs []core.SourceView) []core.SourceView {
	if sc.All() {
		return srcs
	}
	out := make([]core.SourceView, 0, len(srcs))
	for _, v := range srcs {
		if sc.Covers(v.Name) {
			out = append(out, v)
		}
	}
	return out
}

// scopeListing checks a read listing: 403 for a token without read, or for ?source= its scope
// does not cover; otherwise it sets the listing's Sources filter to what the token may see.
func (s *Server) scopeListing(c echo.Context, source string, filter *[]string) error {
	if err := allow(c, ActionRead); err != nil {
		return err
	}
	if source != "" {
		return allowSource(c, ActionRead, source)
	}
	*filter = s.visibleSources(c)
	return nil
}

// NotificationsResponse is the answer to GET /v1/notifications.
type NotificationsResponse struct {
	Notifications []core.NotificationView `json:"notifications"`
}

// listNotifications answers each configured notification's deliveries by status and its last
// error: never its URL nor its secret, which the engine does not even know.
// Notifications carry every source's events, so reading them needs admin and no source scope.
func (s *Server) listNotifications(c echo.Context) error {
	if err := allow(c, ActionAdmin); err != nil {
		return err
	}
	if !scopeOf(c).All() {
		return forbidden(c, "read notifications (they carry every source's events)")
	}
	ns, err := s.eng.Notifications(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NotificationsResponse{Notifications: ns})
}
