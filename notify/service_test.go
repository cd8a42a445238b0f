package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/pgtest"
	"github.com/credsync/credsync/notify"
	"github.com/credsync/credsync/store/memstore"
	"github.com/credsync/credsync/store/sqlstore"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

const hookSecret = "whsec-notify-test-0123456789"

// received is one request a receiver got.
type received struct {
	path   string
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is a webhook receiver: answer decides each answer (nil: 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request) // n: 0 for the first request
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, received{path: r.URL.Path, header: r.Header.Clone(), body: b, at: time.Now()})
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	require.Eventually(t, func() bool { return len(rc.requests()) >= n }, 10*time.Second, 5*time.Millisecond,
		"the receiver got %d requests, not %d", len(rc.requests()), n)
	return rc.requests()
}

type env struct {
	store core.Store
	svc   *notify.Service
	logs  *observer.ObservedLogs
	obs   *countingObserver
}

type countingObserver struct {
	mu       sync.Mutex
	attempts map[string]int
	counts   map[string]core.DeliveryCounts
}

func (o *countingObserver) DeliveryAttempt(n, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts[n+" "+result]++
}

func (o *countingObserver) DeliveryCounts(c core.DeliveryCounts) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[c.Notification] = c
}

// start runs a service over st (a new memstore when nil) with fast timings, tuned by fn.
func start(t *testing.T, st core.Store, fn func(*notify.Config), ns ...notify.Notification) *env {
	t.Helper()
	if st == nil {
		st = memstore.New()
	}
	zc, logs := observer.New(zap.DebugLevel)
	e := &env{store: st, logs: logs, obs: &countingObserver{attempts: map[string]int{}, counts: map[string]core.DeliveryCounts{}}}
	cfg := notify.Config{Notifications: ns, Store: st, Owner: "replica-1", Logger: zap.New(zc), Observer: e.obs,
		Poll: 10 * time.Millisecond, BackoffBase: 20 * time.Millisecond, Timeout: 2 * time.Second, CountsEvery: 20 * time.Millisecond}
	if fn != nil {
		fn(&cfg)
	}
	svc, err := notify.New(cfg)
	require.NoError(t, err)
	require.NoError(t, svc.Start(context.Background()))
	e.svc = svc
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return e
}

func hook(name string, rc *receiver, format string) notify.Notification {
	n := notify.Notification{Name: name, URL: core.NewSecret(rc.srv.URL + "/hooks/" + name), Format: format, Events: core.EventTypes()}
	if format == notify.FormatJSON {
		n.Secret = core.NewSecret(hookSecret)
	}
	return n
}

var evSeq atomic.Int64

func failedEvent() core.Event {
	n := evSeq.Add(1)
	return core.Event{ID: fmt.Sprintf("evt_test_%04d", n), Type: core.EventRotationFailed, Time: time.Now().UTC().Truncate(time.Microsecond),
		Source: "warehouse-pg", RotationID: fmt.Sprintf("rot_%04d", n),
		Targets: []core.EventTarget{{Name: "felt/0", Platform: "felt", Status: "failed", Error: &core.EventError{Code: "rejected", Message: "HTTP 400"}}}}
}

func enqueue(t *testing.T, st core.Store, ev core.Event, names ...string) {
	t.Helper()
	require.NoError(t, st.EnqueueEvent(context.Background(), ev, names))
}

func countsOf(t *testing.T, st core.Store, name string) core.DeliveryCounts {
	t.Helper()
	cs, err := st.DeliveryCounts(context.Background())
	require.NoError(t, err)
	for _, c := range cs {
		if c.Notification == name {
			return c
		}
	}
	return core.DeliveryCounts{Notification: name}
}

func waitCounts(t *testing.T, st core.Store, name string, ok func(core.DeliveryCounts) bool) core.DeliveryCounts {
	t.Helper()
	var c core.DeliveryCounts
	require.Eventually(t, func() bool { c = countsOf(t, st, name); return ok(c) }, 10*time.Second, 5*time.Millisecond, "counts of %s", name)
	return c
}

