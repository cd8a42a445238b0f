package api_test

// Tests of the status page at GET /: who may see it, what it shows, that it escapes what it
// shows and never shows a secret; and, in headless Chromium, that it renders on a laptop and a
// phone against the demo's fake vendors (with -update the screenshots go to docs/).

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/browsertest"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

const (
	stToken     = "status-api-token-0123456789"
	stViewer    = "status-viewer-token-0123456789"
	stSecret    = "St4tus-S3cret-never-on-the-page"
	stHostile   = `<script>alert("pwned")</script>`
	stHostileSr = `src"><img src=x onerror=alert(1)>`
)

// stRejected is how the broken target fails: with a message that echoes the secret (the engine
// scrubs it).
func stRejected() *core.Error {
	return &core.Error{Code: core.CodeRejected, Message: `HTTP 400: password "` + stSecret + `" is too weak`, VendorStatus: 400}
}

type stEnv struct {
	api  *api.Server
	srv  *httptest.Server
	slow *standin.Adapter
	logs *observer.ObservedLogs
}

// newStatusEnv: source "warehouse" with two targets (one named like a script), source
// stHostileSr whose one target always fails, and "idle" that was never rotated.
func newStatusEnv(t *testing.T, opts ...api.Option) *stEnv {
	t.Helper()
	kr, err := keyring.Generate()
	require.NoError(t, err)
	slow := standin.New(core.TypePassword)
	broken := standin.New(core.TypePassword)
	broken.FailWith(stRejected())
	eng, err := core.NewEngine(core.EngineConfig{
		Sealer:    kr,
		Platforms: []core.Platform{{Name: "felt-prod", Vendor: "felt", MaxAttempts: 1}, {Name: "rg", Vendor: "rivergen", MaxAttempts: 1}},
		Sources: []*core.Source{
			{Name: "warehouse", Targets: []*core.Target{
				{Name: "felt-pg", Platform: "felt-prod", Vendor: "felt", Adapter: standin.New(core.TypePassword)},
				{Name: stHostile, Platform: "rg", Vendor: "rivergen", Adapter: standin.New(core.TypePassword)},
			}},
			{Name: stHostileSr, Targets: []*core.Target{{Name: "rg-broken", Platform: "rg", Vendor: "rivergen", Adapter: broken}}},
			{Name: "idle", Targets: []*core.Target{{Name: "idle-target", Platform: "rg", Vendor: "rivergen", Adapter: slow}}},
		},
		Store: memstore.New(), Logger: zap.NewNop(),
	})
	require.NoError(t, err)
	obs, logs := observer.New(zap.DebugLevel)
	s := api.New(eng, []api.Token{{Name: "rotation-job", Token: core.NewSecret(stToken)}}, zap.New(obs), opts...)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		slow.Release()
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return &stEnv{api: s, srv: srv, slow: slow, logs: logs}
}

// get fetches path with the given headers, without following redirects.
func (e *stEnv) get(t *testing.T, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotContains(t, string(b), stSecret, "the status page shows a secret")
	return resp, string(b)
}

func (e *stEnv) rotate(t *testing.T, source, query string) {
	t.Helper()
	body := fmt.Sprintf(`{"source":%q,"credential":{"type":"password","password":%q}}`, source, stSecret)
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/rotations"+query, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+stToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Contains(t, []int{200, 202}, resp.StatusCode, "%s", b)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestStatusPageNeedsAToken(t *testing.T) {
	e := newStatusEnv(t)
	for name, c := range map[string]struct {
		path   string
		header map[string]string
	}{
		"nothing":         {"/", nil},
		"wrong bearer":    {"/", bearer("nope")},
		"basic auth":      {"/", map[string]string{"Authorization": "Basic " + stToken}},
		"wrong ?token=":   {"/?token=nope", nil},
		"empty ?token=":   {"/?token=", nil},
		"forged cookie":   {"/", map[string]string{"Cookie": api.StatusCookie + "=" + strings.Repeat("ab", 32)}},
		"token as cookie": {"/", map[string]string{"Cookie": api.StatusCookie + "=" + stToken}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get(t, c.path, c.header)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, `Bearer realm="credsync"`, resp.Header.Get("WWW-Authenticate"))
			require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"), resp.Header.Get("Content-Type"))
			require.Empty(t, resp.Cookies(), "no cookie without a valid token")
			require.Contains(t, body, "/?token=")
			require.NotContains(t, body, "warehouse", "nothing of the status is shown")
			require.NotContains(t, body, "nope", "the request is not echoed")
		})
	}
}

