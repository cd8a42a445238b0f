// Package client is a small Go client for credsync's REST API (/v1): submit a rotation or its dry
// run, read rotations and sources, and wait for a rotation to end. The credsync CLI's client verbs
// and the tests use it.
//
// Every answer keeps the exact JSON the gateway sent (Raw), so that a caller can pass it on
// unchanged. Errors are typed: *APIError carries the API's error envelope and HTTP status,
// *UnreachableError a failure to reach the gateway at all. The API token is a core.Secret: it
// never shows in an error or a formatted value.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credsync/credsync/core"
)

// DefaultAddr is the gateway address when none is given.
const DefaultAddr = "http://127.0.0.1:8080"

// DefaultTimeout bounds one request to the gateway.
const DefaultTimeout = 60 * time.Second

// DefaultPollInterval is how often Wait asks for a rotation's state.
const DefaultPollInterval = 500 * time.Millisecond

// maxAnswerBytes bounds how much of an answer is read.
const maxAnswerBytes = 16 << 20

// Options tune a Client.
type Options struct {
	// HTTPClient sends the requests (default: a client that follows no redirect, so the token
	// never goes to another host).
	HTTPClient *http.Client
	// Timeout bounds each request (default DefaultTimeout); Rotate with Wait adds the wait.
	Timeout time.Duration
	// PollInterval is how often Wait polls (default DefaultPollInterval).
	PollInterval time.Duration
	// UserAgent is sent on every request (default "credsync-client").
	UserAgent string
}

// Client talks to one credsync gateway. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   core.Secret
	http    *http.Client
	timeout time.Duration
	poll    time.Duration
	agent   string
}

// New returns a client for the gateway at addr ("http://host:port"; a bare "host:port" means
// http) that authenticates with token.
func New(addr string, token core.Secret, opts Options) (*Client, error) {
	u, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{base: u, token: token, http: opts.HTTPClient, timeout: opts.Timeout, poll: opts.PollInterval, agent: opts.UserAgent}
	if c.http == nil {
		c.http = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.poll <= 0 {
		c.poll = DefaultPollInterval
	}
	if c.agent == "" {
		c.agent = "credsync-client"
	}
	return c, nil
}

// ParseAddr checks a gateway address: an absolute http(s) URL with a host and no query, or a bare
// host:port (taken as http).
func ParseAddr(addr string) (*url.URL, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		a = DefaultAddr
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(strings.TrimRight(a, "/"))
	if err == nil && u.User != nil {
		return nil, errors.New("gateway address: leave the user and password out of the URL; the API token comes from --token-file or CREDSYNC_TOKEN")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("gateway address %q: give an http(s) URL such as %s", addr, DefaultAddr)
	}
	return u, nil
}

// Addr returns the gateway's base URL.
func (c *Client) Addr() string { return c.base.String() }

// APIError is a non-2xx answer of the gateway: its HTTP status and error envelope
// {"error": {"code", "message", "details"}}.
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	Code       string
	Message    string
	Details    []core.Problem
	RequestID  string // the gateway's X-Request-Id, to find the request in its log
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	for _, d := range e.Details {
		b.WriteString("; ")
		if d.Target != "" {
			fmt.Fprintf(&b, "target %s: ", d.Target)
		}
		if d.Field != "" {
			fmt.Fprintf(&b, "%s: ", d.Field)
		}
		b.WriteString(d.Message)
	}
	return b.String()
}

// BadInput reports whether the gateway refused the request itself (400, 404, 405, 409, 413, 415,
// 422): sending it again unchanged cannot succeed.
func (e *APIError) BadInput() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && !e.Unauthorized() && e.StatusCode != http.StatusTooManyRequests
}

// Unauthorized reports whether the gateway refused the API token (401, 403).
func (e *APIError) Unauthorized() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// ServerError reports whether the gateway answered 5xx (or 429): it is there but cannot serve now.
func (e *APIError) ServerError() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// UnreachableError is a request that got no HTTP answer: connection refused, DNS, timeout, or an
// answer that is not the gateway's JSON.
type UnreachableError struct {
	Method string
	Path   string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s %s: gateway unreachable: %v", e.Method, e.Path, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err says the gateway could not be reached or answered 5xx.
func IsUnreachable(err error) bool {
	var ue *UnreachableError
	var ae *APIError
	return errors.As(err, &ue) || (errors.As(err, &ae) && ae.ServerError())
}

// IsBadInput reports whether err is the gateway refusing the request (see APIError.BadInput).
func IsBadInput(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.BadInput()
}

// IsUnauthorized reports whether err is the gateway refusing the API token.
func IsUnauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Unauthorized()
}