// checkSignature verifies X-Credsync-Signature as a receiver does, apart from notify.Sign.
func checkSignature(t *testing.T, r received) {
	t.Helper()
	sig := r.header.Get("X-Credsync-Signature")
	ts, v1, ok := strings.Cut(sig, ",v1=")
	require.True(t, ok, "%q", sig)
	ts, ok = strings.CutPrefix(ts, "t=")
	require.True(t, ok, "%q", sig)
	unix, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), unix, 5, "signed at the attempt's time")
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(ts + "." + string(r.body)))
	require.True(t, hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(v1)), "a valid signature")
}

func TestJSONDelivery(t *testing.T) {
	rc := newReceiver(t, nil)
	e := start(t, nil, nil, hook("ops", rc, notify.FormatJSON))
	ev := failedEvent()
	enqueue(t, e.store, ev, "ops")
	r := rc.waitFor(t, 1)[0]
	require.Equal(t, "/hooks/ops", r.path)
	require.Equal(t, ev.ID, r.header.Get("X-Credsync-Event-Id"))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "credsync", r.header.Get("User-Agent"))
	checkSignature(t, r)
	want, err := json.Marshal(notify.PayloadOf(ev))
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(r.body))
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 1 })
	require.NotNil(t, c.LastDeliveredAt)
	require.Empty(t, c.LastError)
	require.Eventually(t, func() bool {
		e.obs.mu.Lock()
		defer e.obs.mu.Unlock()
		return e.obs.attempts["ops delivered"] == 1 && e.obs.counts["ops"].Delivered == 1
	}, 5*time.Second, 5*time.Millisecond, "the observer hears of the attempt and of the store's counts")
	time.Sleep(50 * time.Millisecond)
	require.Len(t, rc.requests(), 1, "delivered once")
}

func TestSlackDeliveryIsNotSigned(t *testing.T) {
	rc := newReceiver(t, nil)
	e := start(t, nil, nil, hook("chat", rc, notify.FormatSlack))
	ev := failedEvent()
	enqueue(t, e.store, ev, "chat")
	r := rc.waitFor(t, 1)[0]
	var msg map[string]string
	require.NoError(t, json.Unmarshal(r.body, &msg))
	require.Equal(t, map[string]string{"text": notify.SlackText(ev)}, msg)
	require.Contains(t, msg["text"], "rotation failed (source warehouse-pg")
	require.Empty(t, r.header.Get("X-Credsync-Signature"))
	require.Equal(t, ev.ID, r.header.Get("X-Credsync-Event-Id"))
}

func TestSlackRefusesASecret(t *testing.T) {
	n := notify.Notification{Name: "chat", URL: core.NewSecret("https://hooks.slack.com/services/T/B/X"), Format: notify.FormatSlack, Secret: core.NewSecret("s")}
	_, err := notify.New(notify.Config{Store: memstore.New(), Owner: "r", Notifications: []notify.Notification{n}})
	require.ErrorContains(t, err, "format slack takes no secret")
}

func TestRetryAfterAServerError(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			http.Error(w, "try later", http.StatusInternalServerError)
		}
	})
	e := start(t, nil, nil, hook("ops", rc, notify.FormatJSON))
	ev := failedEvent()
	enqueue(t, e.store, ev, "ops")
	got := rc.waitFor(t, 2)
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 1 })
	require.Equal(t, got[0].header.Get("X-Credsync-Event-Id"), got[1].header.Get("X-Credsync-Event-Id"), "the same event id: de-duplicate by it")
	require.Equal(t, string(got[0].body), string(got[1].body))
	checkSignature(t, got[1])
	require.Contains(t, c.LastError, "500 Internal Server Error: try later")
	require.Contains(t, c.LastError, "127.0.0.1")
	require.NotContains(t, c.LastError, "/hooks/", "never the URL's path")
	time.Sleep(100 * time.Millisecond)
	require.Len(t, rc.requests(), 2)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	e := start(t, nil, nil, hook("ops", rc, notify.FormatJSON))
	enqueue(t, e.store, failedEvent(), "ops")
	got := rc.waitFor(t, 2)
	require.GreaterOrEqual(t, got[1].at.Sub(got[0].at), 900*time.Millisecond, "429 Retry-After: 1 waits a second, not the 20ms backoff")
	waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 1 })
}

