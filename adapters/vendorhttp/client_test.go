package vendorhttp_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
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
		require.Equal(t, tc.retry, e.Retryable)
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