// Rotation is a rotation as the API answers it, with the answer's exact JSON.
type Rotation struct {
	core.Rotation
	// Raw is the JSON document the gateway sent.
	Raw json.RawMessage `json:"-"`
	// Replayed is set when the gateway answered an Idempotency-Key it had seen with the same body
	// (Idempotent-Replayed: true): this is the first rotation, not a new one.
	Replayed bool `json:"-"`
}

// Plan is the answer to a dry run: per target, the request that would be sent, secrets redacted.
type Plan struct {
	DryRun   bool            `json:"dry_run"`
	Source   string          `json:"source"`
	Requests []core.Planned  `json:"requests"`
	Raw      json.RawMessage `json:"-"`
}

// RotationList is a page of rotations, newest first.
type RotationList struct {
	Rotations  []*core.Rotation `json:"rotations"`
	NextBefore string           `json:"next_before,omitempty"`
	Raw        json.RawMessage  `json:"-"`
}

// Sources is the answer to GET /v1/sources.
type Sources struct {
	Sources []core.SourceView `json:"sources"`
	Raw     json.RawMessage   `json:"-"`
}

// RotateRequest is a rotation to submit.
type RotateRequest struct {
	Source string
	// Credential is the neutral credential as a JSON object ({"type": ..., ...}). It holds the
	// secret in clear: the client sends it and never prints it.
	Credential json.RawMessage
	// Targets restricts the rotation to these target names (empty: every target of the source).
	Targets []string
	// IdempotencyKey, when set, makes resubmitting the same request return the same rotation.
	IdempotencyKey string
	// Generate asks credsync to make the credential itself (a source with rotation:); then
	// Credential and Targets stay empty.
	Generate bool
	// Wait asks the gateway to hold the answer until the rotation ends or Wait runs out (at most
	// 5m on the gateway's side); zero answers at once.
	Wait time.Duration
}

type rotationBody struct {
	Source     string          `json:"source"`
	Credential json.RawMessage `json:"credential,omitempty"`
	Targets    []string        `json:"targets,omitempty"`
	DryRun     bool            `json:"dry_run,omitempty"`
	Generate   bool            `json:"generate,omitempty"`
}

// Rotate submits a rotation (POST /v1/rotations). The gateway answers at once with the rotation
// pending or running, unless Wait is set.
func (c *Client) Rotate(ctx context.Context, r RotateRequest) (*Rotation, error) {
	body, err := json.Marshal(rotationBody{Source: r.Source, Credential: r.Credential, Targets: r.Targets, Generate: r.Generate})
	if err != nil {
		return nil, fmt.Errorf("encode rotation request: the credential is not valid JSON")
	}
	path := "/v1/rotations"
	if r.Wait > 0 {
		path += "?wait=" + url.QueryEscape(r.Wait.String())
	}
	hdr := http.Header{}
	if r.IdempotencyKey != "" {
		hdr.Set("Idempotency-Key", r.IdempotencyKey)
	}
	var rot Rotation
	resp, err := c.doWait(ctx, r.Wait, http.MethodPost, path, hdr, body, &rot, &rot.Raw)
	if err != nil {
		return nil, err
	}
	rot.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return &rot, nil
}

// PlanRequest is a dry run to ask for.
type PlanRequest struct {
	Source     string
	Credential json.RawMessage
	Targets    []string
	Generate   bool // the dry run of a generated rotation (the staged user shows; no password is made)
}

// Plan asks for the dry run of a rotation (POST /v1/rotations with dry_run: true): nothing is
// sent to any vendor.
func (c *Client) Plan(ctx context.Context, r PlanRequest) (*Plan, error) {
	body, err := json.Marshal(rotationBody{Source: r.Source, Credential: r.Credential, Targets: r.Targets, DryRun: true, Generate: r.Generate})
	if err != nil {
		return nil, fmt.Errorf("encode dry-run request: the credential is not valid JSON")
	}
	var p Plan
	if _, err := c.do(ctx, http.MethodPost, "/v1/rotations", nil, body, &p, &p.Raw); err != nil {
		return nil, err
	}
	return &p, nil
}

// Get returns one rotation with the first page of its targets and its per-status counts
// (GET /v1/rotations/{id}); GetAll follows the pages.
func (c *Client) Get(ctx context.Context, id string) (*Rotation, error) {
	return c.GetPage(ctx, id, core.TargetPage{})
}

