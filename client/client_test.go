package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/client/clienttest"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
)

const password = "Cl1ent-s3cret-pw-value"

var pwCred = json.RawMessage(`{"type":"password","username":"svc","password":"` + password + `"}`)

func newClient(t *testing.T, addr, token string) *client.Client {
	t.Helper()
	c, err := client.New(addr, core.NewSecret(token), client.Options{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	return c
}

func TestRotateWaitGetListSources(t *testing.T) {
	srv := clienttest.New(t)
	c := newClient(t, srv.URL, clienttest.Token)
	ctx := context.Background()

	rot, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred, Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Len(t, rot.Targets, 3)
	require.NotContains(t, string(rot.Raw), password)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rot.Raw, &doc), "Raw is the gateway's JSON")
	require.Equal(t, rot.ID, doc["id"])

	got, err := c.Get(ctx, rot.ID)
	require.NoError(t, err)
	require.Equal(t, rot.ID, got.ID)
	require.Equal(t, core.RotationSucceeded, got.Status)

	l, err := c.List(ctx, client.ListOptions{Source: "db", Status: core.RotationSucceeded, Limit: 5})
	require.NoError(t, err)
	require.Len(t, l.Rotations, 1)
	require.Equal(t, rot.ID, l.Rotations[0].ID)

	s, err := c.Sources(ctx)
	require.NoError(t, err)
	require.Len(t, s.Sources, 1)
	require.Equal(t, "db", s.Sources[0].Name)
	require.Len(t, s.Sources[0].Targets, 3)
	require.NotNil(t, s.Sources[0].Targets[0].Last)
	require.Equal(t, rot.ID, s.Sources[0].Targets[0].Last.RotationID)
}

func TestRotateThenWaitReportsEveryState(t *testing.T) {
	srv := clienttest.New(t)
	release := srv.Targets["gamma"].Hold()
	c := newClient(t, srv.URL, clienttest.Token)
	ctx := context.Background()

	rot, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred})
	require.NoError(t, err)
	require.False(t, rot.Status.Finished())

	var mu sync.Mutex
	var seen []core.RotationStatus
	done := make(chan struct{})
	var final *client.Rotation
	go func() {
		defer close(done)
		final, err = c.Wait(ctx, rot.ID, func(r *client.Rotation) {
			mu.Lock()
			seen = append(seen, r.Status)
			mu.Unlock()
			if r.Targets[2].Status == core.TargetRunning {
				release()
			}
		})
	}()
	<-done
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, final.Status)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(seen), 2, "at least one running state and the final one")
	require.Equal(t, core.RotationSucceeded, seen[len(seen)-1])
}

func TestWaitEndsWithContext(t *testing.T) {
	srv := clienttest.New(t)
	srv.Targets["alpha"].Hold()
	c := newClient(t, srv.URL, clienttest.Token)
	rot, err := c.Rotate(context.Background(), client.RotateRequest{Source: "db", Credential: pwCred})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	last, err := c.Wait(ctx, rot.ID, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, last, "the last state read comes back with the error")
	require.False(t, last.Status.Finished())
}

func TestPartialAndFailed(t *testing.T) {
	srv := clienttest.New(t)
	c := newClient(t, srv.URL, clienttest.Token)
	ctx := context.Background()

	srv.Targets["beta"].SetFail(true)
	rot, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred, Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, core.RotationPartial, rot.Status)
	require.Equal(t, core.TargetFailed, rot.Targets[1].Status)
	require.NotNil(t, rot.Targets[1].Error)

	rot, err = c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred, Targets: []string{"beta"}, Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, core.RotationFailed, rot.Status)
	require.Len(t, rot.Targets, 1)

	srv.Targets["beta"].SetFail(false)
	again, err := c.Retry(ctx, rot.ID)
	require.NoError(t, err)
	final, err := c.Wait(ctx, again.ID, nil)
	require.NoError(t, err)
	require.Equal(t, core.RotationSucceeded, final.Status)
}

func TestIdempotencyKey(t *testing.T) {
	srv := clienttest.New(t)
	c := newClient(t, srv.URL, clienttest.Token)
	ctx := context.Background()
	first, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred, IdempotencyKey: "job-42", Wait: 10 * time.Second})
	require.NoError(t, err)
	require.False(t, first.Replayed)
	second, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: pwCred, IdempotencyKey: "job-42"})
	require.NoError(t, err)
	require.True(t, second.Replayed)
	require.Equal(t, first.ID, second.ID)

	_, err = c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: json.RawMessage(`{"type":"password","password":"other"}`), IdempotencyKey: "job-42"})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusConflict, ae.StatusCode)
	require.True(t, client.IsBadInput(err))
}

func TestPlan(t *testing.T) {
	srv := clienttest.New(t)
	c := newClient(t, srv.URL, clienttest.Token)
	p, err := c.Plan(context.Background(), client.PlanRequest{Source: "db", Credential: pwCred, Targets: []string{"alpha", "gamma"}})
	require.NoError(t, err)
	require.True(t, p.DryRun)
	require.Len(t, p.Requests, 2)
	require.Equal(t, "alpha", p.Requests[0].Target)
	require.Equal(t, "PATCH", p.Requests[0].Request.Method)
	require.NotContains(t, string(p.Raw), password)
	require.Contains(t, string(p.Raw), core.Redacted)
	for _, a := range srv.Targets {
		require.Zero(t, a.Sends(), "a dry run sends nothing")
	}
}

