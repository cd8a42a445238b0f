package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/credsync/credsync/core"
)

// The status page: GET / renders, for people, what GET /v1/sources and GET /v1/rotations say.
// Read-only, server-rendered, no script and no external asset.

// StatusCookie is the status page's session cookie: the token's name, an expiry and an
// HMAC-SHA256 of both under a key that only the running server holds (made at start, never
// stored or logged). It holds nothing derived from the token, so reading token_sha256 in the
// config does not forge one; it opens the status page and nothing else, and a restart ends
// every session.
const StatusCookie = "credsync_status"

// StatusRecent is how many recent rotations the status page lists, and StatusTargets how many
// targets of each (failed ones first; the counts say how many more).
const (
	StatusRecent  = 20
	StatusTargets = 12
)

// StatusSourceTargets is how many targets of each source the status page lists, and
// StatusAttention how many targets it lists as needing attention: the page stays readable (and
// cheap) whatever the number of targets; it says how many more there are, and GET /v1/sources
// and `credsync sources` list them all. The counts at the top cover every target.
const (
	StatusSourceTargets = 200
	StatusAttention     = 100
)

// statusSession is how long the status cookie lasts.
const statusSession = 12 * time.Hour

var (
	//go:embed templates/status.html
	statusHTML string
	//go:embed templates/status.css
	statusCSS string
)

// statusCSP allows the page's one inline style sheet, by hash, and nothing else.
var statusCSP = func() string {
	sum := sha256.Sum256([]byte(statusCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// statusPage holds what the handler needs: the server (engine and API tokens), the read-only
// status tokens, and the parsed templates.
type statusPage struct {
	s       *Server
	viewers []tokenDigest
	tmpl    *template.Template
}

// routesStatus registers the read-only status page at /. Until SetStatusTokens is called it
// accepts the API tokens only.
func (s *Server) routesStatus(e *echo.Echo) {
	e.GET("/", newStatusPage(s, nil).serve)
}

// statusTemplates parses the embedded page; they are tested, so a parse error is a bug.
var statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{"ago": ago, "took": took, "more": moreTargets, "sub": func(a, b int) int { return a - b }}).Parse(statusHTML))

func newStatusPage(s *Server, viewers []Token) *statusPage {
	p := &statusPage{s: s, tmpl: statusTemplates}
	for _, t := range viewers {
		d := t.SHA256
		if !t.Token.IsZero() {
			d = sha256.Sum256([]byte(t.Token.Reveal()))
		}
		if d != ([sha256.Size]byte{}) { // a token with neither value opens nothing
			p.viewers = append(p.viewers, tokenDigest{name: t.Name, digest: d, scope: Scope{Sources: t.Scope.Sources, Actions: []Action{ActionRead}}})
		}
	}
	return p
}

// SetStatusTokens sets the read-only tokens (config server.status_tokens: name with token or
// token_sha256, like server.api_tokens) that open the status page besides the API tokens. They
// open nothing else: the API refuses them. Call it before the handler serves its first request
// (it replaces the page's route).
func (s *Server) SetStatusTokens(tokens []Token) {
	s.echo.GET("/", newStatusPage(s, tokens).serve) // replaces the route New registered
}

// accepted lists every token the page takes: the read-only ones, then the API tokens.
func (p *statusPage) accepted() []tokenDigest {
	return append(append([]tokenDigest(nil), p.viewers...), p.s.tokens...)
}

// matchToken returns the token equal to got; its name is "" when none is. Every token is
// compared, in constant time, so the time taken does not say which one matched.
func (p *statusPage) matchToken(got string) tokenDigest {
	var match tokenDigest
	if got == "" {
		return match
	}
	digest := sha256.Sum256([]byte(got))
	for _, t := range p.accepted() {
		if subtle.ConstantTimeCompare(digest[:], t.digest[:]) == 1 {
			match = t
		}
	}
	return match
}

// sessionVersion is bound into every session MAC.
const sessionVersion = "credsync status session v2"

// newSession returns the cookie value for token name, valid until expires.
func (p *statusPage) newSession(name string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + exp + "." +
		base64.RawURLEncoding.EncodeToString(p.sessionMAC(name, exp))
}

func (p *statusPage) sessionMAC(name, exp string) []byte {
	m := hmac.New(sha256.New, p.s.sessionKey[:])
	m.Write([]byte(sessionVersion + "\x00" + name + "\x00" + exp))
	return m.Sum(nil)
}

// matchCookie returns the token a valid, unexpired session was made for; its name is "" when
// there is none.
func (p *statusPage) matchCookie(got string) tokenDigest {
	parts := strings.Split(got, ".")
	if len(parts) != 3 {
		return tokenDigest{}
	}
	rawName, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	mac, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	exp, err3 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || !p.s.now().Before(time.Unix(exp, 0)) {
		return tokenDigest{}
	}
	if !hmac.Equal(mac, p.sessionMAC(string(rawName), parts[1])) {
		return tokenDigest{}
	}
	for _, t := range p.accepted() {
		if t.name == string(rawName) {
			return t // still a configured token, with its scope as configured now
		}
	}
	return tokenDigest{}
}

func (p *statusPage) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", statusCSP)

	// ?token=: check it, swap it for the session cookie and send the browser back without it.
	if q := c.QueryParams(); q.Has("token") {
		tok := p.matchToken(q.Get("token"))
		if tok.name == "" {
			return p.signin(c, true)
		}
		c.SetCookie(&http.Cookie{
			Name: StatusCookie, Value: p.newSession(tok.name, p.s.now().Add(statusSession)), Path: "/",
			MaxAge: int(statusSession / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: c.Scheme() == "https",
		})
		return c.Redirect(http.StatusSeeOther, "./")
	}

	var tok tokenDigest
	if got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer "); ok {
		tok = p.matchToken(strings.TrimSpace(got))
	} else if ck, err := c.Cookie(StatusCookie); err == nil {
		tok = p.matchCookie(ck.Value)
	}
	if tok.name == "" {
		return p.signin(c, false)
	}
	c.Set(ctxActor, tok.name)
	c.Set(ctxScope, tok.scope)
	if err := allow(c, ActionRead); err != nil {
		return err
	}
	return p.render(c, tok.name)
}

