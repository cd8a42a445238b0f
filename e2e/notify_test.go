package e2e_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

const (
	hookSecret = "whsec-e2e-notify-0123456789abcdef"
	// hookToken is part of every webhook URL's path, as a Slack webhook's token is: it must
	// never reach a log line or an answer.
	hookToken = "T0KEN-e2e-9f3kq0zx17"
)

// hook is a webhook receiver inside the test: it records every request; answer decides what
// each gets (n: how many requests came to that path before this one).
type hook struct {
	mu     sync.Mutex
	got    []hookRequest
	answer func(path string, n int, w http.ResponseWriter, r *http.Request)
	srv    *http.Server
	addr   string
}

type hookRequest struct {
	path   string
	header http.Header
	body   []byte
}

// startHook serves a receiver on addr ("" for a free port).
func startHook(t *testing.T, addr string, answer func(path string, n int, w http.ResponseWriter, r *http.Request)) *hook {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	h := &hook{answer: answer, addr: l.Addr().String()}
	h.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := 0
		for _, g := range h.got {
			if g.path == r.URL.Path {
				n++
			}
		}
		h.got = append(h.got, hookRequest{path: r.URL.Path, header: r.Header.Clone(), body: b})
		h.mu.Unlock()
		if h.answer != nil {
			h.answer(r.URL.Path, n, w, r)
		}
	})}
	go func() { _ = h.srv.Serve(l) }()
	t.Cleanup(func() { _ = h.srv.Close() })
	return h
}

func (h *hook) url(name string) string {
	return "http://" + h.addr + "/hooks/" + name + "/" + hookToken
}

func (h *hook) requests(name string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, g := range h.got {
		if strings.HasPrefix(g.path, "/hooks/"+name+"/") {
			out = append(out, g)
		}
	}
	return out
}

// withNotifications adds a notifications block to the setup's config; its URLs and secret come
// from the environment, as an operator would give them.
func (s *setup) withNotifications(t *testing.T, block string, env map[string]string) {
	t.Helper()
	cfg, err := os.ReadFile(s.cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.cfgPath, append(cfg, []byte("notifications:\n"+block)...), 0o600))
	for k, v := range env {
		s.env = append(s.env, k+"="+v)
	}
}

// noHang is a gate that holds no vendor call.
func noHang() *hangGate {
	g := newHangGate()
	g.armed = false
	return g
}

