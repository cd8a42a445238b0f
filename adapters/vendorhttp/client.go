// Package vendorhttp is the HTTP plumbing every vendor adapter shares: a JSON client that sends
// the platform token as a bearer header, never follows redirects, bounds what it reads, and turns
// transport failures and HTTP statuses into core.Error values with a retry verdict. What a vendor's
// error body means stays in the vendor's package.
//
// It is also where vendor text enters credsync, so it is where that text is scrubbed: every
// answer's body and header values, and every transport error message, leave this package with
// the platform token and (for Send) the request's secrets removed by a core.Scrubber, pieces and
// re-encodings included. Adapters parse and quote what they are given without scrubbing again.
package vendorhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credsync/credsync/core"
)

// MaxResponseBytes bounds how much of a vendor answer is read; the rest is discarded.
const MaxResponseBytes = 1 << 20

// UserAgent is sent on every vendor call.
const UserAgent = "credsync"

// Client talks JSON to one vendor platform.
type Client struct {
	base    *url.URL
	token   core.Secret
	scrub   *core.Scrubber // the platform token: what Do removes from every answer
	http    *http.Client
	timeout time.Duration
	adm     *core.Admission // nil: calls are not admitted (tests)
	now     func() time.Time

	// last is the Scrubber of the last Send's secrets: a rotation sends one credential to many
	// targets of the platform, and building a Scrubber costs far more than a lookup.
	last atomic.Pointer[sendScrubber]
}

// sendScrubber is a Scrubber for a set of request secrets, known by the hash of the set.
type sendScrubber struct {
	key [sha256.Size]byte
	sc  *core.Scrubber
}

// New returns a client for the platform at baseURL. timeout bounds each call (0: none beyond the
// caller's context). The transport keeps connections alive per platform. adm, when set, admits
// every call (see core.Admission); the timeout starts once a call is admitted.
func New(baseURL string, token core.Secret, timeout time.Duration, adm *core.Admission) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base_url %q must be an absolute http(s) URL", baseURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{
		base:    u,
		token:   token,
		scrub:   core.NewScrubber(token.Reveal()),
		timeout: timeout,
		adm:     adm,
		now:     time.Now,
		http: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A redirect could carry the bearer token to another host: never follow one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// BaseURL returns the platform's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Response is a vendor's answer, its body bounded by MaxResponseBytes and scrubbed, as are its
// header values.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request. body may be nil (no body, no Content-Type). A transport failure comes back
// as a *core.Error with retry true; any HTTP answer, whatever its status, comes back as a Response.
// The answer and any error message are scrubbed of the platform token only: Do is for calls that
// carry no credential (reads, polls); a call that carries one goes through Send.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (*Response, bool, error) {
	return c.do(ctx, method, path, body, c.scrub)
}

// Send sends a built core.Request with its secrets revealed. The answer and any error message are
// scrubbed of the request's secrets and of the platform token.
func (c *Client) Send(ctx context.Context, r core.Request) (*Response, bool, error) {
	sc := c.scrubberFor(r.Secrets())
	body, err := r.WireBody()
	if err != nil {
		return nil, false, &core.Error{Code: core.CodeInternal, Message: sc.String(err.Error())}
	}
	return c.do(ctx, r.Method, r.Path, body, sc)
}