// signin answers 401 with a page that says how to sign in. It never echoes the request.
func (p *statusPage) signin(c echo.Context, rejected bool) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="credsync"`)
	var buf bytes.Buffer
	data := struct {
		Title    string
		CSS      template.CSS
		Refresh  bool
		Rejected bool
	}{"credsync status: sign in", template.CSS(statusCSS), false, rejected}
	if err := p.tmpl.ExecuteTemplate(&buf, "signin", data); err != nil {
		return fmt.Errorf("render the status sign-in page: %w", err)
	}
	return c.HTMLBlob(http.StatusUnauthorized, buf.Bytes())
}

// statusCounts sums up the targets' last outcomes.
type statusCounts struct {
	Targets, Succeeded, Failed, Running, Never int
}

// statusAttention is a target whose last rotation failed.
type statusAttention struct {
	Source, Target, Platform, RotationID, Code, Message string
	When                                                *time.Time
}

// statusSource is a source on the page: its first StatusSourceTargets targets, failing and
// unhealthy ones first, and how many it has.
type statusSource struct {
	core.SourceView
	Total, Hidden int
}

// statusSources bounds each source's targets for the page. Targets that need attention come
// first, then the others in config order.
func statusSources(srcs []core.SourceView) []statusSource {
	out := make([]statusSource, len(srcs))
	for i, s := range srcs {
		out[i] = statusSource{SourceView: s, Total: len(s.Targets)}
		if len(s.Targets) <= StatusSourceTargets {
			continue
		}
		shown := make([]core.TargetView, 0, StatusSourceTargets)
		for _, first := range []bool{true, false} {
			for _, t := range s.Targets {
				if len(shown) == StatusSourceTargets {
					break
				}
				if needsAttention(t) == first {
					shown = append(shown, t)
				}
			}
		}
		out[i].Targets, out[i].Hidden = shown, len(s.Targets)-len(shown)
	}
	return out
}

func needsAttention(t core.TargetView) bool {
	return (t.Last != nil && t.Last.Status == core.TargetFailed) || (t.Health != nil && t.Health.Status == core.HealthUnhealthy)
}

// statusData is what the page template renders.
type statusData struct {
	// Attention lists at most StatusAttention targets; AttentionTotal counts them all.
	Attention      []statusAttention
	AttentionTotal int
	Title          string
	CSS            template.CSS
	Refresh        bool
	Now            time.Time
	Viewer         string
	Sources        []statusSource
	Recent         []*core.Rotation
	RecentLimit    int
	Counts         statusCounts
	Pauses         []core.Pause
}

func (p *statusPage) render(c echo.Context, viewer string) error {
	ctx := c.Request().Context()
	srcs, err := p.s.eng.Sources(ctx)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	// The viewer sees what its scope covers, nothing else.
	srcs = inScope(scopeOf(c), srcs)
	recent, err := p.s.eng.List(ctx, core.ListFilter{Limit: StatusRecent, Sources: p.s.visibleSources(c)})
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	running := 0
	for i, r := range recent {
		if !r.Status.Finished() {
			running += r.TargetCounts[core.TargetRunning] + r.TargetCounts[core.TargetPending]
		}
		// A few targets of each, failures first: the page stays small whatever a rotation's size.
		page, err := p.s.eng.GetPage(ctx, r.ID, core.TargetPage{Limit: StatusTargets, Status: core.TargetFailed})
		if err != nil {
			return fmt.Errorf("status page: %w", err)
		}
		if n := len(page.Targets); n < StatusTargets {
			rest, err := p.s.eng.GetPage(ctx, r.ID, core.TargetPage{Limit: StatusTargets})
			if err != nil {
				return fmt.Errorf("status page: %w", err)
			}
			for _, t := range rest.Targets {
				if len(page.Targets) < StatusTargets && t.Status != core.TargetFailed {
					page.Targets = append(page.Targets, t)
				}
			}
		}
		recent[i] = page
	}
	d := statusData{Title: "credsync status", CSS: template.CSS(statusCSS), Refresh: true, Now: time.Now().UTC(),
		Viewer: viewer, Sources: statusSources(srcs), Recent: recent, RecentLimit: StatusRecent}
	for _, src := range srcs {
		for _, t := range src.Targets {
			d.Counts.Targets++
			switch {
			case t.Last == nil:
				d.Counts.Never++
			case t.Last.Status == core.TargetSucceeded:
				d.Counts.Succeeded++
			case t.Last.Status == core.TargetFailed:
				d.Counts.Failed++
				a := statusAttention{Source: src.Name, Target: t.Name, Platform: t.Platform, RotationID: t.Last.RotationID, When: t.Last.FinishedAt}
				if t.Last.Error != nil {
					a.Code, a.Message = t.Last.Error.Code, t.Last.Error.Message
				}
				d.Attention = append(d.Attention, a)
			}
			if h := t.Health; h != nil && h.Status == core.HealthUnhealthy {
				at := h.CheckedAt
				d.Attention = append(d.Attention, statusAttention{Source: src.Name, Target: t.Name, Platform: t.Platform,
					Code: "unhealthy", Message: h.Message, When: &at})
			}
		}
	}
	d.Counts.Running = running
	if d.AttentionTotal = len(d.Attention); d.AttentionTotal > StatusAttention {
		d.Attention = d.Attention[:StatusAttention]
	}
	pauses, err := p.s.eng.Pauses(ctx, true)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	d.Pauses = pausesInScope(scopeOf(c), pauses)
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "page", d); err != nil {
		return fmt.Errorf("render the status page: %w", err)
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// moreTargets is how many targets of r the page does not show.
func moreTargets(r *core.Rotation) int {
	n := 0
	for _, c := range r.TargetCounts {
		n += c
	}
	return max(0, n-len(r.Targets))
}

// ago says how long before now t was, for people: "just now", "5 min ago", "3 h ago", "2 d ago".
func ago(now time.Time, v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	default:
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d d ago", int(d/(24*time.Hour)))
	}
}

// took says how long a rotation ran, or that it still runs.
func took(r *core.Rotation) string {
	if r.FinishedAt == nil {
		return "running"
	}
	d := r.FinishedAt.Sub(r.CreatedAt)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}