// GetPage returns one rotation with one page of its targets (see core.TargetPage; After is
// the NextTargets of the previous page).
func (c *Client) GetPage(ctx context.Context, id string, p core.TargetPage) (*Rotation, error) {
	if strings.TrimSpace(id) == "" {
		return nil, errors.New("get rotation: the rotation id is empty")
	}
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("targets_limit", fmt.Sprint(p.Limit))
	}
	if p.After != "" {
		q.Set("targets_after", p.After)
	}
	if p.Status != "" {
		q.Set("target_status", string(p.Status))
	}
	path := "/v1/rotations/" + url.PathEscape(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var rot Rotation
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &rot, &rot.Raw); err != nil {
		return nil, err
	}
	return &rot, nil
}

// GetAll returns one rotation with every target, reading them a page (of core.MaxTargetPage)
// at a time. Raw is the whole rotation as one document.
func (c *Client) GetAll(ctx context.Context, id string) (*Rotation, error) {
	first, err := c.GetPage(ctx, id, core.TargetPage{Limit: core.MaxTargetPage})
	if err != nil {
		return nil, err
	}
	for next := first.NextTargets; next != ""; {
		page, err := c.GetPage(ctx, id, core.TargetPage{Limit: core.MaxTargetPage, After: next})
		if err != nil {
			return nil, err
		}
		first.Targets = append(first.Targets, page.Targets...)
		next = page.NextTargets
	}
	first.NextTargets = ""
	if first.Raw, err = json.Marshal(first.Rotation); err != nil {
		return nil, fmt.Errorf("get rotation %s: encode: %w", id, err)
	}
	return first, nil
}

// Retry sends a rotation's credential again to its targets that did not succeed
// (POST /v1/rotations/{id}/retry).
func (c *Client) Retry(ctx context.Context, id string) (*Rotation, error) {
	var rot Rotation
	if _, err := c.do(ctx, http.MethodPost, "/v1/rotations/"+url.PathEscape(id)+"/retry", nil, nil, &rot, &rot.Raw); err != nil {
		return nil, err
	}
	return &rot, nil
}

// ListOptions filter List.
type ListOptions struct {
	Source string
	Status core.RotationStatus
	Limit  int
	Before string // NextBefore of the previous page
}

// List returns rotations, newest first (GET /v1/rotations).
func (c *Client) List(ctx context.Context, o ListOptions) (*RotationList, error) {
	q := url.Values{}
	if o.Source != "" {
		q.Set("source", o.Source)
	}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.Limit > 0 {
		q.Set("limit", fmt.Sprint(o.Limit))
	}
	if o.Before != "" {
		q.Set("before", o.Before)
	}
	path := "/v1/rotations"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l RotationList
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &l, &l.Raw); err != nil {
		return nil, err
	}
	return &l, nil
}

// Sources returns the configured sources and targets with each target's last outcome
// (GET /v1/sources).
func (c *Client) Sources(ctx context.Context) (*Sources, error) {
	var s Sources
	if _, err := c.do(ctx, http.MethodGet, "/v1/sources", nil, nil, &s, &s.Raw); err != nil {
		return nil, err
	}
	return &s, nil
}