// scrubberFor returns a Scrubber for secrets and the platform token.
func (c *Client) scrubberFor(secrets []string) *core.Scrubber {
	if len(secrets) == 0 {
		return c.scrub
	}
	h := sha256.New()
	for _, s := range secrets {
		_, _ = fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if last := c.last.Load(); last != nil && last.key == key {
		return last.sc
	}
	sc := core.NewScrubber(append(secrets, c.token.Reveal())...)
	c.last.Store(&sendScrubber{key: key, sc: sc})
	return sc
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, sc *core.Scrubber) (*Response, bool, error) {
	u := c.base.String() + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, false, &core.Error{Code: core.CodeInternal, Message: sc.String(fmt.Sprintf("build %s %s: %v", method, path, err))}
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	release := core.Release(func(time.Duration) {})
	if c.adm != nil {
		if release, err = c.adm.Admit(ctx); err != nil {
			e := transportError(ctx, method, path, err, sc)
			e.NotSent = true
			return nil, true, e
		}
	}
	// The last look before the request leaves: a caller whose context ended while it waited
	// (a target claim that could not be kept, a rotation past its deadline) sends nothing.
	if err := ctx.Err(); err != nil {
		release(0)
		e := transportError(ctx, method, path, err, sc)
		e.NotSent = true
		return nil, true, e
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		release(0)
		e := transportError(ctx, method, path, err, sc)
		if !e.NotSent && c.timeout > 0 {
			e.InFlightUntil = start.Add(c.timeout)
		}
		return nil, true, e
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	var pause time.Duration
	if resp.StatusCode == http.StatusTooManyRequests {
		// The platform asked everyone to slow down, not just this call.
		if pause = RetryAfter(resp.Header, c.now()); pause <= 0 {
			pause = core.DefaultRateLimitPause
		}
	}
	release(pause)
	if err != nil {
		e := transportError(ctx, method, path, fmt.Errorf("read answer: %w", err), sc)
		e.Answered = true // the status line arrived: the vendor processed the request
		return nil, true, e
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes)) // let the connection be reused
	// Scrubbed whole, before any adapter cuts a message out of it: a cut could keep a piece of a
	// secret too short to be recognised afterwards.
	for _, vs := range resp.Header {
		for i, v := range vs {
			vs[i] = sc.String(v)
		}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: sc.Bytes(b)}, false, nil
}

// transportError turns a failed call into a retryable core.Error. Its message is scrubbed: the
// error may quote a URL or what the other end sent.
func transportError(ctx context.Context, method, path string, err error, sc *core.Scrubber) *core.Error {
	e := transportErrorOf(ctx, method, path, err)
	e.Message = sc.String(e.Message)
	return e
}

func transportErrorOf(ctx context.Context, method, path string, err error) *core.Error {
	// Strip the URL from *url.Error: it is ours and adds nothing but noise.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &core.Error{Code: core.CodeTimeout, Message: fmt.Sprintf("%s %s: no answer in time", method, path)}
	}
	if errors.Is(err, context.Canceled) {
		return &core.Error{Code: core.CodeCanceled, Message: fmt.Sprintf("%s %s: canceled", method, path)}
	}
	var oe *net.OpError
	dial := errors.As(err, &oe) && oe.Op == "dial" // refused, unreachable: nothing reached the vendor
	return &core.Error{Code: core.CodeNetwork, Message: fmt.Sprintf("%s %s: %v", method, path, err), NotSent: dial}
}

// Classify turns a non-2xx answer into a core.Error and a retry verdict: 429 and 5xx are retried
// (with the vendor's Retry-After, if any), a redirect and every other 4xx are final. message is the
// vendor's own explanation, parsed by the adapter from its error body ("" if none).
func (c *Client) Classify(resp *Response, message string) (bool, *core.Error) {
	return Classify(resp, message, c.now())
}

// Classify is Client.Classify with an explicit clock.
func Classify(resp *Response, message string, now time.Time) (bool, *core.Error) {
	e := &core.Error{VendorStatus: resp.Status}
	retry := false
	switch s := resp.Status; {
	case s == http.StatusUnauthorized:
		e.Code = core.CodeUnauthorized
	case s == http.StatusForbidden:
		e.Code = core.CodeForbidden
	case s == http.StatusNotFound:
		e.Code = core.CodeNotFound
	case s == http.StatusTooManyRequests:
		e.Code, retry = core.CodeRateLimited, true
		e.RetryAfter = RetryAfter(resp.Header, now)
	case s >= 500:
		e.Code, retry = core.CodeVendorError, true
		e.RetryAfter = RetryAfter(resp.Header, now)
	case s >= 300 && s < 400:
		e.Code = core.CodeBadResponse
		if message == "" {
			message = fmt.Sprintf("redirected to %q: not followed, so the token stays with the configured host; fix base_url", resp.Header.Get("Location"))
		}
	default:
		e.Code = core.CodeRejected
	}
	if message == "" {
		message = http.StatusText(resp.Status)
		if message == "" {
			message = "unexpected answer"
		}
	}
	e.Message = fmt.Sprintf("HTTP %d: %s", resp.Status, message)
	return retry, e
}

// RetryAfter reads a Retry-After header given in seconds or as an HTTP date; zero if absent or
// unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Clip makes vendor text fit a message: valid UTF-8 (invalid bytes shown as ?), runs of white
// space folded to one space, and at most n bytes, never cutting a character in two.
func Clip(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// Snippet returns at most n bytes of a body as text, for messages about unreadable answers.
func Snippet(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..." // do not cut a character in two
	}
	return strings.TrimSpace(s)
}

// Platform is what every adapter is given of its platform's config block.
type Platform struct {
	Name    string
	BaseURL string
	Token   core.Secret
	Timeout time.Duration // per vendor call
	// Admission admits every call to the platform; the engine shares it (core.Platform).
	Admission *core.Admission
}

// NewClient returns a client for the platform.
func (p Platform) NewClient() (*Client, error) {
	return New(p.BaseURL, p.Token, p.Timeout, p.Admission)
}
