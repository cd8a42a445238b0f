package vendorhttp_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
)

func client(t *testing.T, url string, timeout time.Duration) *vendorhttp.Client {
	t.Helper()
	c, err := vendorhttp.New(url, core.NewSecret("vendor-token"), timeout, nil)
	require.NoError(t, err)
	return c
}

func TestNewRefusesBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "felt.com", "ftp://felt.com", "http://"} {
		_, err := vendorhttp.New(u, core.NewSecret("t"), time.Second, nil)
		require.Error(t, err, u)
	}
}

func TestSendsTokenAndJSON(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.WriteHeader(202)
	}))
	defer srv.Close()
	c := client(t, srv.URL+"/", time.Second)
	resp, retry, err := c.Send(context.Background(), core.Request{Method: "POST", Path: "/api/x", Body: map[string]any{"password": core.NewSecret("pw")}})
	require.NoError(t, err)
	require.False(t, retry)
	require.Equal(t, 202, resp.Status)
	require.Equal(t, "Bearer vendor-token", got.Header.Get("Authorization"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "/api/x", got.URL.Path, "a trailing slash on base_url is not doubled")
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		status    int
		header    http.Header
		code      string
		retry     bool
		wantAfter time.Duration
	}{
		{401, nil, core.CodeUnauthorized, false, 0},
		{403, nil, core.CodeForbidden, false, 0},
		{404, nil, core.CodeNotFound, false, 0},
		{422, nil, core.CodeRejected, false, 0},
		{400, nil, core.CodeRejected, false, 0},
		{429, http.Header{"Retry-After": {"7"}}, core.CodeRateLimited, true, 7 * time.Second},
		{429, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, core.CodeRateLimited, true, 90 * time.Second},
		{429, nil, core.CodeRateLimited, true, 0},
		{429, http.Header{"Retry-After": {"soon"}}, core.CodeRateLimited, true, 0},
		{500, nil, core.CodeVendorError, true, 0},
		{502, nil, core.CodeVendorError, true, 0},
		{503, http.Header{"Retry-After": {"3"}}, core.CodeVendorError, true, 3 * time.Second},
		{504, nil, core.CodeVendorError, true, 0},
		{302, http.Header{"Location": {"https://evil.example/steal"}}, core.CodeBadResponse, false, 0},
	}
	for _, tc := range cases {
		h := tc.header
		if h == nil {
			h = http.Header{}
		}
		retry, e := vendorhttp.Classify(&vendorhttp.Response{Status: tc.status, Header: h}, "", now)
		require.Equal(t, tc.code, e.Code, "status %d", tc.status)
		require.Equal(t, tc.retry, retry, "status %d", tc.status)
		require.False(t, e.Retryable, "the verdict is the returned bool alone; the engine fills Retryable for the report")
		require.Equal(t, tc.wantAfter, e.RetryAfter, "status %d", tc.status)
		require.Equal(t, tc.status, e.VendorStatus)
		require.True(t, strings.HasPrefix(e.Message, "HTTP "), e.Message)
	}
	_, e := vendorhttp.Classify(&vendorhttp.Response{Status: 422, Header: http.Header{}}, "credential.password: is invalid", now)
	require.Equal(t, "HTTP 422: credential.password: is invalid", e.Message)
}

func TestRedirectIsNeverFollowed(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed to another host, with Authorization %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := client(t, srv.URL, time.Second)
	resp, _, err := c.Do(context.Background(), "POST", "/x", []byte(`{}`))
	require.NoError(t, err)
	require.Equal(t, 307, resp.Status)
	retry, e := c.Classify(resp, "")
	require.False(t, retry)
	require.Contains(t, e.Message, "not followed")
}

func TestTransportFailuresAreRetryable(t *testing.T) {
	// Connection refused: a port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, retry, err := client(t, "http://"+addr, time.Second).Do(context.Background(), "GET", "/", nil)
	require.True(t, retry)
	var ce *core.Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, core.CodeNetwork, ce.Code)

	// A vendor that accepts and never answers: the client timeout cuts it.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	start := time.Now()
	_, retry, err = client(t, hang.URL, 50*time.Millisecond).Do(context.Background(), "GET", "/", nil)
	require.True(t, retry)
	require.True(t, errors.As(err, &ce))
	require.Equal(t, core.CodeTimeout, ce.Code)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestHugeBodyIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	resp, _, err := client(t, srv.URL, 5*time.Second).Do(context.Background(), "GET", "/", nil)
	require.NoError(t, err)
	require.Equal(t, vendorhttp.MaxResponseBytes, len(resp.Body))
	require.LessOrEqual(t, len(vendorhttp.Snippet(resp.Body, 200)), 203)
}

func TestClip(t *testing.T) {
	require.Equal(t, "a b c", vendorhttp.Clip("  a \n\t b   c ", 100))
	require.Equal(t, "ab...", vendorhttp.Clip("abcdef", 2))
	require.Equal(t, "?x", vendorhttp.Clip("\xffx", 10))
	require.Equal(t, "é...", vendorhttp.Clip("éé", 3), "never cuts a character in two")
}

// leaked returns the first piece of core.PieceLen characters of secret that out still holds in one
// of the forms a vendor echoes it in ("" if none).
func leaked(out, secret string) string {
	lower := strings.ToLower(out)
	r := []rune(secret)
	for i := 0; i+core.PieceLen <= len(r); i++ {
		p := string(r[i : i+core.PieceLen])
		j, _ := json.Marshal(p)
		for _, form := range []string{p, string(j[1 : len(j)-1]), url.QueryEscape(p), url.PathEscape(p), html.EscapeString(p),
			base64.StdEncoding.EncodeToString([]byte(p)), base64.RawURLEncoding.EncodeToString([]byte(p)), hex.EncodeToString([]byte(p))} {
			if strings.Contains(lower, strings.ToLower(form)) {
				return form
			}
		}
	}
	return ""
}