func TestStatusPageTokenBecomesCookie(t *testing.T) {
	e := newStatusEnv(t)
	resp, _ := e.get(t, "/?token="+stToken, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "./", resp.Header.Get("Location"), "the token leaves the address bar")
	require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	require.Equal(t, api.StatusCookie, ck.Name)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.Equal(t, "/", ck.Path)
	require.Equal(t, 12*3600, ck.MaxAge)
	require.False(t, ck.Secure, "plain HTTP here; over TLS the cookie is Secure")
	require.Regexp(t, `^[A-Za-z0-9_-]+\.[0-9]+\.[A-Za-z0-9_-]{43}$`, ck.Value, "name.expiry.mac")
	require.NotContains(t, ck.Value, stToken)
	require.NotContains(t, resp.Header.Get("Set-Cookie"), stToken)

	resp, body := e.get(t, "/", map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "signed in as rotation-job")

	// The cookie opens the page and nothing else.
	resp, _ = e.get(t, "/v1/sources", map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = e.get(t, "/v1/sources", bearer(ck.Value))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The request log names the route and who signed in, never the token or the cookie.
	var logged strings.Builder
	for _, entry := range e.logs.All() {
		fmt.Fprintf(&logged, "%s %v\n", entry.Message, entry.ContextMap())
	}
	require.Contains(t, logged.String(), "actor:rotation-job")
	require.NotContains(t, logged.String(), stToken)
	require.NotContains(t, logged.String(), ck.Value)

	// Behind TLS (or a proxy that says so) the cookie is Secure.
	resp, _ = e.get(t, "/?token="+stToken, map[string]string{"X-Forwarded-Proto": "https"})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, resp.Cookies()[0].Secure)
}