func TestTypedErrors(t *testing.T) {
	srv := clienttest.New(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, clienttest.Token)

	// 422: a credential no target takes; the envelope's details come through.
	_, err := c.Rotate(ctx, client.RotateRequest{Source: "db", Credential: json.RawMessage(`{"type":"aws_assume_role","role_arn":"a","role_session_name":"b"}`)})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnprocessableEntity, ae.StatusCode)
	require.Equal(t, "invalid_request", ae.Code)
	require.NotEmpty(t, ae.Details)
	require.NotEmpty(t, ae.RequestID)
	require.True(t, client.IsBadInput(err))
	require.False(t, client.IsUnreachable(err))
	require.Contains(t, err.Error(), "HTTP 422")

	// 404: unknown source and unknown rotation.
	_, err = c.Rotate(ctx, client.RotateRequest{Source: "nope", Credential: pwCred})
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusNotFound, ae.StatusCode)
	require.True(t, client.IsBadInput(err))
	_, err = c.Get(ctx, "no-such-rotation")
	require.True(t, client.IsBadInput(err))

	// 401: a wrong token; the token never shows in the error.
	bad := newClient(t, srv.URL, "wrong-token-value-123456")
	_, err = bad.Sources(ctx)
	require.True(t, client.IsUnauthorized(err))
	require.False(t, client.IsBadInput(err))
	require.NotContains(t, err.Error(), "wrong-token-value-123456")
	require.NotContains(t, fmt.Sprintf("%+v", bad), "wrong-token-value-123456")

	// Unreachable: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = newClient(t, addr, clienttest.Token).Sources(ctx)
	var ue *client.UnreachableError
	require.ErrorAs(t, err, &ue)
	require.True(t, client.IsUnreachable(err))
	require.False(t, client.IsBadInput(err))
}

func TestServerErrorsAndForeignAnswers(t *testing.T) {
	ctx := context.Background()
	h := http.NewServeMux()
	h.HandleFunc("/v1/sources", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"shutting_down","message":"the gateway is stopping"}}`))
	})
	h.HandleFunc("/v1/rotations/html", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`<html>not credsync</html>`))
	})
	h.HandleFunc("/v1/rotations/proxy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`upstream down`))
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv.URL, clienttest.Token)

	_, err := c.Sources(ctx)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "shutting_down", ae.Code)
	require.True(t, client.IsUnreachable(err), "5xx counts as unreachable")

	_, err = c.Get(ctx, "html")
	require.True(t, client.IsUnreachable(err))
	require.Contains(t, err.Error(), "not JSON")

	_, err = c.Get(ctx, "proxy")
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "upstream down", ae.Message)
	require.True(t, client.IsUnreachable(err))
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                        client.DefaultAddr,
		"127.0.0.1:9000":          "http://127.0.0.1:9000",
		"https://credsync.local/": "https://credsync.local",
		"http://h:1/prefix":       "http://h:1/prefix",
	} {
		u, err := client.ParseAddr(in)
		require.NoError(t, err, in)
		require.Equal(t, want, u.String(), in)
	}
	for _, bad := range []string{"ftp://h", "http://", "http://h?x=1", "http://user:pw@h"} {
		_, err := client.ParseAddr(bad)
		require.Error(t, err, bad)
		require.False(t, strings.Contains(err.Error(), "pw@"), "no credentials echoed")
	}
}

func TestErrorsAreWrappable(t *testing.T) {
	err := fmt.Errorf("rotate: %w", &client.UnreachableError{Method: "GET", Path: "/v1/sources", Err: errors.New("connection refused")})
	require.True(t, client.IsUnreachable(err))
	require.Contains(t, err.Error(), "connection refused")
}

func TestRequestTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, err := client.New(srv.URL, core.NewSecret(clienttest.Token), client.Options{Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.Sources(context.Background())
	require.True(t, client.IsUnreachable(err))
	require.Contains(t, err.Error(), "no answer in time")
}

// TestGetAllFollowsThePages: a rotation of 2,500 targets comes back whole, read a page at a
// time with the cursor the gateway gave, in order.
func TestGetAllFollowsThePages(t *testing.T) {
	const n = 2500
	all := make([]core.TargetResult, n)
	for i := range all {
		all[i] = core.TargetResult{Name: fmt.Sprintf("t%04d", i), Status: core.TargetSucceeded}
	}
	full := &core.Rotation{ID: "rot_big", Source: "db", Status: core.RotationSucceeded, Targets: all}
	var pages int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages++
		lim, _ := strconv.Atoi(r.URL.Query().Get("targets_limit"))
		p, err := core.PageOf(full, core.TargetPage{Limit: lim, After: r.URL.Query().Get("targets_after")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "tok-0123456789abcdef")
	rot, err := c.GetAll(context.Background(), "rot_big")
	require.NoError(t, err)
	require.Len(t, rot.Targets, n)
	for i, tr := range rot.Targets {
		require.Equal(t, all[i].Name, tr.Name)
	}
	require.Equal(t, 3, pages, "1,000 a page")
	require.Empty(t, rot.NextTargets)
	require.Equal(t, n, rot.TargetCounts[core.TargetSucceeded])
	var back core.Rotation
	require.NoError(t, json.Unmarshal(rot.Raw, &back))
	require.Len(t, back.Targets, n, "Raw is the whole rotation")
}