// rotate submits a password rotation of warehouse-pg and waits for it (?wait=30s).
func rotate(t *testing.T, g *gateway, password string) (*core.Rotation, time.Duration) {
	t.Helper()
	start := time.Now()
	status, _, b := g.call(t, "POST", "/v1/rotations?wait=30s", `{"source":"warehouse-pg","credential":{"type":"password","password":"`+password+`"}}`, nil)
	took := time.Since(start)
	require.Equal(t, 200, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	assertAllSucceeded(t, &rot)
	return &rot, took
}

type notificationView struct {
	Name      string `json:"name"`
	Pending   int    `json:"pending"`
	Failing   int    `json:"failing"`
	Delivered int    `json:"delivered"`
	Failed    int    `json:"failed"`
	LastError string `json:"last_error"`
}

func notifications(t *testing.T, g *gateway) (map[string]notificationView, string) {
	t.Helper()
	status, _, b := g.call(t, "GET", "/v1/notifications", "", nil)
	require.Equal(t, 200, status, "%s", b)
	var resp struct {
		Notifications []notificationView `json:"notifications"`
	}
	require.NoError(t, json.Unmarshal(b, &resp))
	out := map[string]notificationView{}
	for _, n := range resp.Notifications {
		out[n.Name] = n
	}
	return out, string(b)
}

func validSignature(header string, body []byte) bool {
	t, v1, ok := strings.Cut(strings.TrimPrefix(header, "t="), ",v1=")
	unix, err := strconv.ParseInt(t, 10, 64)
	if !ok || err != nil || time.Since(time.Unix(unix, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(t + "." + string(body)))
	return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(v1))
}

// TestNotificationRetriedOnceSignedNoSecret: the receiver fails the first delivery with 500 and
// takes the second: the event arrives twice at most, with the same X-Credsync-Event-Id and a
// valid signature each time, and neither a body nor a header holds the rotation's password.
// A slack notification of the same event is sent too, unsigned.
func TestNotificationRetriedOnceSignedNoSecret(t *testing.T) {
	h := startHook(t, "", func(path string, n int, w http.ResponseWriter, _ *http.Request) {
		if strings.HasPrefix(path, "/hooks/ops/") && n == 0 {
			http.Error(w, "receiver starting", http.StatusInternalServerError)
		}
	})
	s := newSetup(t, noHang(), "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	s.withNotifications(t, `  - name: ops
    url: ${OPS_WEBHOOK_URL}
    secret: ${OPS_WEBHOOK_SECRET}
    events: [rotation.succeeded, rotation.partial, rotation.failed]
  - name: chat
    url: ${CHAT_WEBHOOK_URL}
    format: slack
    events: [rotation.succeeded]
`, map[string]string{"OPS_WEBHOOK_URL": h.url("ops"), "OPS_WEBHOOK_SECRET": hookSecret, "CHAT_WEBHOOK_URL": h.url("chat")})
	g := s.start(t, "replica-1", freeAddr(t))

	const password = "notify-Pw-7c1d0e-never-sent"
	rot, _ := rotate(t, g, password)

	require.Eventually(t, func() bool {
		n, _ := notifications(t, g)
		return n["ops"].Delivered == 1 && n["chat"].Delivered == 1
	}, 30*time.Second, 50*time.Millisecond, "both notifications delivered:\n%s", g.output())
	time.Sleep(3 * time.Second) // time enough for a third attempt, were one to come
	ops, chat := h.requests("ops"), h.requests("chat")
	require.Len(t, ops, 2, "the 500 is retried once, and the event arrives twice at most")
	require.Len(t, chat, 1)

	id := ops[0].header.Get("X-Credsync-Event-Id")
	require.NotEmpty(t, id)
	for i, r := range ops {
		require.Equal(t, id, r.header.Get("X-Credsync-Event-Id"), "attempt %d: the same event id", i+1)
		require.True(t, validSignature(r.header.Get("X-Credsync-Signature"), r.body), "attempt %d: a valid signature: %q", i+1, r.header.Get("X-Credsync-Signature"))
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, "credsync", r.header.Get("User-Agent"))
		var ev struct {
			ID         string `json:"id"`
			Type       string `json:"type"`
			Source     string `json:"source"`
			RotationID string `json:"rotation_id"`
			Targets    []struct {
				Name, Platform, Status string
			} `json:"targets"`
		}
		require.NoError(t, json.Unmarshal(r.body, &ev))
		require.Equal(t, id, ev.ID)
		require.Equal(t, core.EventRotationSucceeded, ev.Type)
		require.Equal(t, "warehouse-pg", ev.Source)
		require.Equal(t, rot.ID, ev.RotationID)
		require.Len(t, ev.Targets, 3)
	}
	require.Equal(t, id, chat[0].header.Get("X-Credsync-Event-Id"), "one event, one id, whatever the notification")
	require.Empty(t, chat[0].header.Get("X-Credsync-Signature"))
	var msg map[string]string
	require.NoError(t, json.Unmarshal(chat[0].body, &msg))
	require.Contains(t, msg["text"], "credsync: rotation succeeded (source warehouse-pg, rotation "+rot.ID+")")

	for _, r := range append(ops, chat...) {
		all := string(r.body)
		for k, vs := range r.header {
			all += "\n" + k + ": " + strings.Join(vs, ",")
		}
		require.NotContains(t, all, password, "no secret in a body or a header")
		require.NotContains(t, all, password[:12])
		require.NotContains(t, all, hookSecret, "nor the signing secret")
	}

	n, body := notifications(t, g)
	require.Equal(t, notificationView{Name: "ops", Delivered: 1, LastError: n["ops"].LastError}, n["ops"])
	require.Contains(t, n["ops"].LastError, "answered 500 Internal Server Error: receiver starting")
	require.Contains(t, n["ops"].LastError, h.addr, "the last error names the host")
	require.NotContains(t, body, hookToken, "never the URL's path")
	_, _, metrics := g.call(t, "GET", "/metrics", "", nil)
	require.Contains(t, string(metrics), `credsync_notification_attempts_total{notification="ops",result="retry"} 1`)
	require.Contains(t, string(metrics), `credsync_notification_attempts_total{notification="ops",result="delivered"} 1`)
	require.NotContains(t, string(metrics), hookToken)

	logs := g.output()
	require.NotContains(t, logs, password, "no secret in the logs")
	require.NotContains(t, logs, hookToken, "nor the webhook URL's token")
	require.NotContains(t, logs, hookSecret)
	require.Contains(t, logs, `"host":"`+h.addr+`"`, "the host is logged")
}

// notificationsAfterSIGKILL: the receiver is down; rotations finish and their events are not
// delivered (one attempt at least fails); the gateway is killed with SIGKILL; the receiver comes
// up and the gateway restarts: every event is delivered.
func notificationsAfterSIGKILL(t *testing.T, driver, dsn string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // the receiver is down: connection refused
	down := &hook{addr: addr}

	s := newSetup(t, noHang(), driver, dsn)
	s.withNotifications(t, `  - name: ops
    url: ${OPS_WEBHOOK_URL}
    secret: ${OPS_WEBHOOK_SECRET}
    events: [rotation.succeeded, rotation.partial, rotation.failed]
`, map[string]string{"OPS_WEBHOOK_URL": down.url("ops"), "OPS_WEBHOOK_SECRET": hookSecret})
	gwAddr := freeAddr(t)
	g1 := s.start(t, "replica-1", gwAddr)
	var ids []string
	for i := 0; i < 2; i++ {
		rot, _ := rotate(t, g1, fmt.Sprintf("sigkill-notify-pw-%d", i))
		ids = append(ids, rot.ID)
	}
	require.Eventually(t, func() bool {
		n, _ := notifications(t, g1)
		return n["ops"].Failing >= 1 && n["ops"].Pending+n["ops"].Failing == 2
	}, 30*time.Second, 50*time.Millisecond, "an attempt failed, nothing delivered:\n%s", g1.output())
	n, _ := notifications(t, g1)
	require.Zero(t, n["ops"].Delivered)
	require.Contains(t, n["ops"].LastError, "cannot reach "+addr)
	g1.kill(t) // SIGKILL with both events undelivered

	h := startHook(t, addr, nil) // the receiver comes up
	g2 := s.start(t, "replica-1", gwAddr)
	require.Eventually(t, func() bool {
		n, _ := notifications(t, g2)
		return n["ops"].Delivered == 2
	}, 60*time.Second, 100*time.Millisecond, "every event delivered after the restart:\n%s", g2.output())
	got := map[string]bool{}
	for _, r := range h.requests("ops") {
		require.True(t, validSignature(r.header.Get("X-Credsync-Signature"), r.body))
		var ev struct {
			ID         string `json:"id"`
			RotationID string `json:"rotation_id"`
		}
		require.NoError(t, json.Unmarshal(r.body, &ev))
		require.Equal(t, ev.ID, r.header.Get("X-Credsync-Event-Id"))
		got[ev.RotationID] = true
	}
	for _, id := range ids {
		require.True(t, got[id], "the event of %s arrived", id)
	}
	require.NotContains(t, g1.output()+g2.output(), hookToken)
}

func TestNotificationsAfterSIGKILLSQLite(t *testing.T) {
	notificationsAfterSIGKILL(t, "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
}

func TestNotificationsAfterSIGKILLPostgres(t *testing.T) {
	notificationsAfterSIGKILL(t, "postgres", pg.NewDatabase(t))
}

// TestAHangingReceiverNeverSlowsARotation: with the only notification's receiver holding every
// request open, a rotation's ?wait=30s answer comes as fast as on a gateway without
// notifications.
func TestAHangingReceiverNeverSlowsARotation(t *testing.T) {
	plain := newSetup(t, noHang(), "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	g0 := plain.start(t, "replica-0", freeAddr(t))
	_, _ = rotate(t, g0, "warm-up-pw-0000") // the first rotation pays for warming up
	var baseline time.Duration
	for i := 0; i < 3; i++ {
		_, took := rotate(t, g0, fmt.Sprintf("baseline-pw-%d", i))
		baseline = max(baseline, took)
	}

	release := make(chan struct{})
	var (
		hanging  sync.WaitGroup
		inflight atomic.Int32
	)
	arrived := make(chan struct{}, 16)
	h := startHook(t, "", func(_ string, _ int, _ http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		defer hanging.Done()
		inflight.Add(1)
		defer inflight.Add(-1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release); hanging.Wait() })
	s := newSetup(t, noHang(), "sqlite", filepath.Join(t.TempDir(), "credsync.db"))
	s.withNotifications(t, `  - name: ops
    url: ${OPS_WEBHOOK_URL}
    events: [rotation.succeeded]
`, map[string]string{"OPS_WEBHOOK_URL": h.url("ops")})
	g := s.start(t, "replica-1", freeAddr(t))
	_, _ = rotate(t, g, "warm-up-pw-0001")
	select {
	case <-arrived: // its delivery now hangs at the receiver
	case <-time.After(20 * time.Second):
		t.Fatalf("the delivery never reached the receiver:\n%s", g.output())
	}
	var slowest time.Duration
	for i := 0; i < 3; i++ {
		_, took := rotate(t, g, fmt.Sprintf("hanging-pw-%d", i))
		slowest = max(slowest, took)
	}
	require.NotZero(t, inflight.Load(), "the receiver holds a delivery all along")
	require.NotEmpty(t, h.requests("ops"))
	t.Logf("rotation with ?wait=30s: %s without notifications, %s with a hanging receiver", baseline, slowest)
	require.Less(t, slowest, baseline+time.Second, "a hanging receiver does not slow a rotation (%s vs %s)", slowest, baseline)
	n, _ := notifications(t, g)
	require.Equal(t, 4, n["ops"].Pending+n["ops"].Failing, "the events wait their turn")
}