func TestStatusTokensAreReadOnly(t *testing.T) {
	e := newStatusEnv(t)
	hashed := api.Token{Name: "tv"}
	hashed.SHA256 = sha256.Sum256([]byte("hashed-viewer-token-0123456789"))
	e.api.SetStatusTokens([]api.Token{{Name: "wallboard", Token: core.NewSecret(stViewer)}, {Name: "empty"}, hashed})

	resp, body := e.get(t, "/", bearer(stViewer))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "signed in as wallboard")
	resp, _ = e.get(t, "/?token="+stViewer, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, body = e.get(t, "/", map[string]string{"Cookie": resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "signed in as wallboard")

	resp, body = e.get(t, "/", bearer("hashed-viewer-token-0123456789"))
	require.Equal(t, http.StatusOK, resp.StatusCode, "a status token given as token_sha256")
	require.Contains(t, body, "signed in as tv")

	// The API tokens still open the page; the status token opens no API route.
	resp, _ = e.get(t, "/", bearer(stToken))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, path := range []string{"/v1/sources", "/v1/rotations", "/v1/audit"} {
		resp, _ = e.get(t, path, bearer(stViewer))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	resp, _ = e.get(t, "/", bearer(""))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a token with no value opens nothing")
}

func TestStatusPageContent(t *testing.T) {
	e := newStatusEnv(t)

	resp, body := e.get(t, "/", bearer(stToken))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "No rotation yet.")
	require.Equal(t, 4, strings.Count(body, `s-never">never rotated</span>`), "no target was rotated yet")

	e.rotate(t, "warehouse", "?wait=10s")
	e.rotate(t, stHostileSr, "?wait=10s")
	// Held until the env's cleanup releases it.
	e.slow.Hold()
	e.rotate(t, "idle", "") // stays running while the page is read
	require.Eventually(t, func() bool {
		_, body := e.get(t, "/", bearer(stToken))
		return strings.Contains(body, `<span class="badge s-running">running</span>`)
	}, 10*time.Second, 20*time.Millisecond, "the held target shows as running")

	resp, body = e.get(t, "/", bearer(stToken))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	h := resp.Header
	require.Equal(t, "text/html; charset=UTF-8", h.Get("Content-Type"))
	require.Equal(t, "no-store", h.Get("Cache-Control"))
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))

	// Responsive, self-contained, script-free.
	require.Contains(t, body, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	require.Contains(t, body, "@media (max-width: 760px)")
	for _, banned := range []string{"<script", "<link", "<img", "<iframe", "http://", "https://", "@import", "url("} {
		require.NotContains(t, body, banned, "the page loads nothing from elsewhere and runs no script")
	}
	markup := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(body, `""`) // attribute values are text
	require.NotRegexp(t, `<[a-zA-Z]+[^>]*\s(src|href|on[a-z]+)=`, markup, "no element loads, links or runs anything")
	// The Content-Security-Policy allows exactly the page's style sheet.
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	require.Len(t, style, 2)
	sum := sha256.Sum256([]byte(style[1]))
	csp := h.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")

	// Sources, targets, platforms, last outcomes, times, rotation ids.
	for _, want := range []string{
		"<h3>warehouse <small>2 targets</small></h3>", "felt-pg", "felt-prod", "(felt)", "rg-broken", "idle-target",
		`<span class="badge s-succeeded">succeeded</span>`, "&#10003; verified",
		`<span class="badge s-failed">failed</span>`, `<code>rejected</code> HTTP 400: password &#34;[REDACTED]&#34; is too weak`,
		`<span class="badge s-running">running</span>`, "in progress", "just now", `<td data-label="By"><div>rotation-job</div></td>`,
		"<b>4</b><span>targets</span>", "<b>2</b><span>last rotation ok</span>", "<b>1</b><span>last rotation failed</span>",
	} {
		require.Contains(t, body, want)
	}
	require.Regexp(t, `<code>rot_[0-9a-z]+</code>`, body)
	require.Regexp(t, `<td data-label="Took"><div class="nowrap">\d+ ms</div></td>`, body)

	// Hostile names are shown as text, never as markup.
	require.NotContains(t, body, stHostile)
	require.NotContains(t, body, `<img`)
	require.Contains(t, body, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;")
	require.Contains(t, body, "src&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
	require.Contains(t, body, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
}

func TestStatusPageListsTheTwentyNewestRotations(t *testing.T) {
	e := newStatusEnv(t)
	for i := 0; i < api.StatusRecent+3; i++ {
		e.rotate(t, "warehouse", "?wait=10s")
	}
	_, body := e.get(t, "/", bearer(stToken))
	recent := body[strings.Index(body, `id="recent"`):]
	require.Equal(t, api.StatusRecent, strings.Count(recent, `<td data-label="Started">`))
	require.Contains(t, recent, fmt.Sprintf("the %d newest", api.StatusRecent))
}

// TestStatusPageInChromium renders the page in headless Chromium against the demo: the fake
// vendors, the real gateway (config, SQLite store, engine, API) and the demo's rotations, plus
// one that fails verification on RiverGen. It signs in the way a person does (?token= once, then
// the cookie), checks the DOM and takes a laptop and a phone screenshot.
func TestStatusPageInChromium(t *testing.T) {
	browser := browsertest.Require(t) // fails, naming make deps, when Chromium is missing
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	defer fakes.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dir := t.TempDir()
	env := fakes.Env(stToken)
	cfg, err := config.Parse([]byte(fakes.Config(l.Addr().String(), filepath.Join(dir, "credsync.db"))),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	gw, err := gateway.New(ctx, cfg, zap.NewNop(), gateway.Options{ShutdownGrace: 5 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	gctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- gw.Serve(gctx, l) }()
	defer func() {
		stop()
		require.NoError(t, <-served)
	}()
	base := "http://" + l.Addr().String()

	client := &http.Client{Timeout: time.Minute}
	var sources []string
	for _, r := range demo.Rotations() {
		rot, err := demo.Submit(ctx, client, base, stToken, r)
		require.NoError(t, err)
		require.Equal(t, core.RotationSucceeded, rot.Status, "%+v", rot)
		sources = append(sources, r.Source)
	}
	fakes.RiverGen.SetConnectionOK(1, false, "AUTHENTICATION_FAILED", `password authentication failed for user "dbuser"`)
	rot, err := demo.Submit(ctx, client, base, stToken, demo.Rotations()[0])
	require.NoError(t, err)
	require.Equal(t, core.RotationPartial, rot.Status)

	page := base + "/?token=" + stToken
	dom, err := browser.DumpDOM(ctx, page)
	require.NoError(t, err)
	require.Contains(t, dom, "credsync <span>status</span>")
	require.Contains(t, dom, "signed in as demo", "Chromium followed ?token= → cookie → page")
	for _, s := range sources {
		require.Contains(t, dom, "<h3>"+s+" ", "source %s", s)
	}
	for _, src := range cfg.Sources {
		for _, tg := range src.Targets {
			require.Contains(t, dom, `<div>`+tg.Name+`</div>`, "target %s", tg.Name)
		}
	}
	require.Contains(t, dom, "verification_failed")
	require.Contains(t, dom, `<span class="badge s-partial">partial</span>`)
	for _, k := range fakes.Tokens {
		require.NotContains(t, dom, k, "a platform token on the page")
	}
	require.NotContains(t, dom, stToken, "the token stayed in the page")

	shots := t.TempDir()
	for _, size := range []struct {
		name          string
		width, height int
	}{{"status-page.png", 1280, 900}, {"status-page-phone.png", 390, 844}} {
		out := filepath.Join(shots, size.name)
		require.NoError(t, browser.Screenshot(ctx, page, size.width, size.height, out))
		require.NoError(t, browsertest.CheckPNG(out, size.width, size.height))
		if golden.Updating() {
			raw, err := os.ReadFile(out)
			require.NoError(t, err)
			docs := filepath.Join(golden.Root(t), "docs")
			require.NoError(t, os.MkdirAll(docs, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(docs, size.name), raw, 0o644))
		}
	}
}

// TestStatusSessionsAreSignedAndExpire: a session cookie cannot be made from what the config
// says (token_sha256), does not outlive its 12 hours, and does not open another server.
func TestStatusSessionsAreSignedAndExpire(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newStatusEnv(t, api.WithClock(clock))
	resp, _ := e.get(t, "/?token="+stToken, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	ck := resp.Cookies()[0]
	open := func(e *stEnv, value string) int {
		resp, _ := e.get(t, "/", map[string]string{"Cookie": api.StatusCookie + "=" + value})
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, open(e, ck.Value))

	// The old scheme: SHA-256 of a constant and the token's hash, computable from the config.
	digest := sha256.Sum256([]byte(stToken))
	old := sha256.Sum256(append([]byte("credsync status session v1\x00"), digest[:]...))
	require.Equal(t, http.StatusUnauthorized, open(e, hex.EncodeToString(old[:])), "a cookie computed from token_sha256 opens nothing")

	// Tampering: another name, a later expiry, a MAC of something else.
	parts := strings.Split(ck.Value, ".")
	require.Len(t, parts, 3)
	later := strconv.FormatInt(now.Add(100*24*time.Hour).Unix(), 10)
	for what, v := range map[string]string{
		"a later expiry": parts[0] + "." + later + "." + parts[2],
		"another name":   base64.RawURLEncoding.EncodeToString([]byte("admin")) + "." + parts[1] + "." + parts[2],
		"no mac":         parts[0] + "." + parts[1] + ".",
		"garbage":        "a.b.c",
	} {
		require.Equal(t, http.StatusUnauthorized, open(e, v), what)
	}

	// Another server (another process, or this one restarted) has another key.
	other := newStatusEnv(t, api.WithClock(clock))
	require.Equal(t, http.StatusUnauthorized, open(other, ck.Value), "a session of one server opens no other")

	// Expiry.
	mu.Lock()
	now = now.Add(12*time.Hour - time.Minute)
	mu.Unlock()
	require.Equal(t, http.StatusOK, open(e, ck.Value), "still within its 12 hours")
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	require.Equal(t, http.StatusUnauthorized, open(e, ck.Value), "expired after 12 hours")
}

// A source of many targets is listed a bounded page at a time: the first StatusSourceTargets,
// those that need attention first, and how many more; the counts at the top cover all of them,
// and the attention list is bounded too.
func TestStatusPageBoundsABigSource(t *testing.T) {
	kr, err := keyring.Generate()
	require.NoError(t, err)
	const n = api.StatusSourceTargets + api.StatusAttention + 50
	failing := n - api.StatusAttention - 20 // the failing targets are the last ones of the source
	var targets []*core.Target
	for i := 0; i < n; i++ {
		a := standin.New(core.TypePassword)
		if i >= failing {
			a.FailWith(stRejected())
		}
		targets = append(targets, &core.Target{Name: fmt.Sprintf("t-%04d", i), Platform: "rg", Vendor: "rivergen", Adapter: a})
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Sealer:    kr,
		Platforms: []core.Platform{{Name: "rg", Vendor: "rivergen", MaxAttempts: 1, MaxConcurrency: 64}},
		Sources:   []*core.Source{{Name: "big", Targets: targets}},
		Store:     memstore.New(), Logger: zap.NewNop(),
	})
	require.NoError(t, err)
	s := api.New(eng, []api.Token{{Name: "rotation-job", Token: core.NewSecret(stToken)}}, zap.NewNop())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); _ = eng.Shutdown(context.Background()) })
	e := &stEnv{api: s, srv: srv}
	e.rotate(t, "big", "?wait=30s")

	_, body := e.get(t, "/", bearer(stToken))
	sources := body[strings.Index(body, `id="sources"`):strings.Index(body, `id="recent"`)]
	require.Equal(t, api.StatusSourceTargets, strings.Count(sources, `<td class="name" data-label="Target">`), "one page of targets")
	require.Contains(t, sources, fmt.Sprintf("<h3>big <small>%d targets, the first %d shown (those that need attention first)</small></h3>", n, api.StatusSourceTargets))
	require.Contains(t, sources, fmt.Sprintf("and %d more targets of big", n-api.StatusSourceTargets))
	// Every failing target comes before the succeeded ones, although they are last in the config.
	require.Contains(t, sources, fmt.Sprintf(">t-%04d<", failing))
	require.Contains(t, sources, fmt.Sprintf(">t-%04d<", n-1))
	require.Contains(t, sources, ">t-0000<")
	require.NotContains(t, sources, fmt.Sprintf(">t-%04d<", api.StatusSourceTargets), "a succeeded target past the page is not listed")
	require.Contains(t, body, fmt.Sprintf("<b>%d</b><span>targets</span>", n), "the counts cover every target")
	require.Contains(t, body, fmt.Sprintf("<b>%d</b><span>last rotation failed</span>", n-failing))

	attention := body[strings.Index(body, `aria-label="needs attention"`):strings.Index(body, `id="sources"`)]
	require.Contains(t, attention, fmt.Sprintf("Needs attention <small>%d targets", n-failing))
	require.Equal(t, api.StatusAttention, strings.Count(attention, "<li>"), "the attention list is bounded")
	require.Contains(t, attention, fmt.Sprintf("and %d more", n-failing-api.StatusAttention))
}