// TestSendScrubsWhatTheVendorEchoes: a vendor that quotes the submitted secret (and the platform
// token) back in its error body and headers, in many encodings and cut short, gives an answer
// without any of it, and with the rest of what it said.
func TestSendScrubsWhatTheVendorEchoes(t *testing.T) {
	const secret = `Sup3r"S3cret<&>-Passw0rd/2024+é`
	const token = "vendor-token-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Password string `json:"password"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		p := in.Password
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("X-Echo", base64.StdEncoding.EncodeToString([]byte(p)))
		w.Header().Add("X-Echo", "token="+url.QueryEscape(auth))
		w.Header().Set("Location", "https://vendor.example/retry?pw="+url.QueryEscape(p[:12]))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"code": "WEAK_PASSWORD",
			"message": "password " + p + " is too weak; as sent: " + url.QueryEscape(p) + " " + html.EscapeString(p) + " " +
				strings.ToUpper(p) + " " + hex.EncodeToString([]byte(p)) + " " + base64.RawURLEncoding.EncodeToString([]byte("x"+p)) +
				" starts with " + p[:9] + "; your token " + auth[:14] + "…",
			"body": string(mustJSON(t, in)),
		}})
	}))
	defer srv.Close()
	c, err := vendorhttp.New(srv.URL, core.NewSecret(token), time.Second, nil)
	require.NoError(t, err)
	resp, _, err := c.Send(context.Background(), core.Request{Method: "PATCH", Path: "/x", Body: map[string]any{"password": core.NewSecret(secret)}})
	require.NoError(t, err)
	require.Equal(t, 400, resp.Status)
	var all strings.Builder
	all.Write(resp.Body)
	for _, vs := range resp.Header {
		for _, v := range vs {
			all.WriteString("\n" + v)
		}
	}
	for _, s := range []string{secret, token} {
		require.Empty(t, leaked(all.String(), s), "the answer still holds a piece of %q:\n%s", s, all.String())
	}
	require.Contains(t, string(resp.Body), `"code":"WEAK_PASSWORD"`)
	require.Contains(t, string(resp.Body), "is too weak; as sent: ")
	require.Contains(t, resp.Header.Get("Location"), "https://vendor.example/retry?pw=")
	require.True(t, json.Valid(resp.Body), "what is left of a JSON answer stays JSON: %s", resp.Body)

	// Do, for calls without a credential, removes the platform token.
	resp, _, err = c.Do(context.Background(), "POST", "/x", []byte(`{"password":"unrelated-value"}`))
	require.NoError(t, err)
	require.Empty(t, leaked(string(resp.Body)+resp.Header.Values("X-Echo")[1], token), string(resp.Body))
	require.Contains(t, string(resp.Body), "unrelated-value", "Do knows no other secret")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestTransportErrorsAreScrubbed: a transport error may quote the URL or what the other end sent.
func TestTransportErrorsAreScrubbed(t *testing.T) {
	const secret = "Sup3rS3cret-Passw0rd-2024"
	const token = "vendor-token-0123456789"
	// An answer that is not HTTP: the error quotes what it got for a status code.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf)
			_, _ = conn.Write([]byte("NOT-HTTP " + secret + " " + token + "\r\n\r\n"))
			_ = conn.Close()
		}
	}()
	c, err := vendorhttp.New("http://"+l.Addr().String(), core.NewSecret(token), time.Second, nil)
	require.NoError(t, err)
	_, retry, err := c.Send(context.Background(), core.Request{Method: "POST", Path: "/x", Body: map[string]any{"password": core.NewSecret(secret)}})
	require.True(t, retry)
	var ce *core.Error
	require.True(t, errors.As(err, &ce))
	require.Contains(t, ce.Message, "malformed HTTP")
	require.Empty(t, leaked(ce.Message, secret), ce.Message)
	require.Empty(t, leaked(ce.Message, token), ce.Message)

	// A path that carries the token (a vendor that wants it in the query), to a closed port.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := dead.Addr().String()
	require.NoError(t, dead.Close())
	c, err = vendorhttp.New("http://"+addr, core.NewSecret(token), time.Second, nil)
	require.NoError(t, err)
	_, _, err = c.Do(context.Background(), "GET", "/x?access_token="+url.QueryEscape(token), nil)
	require.True(t, errors.As(err, &ce))
	require.Equal(t, core.CodeNetwork, ce.Code)
	require.Contains(t, ce.Message, "GET /x?access_token=")
	require.Empty(t, leaked(ce.Message, token), ce.Message)
}

// TestSendScrubsEachRequestsOwnSecrets: the Scrubber kept from one Send is not used for another
// request's secrets.
func TestSendScrubsEachRequestsOwnSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.Copy(w, r.Body)
	}))
	defer srv.Close()
	c := client(t, srv.URL, time.Second)
	for _, pw := range []string{"Fq9-zLk2-Wm4x", "Hr7-yPo3-Vt8c", "Fq9-zLk2-Wm4x"} {
		resp, _, err := c.Send(context.Background(), core.Request{Method: "PUT", Path: "/x", Body: map[string]any{"password": core.NewSecret(pw)}})
		require.NoError(t, err)
		require.Equal(t, `{"password":"`+core.Redacted+`"}`, string(resp.Body))
	}
}