// Wait polls a rotation until it has finished and returns it, every target included. onUpdate,
// if not nil, is called with every state read (the first page of targets and the counts), the
// first and the last included. When ctx ends first, Wait returns the
// last state read together with ctx's error. A poll that fails because the gateway is briefly
// unreachable is tried again at the next tick; any other error ends the wait.
func (c *Client) Wait(ctx context.Context, id string, onUpdate func(*Rotation)) (*Rotation, error) {
	var last *Rotation
	for {
		rot, err := c.Get(ctx, id)
		switch {
		case err == nil:
			last = rot
			if onUpdate != nil {
				onUpdate(rot)
			}
			if rot.Status.Finished() {
				if rot.NextTargets == "" {
					return rot, nil
				}
				return c.GetAll(ctx, id) // the final answer holds every target
			}
		case ctx.Err() != nil:
			return last, fmt.Errorf("wait for rotation %s: %w", id, ctx.Err())
		case !IsUnreachable(err) || last == nil:
			return last, fmt.Errorf("wait for rotation %s: %w", id, err)
		}
		t := time.NewTimer(c.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("wait for rotation %s: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// do sends one request and decodes a 2xx JSON answer into out, keeping the raw document in raw.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body []byte, out any, raw *json.RawMessage) (*http.Response, error) {
	return c.doWait(ctx, 0, method, path, hdr, body, out, raw)
}

// doWait is do for a request the gateway may hold for up to wait.
func (c *Client) doWait(ctx context.Context, wait time.Duration, method, path string, hdr http.Header, body []byte, out any, raw *json.RawMessage) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+wait)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnreachableError{Method: method, Path: path, Err: transportCause(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, &UnreachableError{Method: method, Path: path, Err: fmt.Errorf("read the answer: %w", transportCause(err))}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, apiError(method, path, resp, b)
	}
	if !json.Valid(b) {
		return nil, &UnreachableError{Method: method, Path: path, Err: fmt.Errorf("HTTP %d answer is not JSON: is %s a credsync gateway?", resp.StatusCode, c.base)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, &UnreachableError{Method: method, Path: path, Err: fmt.Errorf("HTTP %d answer is not what credsync answers: %w", resp.StatusCode, err)}
	}
	*raw = json.RawMessage(b)
	return resp, nil
}

// transportCause strips the URL from *url.Error (it is ours) and names timeouts plainly.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("no answer in time: %w", err)
	}
	return err
}

func apiError(method, path string, resp *http.Response, b []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var env struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details []core.Problem `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && (env.Error.Code != "" || env.Error.Message != "") {
		e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
		return e
	}
	// Not the gateway's envelope (a proxy in between, say): a short, printable excerpt.
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		s = http.StatusText(resp.StatusCode)
	}
	e.Message = s
	return e
}

// Forbidden reports whether the token is valid but its scope does not cover the request (403).
func (e *APIError) Forbidden() bool { return e.StatusCode == http.StatusForbidden }

// IsForbidden reports whether err is the gateway saying the token's scope does not cover it.
func IsForbidden(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Forbidden()
}

// PauseRequest is a pause to start: neither Platform nor Source pauses everything.
type PauseRequest struct {
	Platform string `json:"platform,omitempty"`
	Source   string `json:"source,omitempty"`
	Reason   string `json:"reason"`
}

// Pause is a pause as the API answers it.
type Pause struct {
	core.Pause
	Raw json.RawMessage `json:"-"`
}

// Pauses is the answer to GET /v1/pauses.
type Pauses struct {
	Pauses []core.Pause    `json:"pauses"`
	Raw    json.RawMessage `json:"-"`
}

// Pause starts a pause (POST /v1/pauses): no new vendor call starts where it holds.
func (c *Client) Pause(ctx context.Context, r PauseRequest) (*Pause, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode the pause: %w", err)
	}
	var p Pause
	if _, err := c.do(ctx, http.MethodPost, "/v1/pauses", nil, body, &p, &p.Raw); err != nil {
		return nil, err
	}
	return &p, nil
}

// Pauses lists the active pauses, or with all the ended ones too (GET /v1/pauses).
func (c *Client) Pauses(ctx context.Context, all bool) (*Pauses, error) {
	path := "/v1/pauses"
	if all {
		path += "?all=true"
	}
	var ps Pauses
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &ps, &ps.Raw); err != nil {
		return nil, err
	}
	return &ps, nil
}

// Resume ends a pause (DELETE /v1/pauses/{id}).
func (c *Client) Resume(ctx context.Context, id string) (*Pause, error) {
	var p Pause
	if _, err := c.do(ctx, http.MethodDelete, "/v1/pauses/"+url.PathEscape(id), nil, nil, &p, &p.Raw); err != nil {
		return nil, err
	}
	return &p, nil
}

// AuditOptions filter Audit.
type AuditOptions struct {
	Source     string
	RotationID string
	Limit      int
}

// Audit is the answer to GET /v1/audit.
type Audit struct {
	Events []core.AuditEvent `json:"events"`
	Raw    json.RawMessage   `json:"-"`
}

// Audit returns the audit trail, newest first (GET /v1/audit).
func (c *Client) Audit(ctx context.Context, o AuditOptions) (*Audit, error) {
	q := url.Values{}
	if o.Source != "" {
		q.Set("source", o.Source)
	}
	if o.RotationID != "" {
		q.Set("rotation_id", o.RotationID)
	}
	if o.Limit > 0 {
		q.Set("limit", fmt.Sprint(o.Limit))
	}
	path := "/v1/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var a Audit
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &a, &a.Raw); err != nil {
		return nil, err
	}
	return &a, nil
}
