package fakeutil_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/fakeutil"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

// fake is the smallest fake vendor: it answers 200 {"ok":true} unless a fault answers first.
func fake(t *testing.T, f fakeutil.Fault) (*httptest.Server, *fakeutil.Base) {
	t.Helper()
	b := fakeutil.NewBase("tok")
	b.SetFault(f)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := b.Begin(w, r); !ok {
			return
		}
		fakeutil.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	}))
	t.Cleanup(srv.Close)
	return srv, b
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := noRedirects.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestStatusAnswersTheFirstNRequests(t *testing.T) {
	srv, b := fake(t, fakeutil.Status(http.StatusTooManyRequests, "1", `{"error":"slow down"}`, 2))
	for i := 0; i < 2; i++ {
		resp, body := get(t, srv.URL+"/x")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.JSONEq(t, `{"error":"slow down"}`, string(body))
	}
	resp, body := get(t, srv.URL+"/x")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the third request reaches the fake")
	require.JSONEq(t, `{"ok":true}`, string(body))
	require.Len(t, b.Requests(), 3, "every request is recorded, faulted or not")
}

func TestStatusEveryRequestAndPlainText(t *testing.T) {
	srv, _ := fake(t, fakeutil.Status(http.StatusServiceUnavailable, "", "down for maintenance", 0))
	for i := 0; i < 3; i++ {
		resp, body := get(t, srv.URL)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Retry-After"))
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Equal(t, "down for maintenance", string(body))
	}
}

func TestWhenAndTimesNarrowAFault(t *testing.T) {
	f := fakeutil.When(fakeutil.Method(http.MethodPost), fakeutil.Times(1, fakeutil.Status(http.StatusBadGateway, "", "", 0)))
	srv, _ := fake(t, f)
	resp, _ := get(t, srv.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a GET is not matched")
	post := func() int {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusBadGateway, post())
	require.Equal(t, http.StatusOK, post(), "Times(1) faults only the first matching request")
}

func TestRetryAfterDate(t *testing.T) {
	before := time.Now()
	v := fakeutil.RetryAfterDate(3 * time.Second)
	at, err := http.ParseTime(v)
	require.NoError(t, err)
	require.False(t, at.Before(before.Add(2*time.Second).Truncate(time.Second)), "%s", v)
	require.False(t, at.After(time.Now().Add(3*time.Second)), "%s", v)
}

func TestHangNeverAnswersUntilTheClientLeaves(t *testing.T) {
	release := make(chan struct{})
	returned := make(chan struct{})
	hang := fakeutil.HangUntil(release)
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request) bool {
		defer close(returned)
		return hang(w, r)
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no answer ever comes")
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging handler did not return after the client went away")
	}
}

func TestResetFailsMidBody(t *testing.T) {
	srv, _ := fake(t, fakeutil.Reset())
	resp, err := http.Get(srv.URL)
	if err == nil {
		defer func() { _ = resp.Body.Close() }()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var b []byte
		b, err = io.ReadAll(resp.Body)
		require.Less(t, len(b), 4096, "the announced body never arrives whole")
	}
	require.Error(t, err, "the client sees the connection fail")
}

func TestTrickleIsSlow(t *testing.T) {
	srv, _ := fake(t, fakeutil.Trickle(20))
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "the status line and headers come at once")
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the body never ends")
	require.NotEmpty(t, b, "but it does start")
	require.True(t, strings.HasPrefix(`{"data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`, string(b)), "%q", b)
	require.Less(t, len(b), 100, "20 bytes a second for 0.4 s")
}

func TestHugeBody(t *testing.T) {
	srv, _ := fake(t, fakeutil.Huge(http.StatusInternalServerError, 2<<20))
	resp, b := get(t, srv.URL)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Len(t, b, 2<<20)
	require.True(t, json.Valid(b))
}

func TestNonJSON(t *testing.T) {
	srv, _ := fake(t, fakeutil.NonJSON(http.StatusBadGateway))
	resp, b := get(t, srv.URL)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
	require.False(t, json.Valid(b))
	require.Contains(t, string(b), "502 Bad Gateway")
}

func TestRedirectToAnotherHost(t *testing.T) {
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer other.Close()
	srv, _ := fake(t, fakeutil.Redirect(other.URL+"/"))
	resp, _ := get(t, srv.URL+"/api/v1/x?y=1")
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, other.URL+"/api/v1/x?y=1", resp.Header.Get("Location"))
	require.Zero(t, hits.Load())

	// A client that follows redirects goes there (which is what credsync must never do).
	resp, err := http.Post(srv.URL+"/api/v1/x", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.EqualValues(t, 1, hits.Load())
}