func TestA4xxIsFinal(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such hook", http.StatusNotFound)
	})
	e := start(t, nil, nil, hook("ops", rc, notify.FormatJSON))
	enqueue(t, e.store, failedEvent(), "ops")
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Failed == 1 })
	require.Contains(t, c.LastError, "404 Not Found: no such hook: a 4xx other than 408 and 429 is final (not retried)")
	time.Sleep(100 * time.Millisecond)
	require.Len(t, rc.requests(), 1, "not retried")
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	other := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	e := start(t, nil, nil, hook("ops", rc, notify.FormatJSON))
	enqueue(t, e.store, failedEvent(), "ops")
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Failed == 1 })
	require.Contains(t, c.LastError, "307 Temporary Redirect: redirects are not followed")
	require.Empty(t, other.requests())
}

func TestAHangingReceiverIsCutAtTheTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	defer close(release)
	e := start(t, nil, func(c *notify.Config) { c.Timeout = 200 * time.Millisecond }, hook("ops", rc, notify.FormatJSON))
	enqueue(t, e.store, failedEvent(), "ops")
	got := rc.waitFor(t, 2)
	require.Less(t, got[1].at.Sub(got[0].at), 2*time.Second)
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 1 })
	require.Contains(t, c.LastError, "did not answer in time (timeout)")
}

// TestTheURLsTokenIsNeverShown: a receiver that echoes the request (its path holds the token)
// and a receiver that cannot be reached: neither the store's last error, nor a log line, nor a
// metric holds the token.
func TestTheURLsTokenIsNeverShown(t *testing.T) {
	const token = "T0KEN-zq83hd72kso1"
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad hook "+r.URL.String()+" "+strings.ToUpper(token), http.StatusBadRequest)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String() + "/services/" + token
	require.NoError(t, l.Close())
	echo := notify.Notification{Name: "echo", URL: core.NewSecret(rc.srv.URL + "/services/" + token + "?k=" + token), Events: core.EventTypes()}
	gone := notify.Notification{Name: "gone", URL: core.NewSecret(down), Format: notify.FormatSlack, Events: core.EventTypes()}
	e := start(t, nil, nil, echo, gone)
	enqueue(t, e.store, failedEvent(), "echo", "gone")
	ce := waitCounts(t, e.store, "echo", func(c core.DeliveryCounts) bool { return c.Failed == 1 })
	cg := waitCounts(t, e.store, "gone", func(c core.DeliveryCounts) bool { return c.Failing == 1 })
	require.Contains(t, ce.LastError, "400 Bad Request: bad hook")
	require.Contains(t, cg.LastError, "cannot reach 127.0.0.1:")
	var all strings.Builder
	all.WriteString(ce.LastError + "\n" + cg.LastError + "\n")
	for _, entry := range e.logs.All() {
		all.WriteString(entry.Message)
		for k, v := range entry.ContextMap() {
			fmt.Fprintf(&all, " %s=%v", k, v)
		}
		all.WriteString("\n")
	}
	require.NotContains(t, strings.ToLower(all.String()), strings.ToLower(token[4:]), "no piece of the token:\n%s", all.String())
	require.Contains(t, all.String(), "host=127.0.0.1:", "the host is logged")
}

// TestADownReceiverIsProbedNotFlooded: while a receiver fails, one delivery at a time is tried,
// backing off; once it answers, the backlog goes through.
func TestADownReceiverIsProbedNotFlooded(t *testing.T) {
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	e := start(t, nil, func(c *notify.Config) { c.BackoffBase = 100 * time.Millisecond }, hook("ops", rc, notify.FormatJSON))
	for i := 0; i < 20; i++ {
		enqueue(t, e.store, failedEvent(), "ops")
	}
	time.Sleep(600 * time.Millisecond)
	tried := len(rc.requests())
	require.GreaterOrEqual(t, tried, 2)
	require.LessOrEqual(t, tried, 8, "a failing receiver gets a probe per backoff, not every event")
	up.Store(true)
	waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 20 })
	ids := map[string]int{}
	for _, r := range rc.requests() {
		ids[r.header.Get("X-Credsync-Event-Id")]++
	}
	require.Len(t, ids, 20, "every event arrived")
}

// TestTheDayCut: a delivery is retried until 24 hours after its event, its last attempt at the
// cut; an event older than that is given up without sending.
func TestTheDayCut(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	var clock atomic.Int64
	ev := failedEvent()
	clock.Store(ev.Time.Add(24*time.Hour - 100*time.Millisecond).UnixNano()) // stands still until moved
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	e := start(t, nil, func(c *notify.Config) { c.Now = now; c.BackoffBase = 200 * time.Millisecond }, hook("ops", rc, notify.FormatJSON))

	old := failedEvent()
	old.Time = ev.Time.Add(-time.Hour)
	enqueue(t, e.store, old, "ops")
	c := waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Failed == 1 })
	require.Contains(t, c.LastError, "given up: not delivered within 24h of the event")
	require.Empty(t, rc.requests(), "too late: nothing sent")

	enqueue(t, e.store, ev, "ops")
	rc.waitFor(t, 1)
	waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Failing == 1 })
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rc.requests(), 1, "not due before the clock moves")
	clock.Store(ev.Time.Add(24*time.Hour + time.Second).UnixNano()) // its last attempt, at (just past) the cut
	rc.waitFor(t, 2)
	c = waitCounts(t, e.store, "ops", func(c core.DeliveryCounts) bool { return c.Failed == 2 })
	require.Contains(t, c.LastError, "given up 24h after the event: 127.0.0.1:")
	require.Contains(t, c.LastError, "503 Service Unavailable")
	time.Sleep(50 * time.Millisecond)
	require.Len(t, rc.requests(), 2)
}

// TestStopCutsAnAttemptOffAndTheNextStartSendsIt: an attempt in flight when Stop runs out of
// time is not recorded; the same replica's next start takes the delivery back at once.
func TestStopCutsAnAttemptOffAndTheNextStartSendsIt(t *testing.T) {
	var hang atomic.Bool
	hang.Store(true)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			<-r.Context().Done()
		}
	})
	st := memstore.New()
	e := start(t, st, func(c *notify.Config) { c.Timeout = time.Minute }, hook("ops", rc, notify.FormatJSON))
	enqueue(t, st, failedEvent(), "ops")
	rc.waitFor(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.Error(t, e.svc.Stop(ctx), "the attempt in flight was cut off")
	require.Equal(t, 1, countsOf(t, st, "ops").Pending, "not recorded: still pending, never attempted as far as the store knows")

	hang.Store(false)
	start(t, st, func(c *notify.Config) { c.Poll = time.Hour }, hook("ops", rc, notify.FormatJSON)) // the same owner: no wait for the lease
	rc.waitFor(t, 2)
	waitCounts(t, st, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == 1 })
}

// TestOneReplicaDeliversEachEventOnPostgres: two services (two replicas), one PostgreSQL:
// every event is delivered exactly once.
func TestOneReplicaDeliversEachEventOnPostgres(t *testing.T) {
	dsn := pg.NewDatabase(t)
	open := func() core.Store {
		s, err := sqlstore.OpenPostgres(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	var (
		mu  sync.Mutex
		per = map[string]int{}
	)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		per[r.Header.Get("X-Credsync-Event-Id")]++
		mu.Unlock()
	})
	const events = 40
	for i := 0; i < events; i++ {
		enqueue(t, a, failedEvent(), "ops")
	}
	fast := func(c *notify.Config) { c.Poll = 2 * time.Millisecond; c.Batch = 2 }
	start(t, a, func(c *notify.Config) { fast(c); c.Owner = "replica-a" }, hook("ops", rc, notify.FormatJSON))
	start(t, b, func(c *notify.Config) { fast(c); c.Owner = "replica-b" }, hook("ops", rc, notify.FormatJSON))
	waitCounts(t, a, "ops", func(c core.DeliveryCounts) bool { return c.Delivered == events })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, per, events)
	for id, n := range per {
		require.Equal(t, 1, n, "%s delivered %d times", id, n)
	}
}
