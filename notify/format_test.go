package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
)

func TestSignatureKnownVector(t *testing.T) {
	secret := []byte("whsec_0123456789abcdef")
	body := []byte(`{"id":"evt_1","type":"rotation.failed"}`)
	at := time.Unix(1700000000, 999_000_000) // whole seconds are signed

	// Computed apart from Sign: printf '%s' '1700000000.{"id":"evt_1","type":"rotation.failed"}' |
	// openssl dgst -sha256 -hmac 'whsec_0123456789abcdef' -hex
	const want = "t=1700000000,v1=7144d95dd10d9b273caa281b9ffcf74bd5e33206e3908180d1fbb9e4d1768d52"
	require.Equal(t, want, Sign(secret, at, body))

	// And again with crypto/hmac over "<t>.<body>", the way a receiver checks it.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1700000000." + string(body)))
	require.Equal(t, "t=1700000000,v1="+hex.EncodeToString(mac.Sum(nil)), Sign(secret, at, body))

	require.NotEqual(t, want, Sign(secret, at, append(body, ' ')), "the body is signed")
	require.NotEqual(t, want, Sign(secret, at.Add(time.Second), body), "the time is signed")
	require.NotEqual(t, want, Sign([]byte("other"), at, body), "the secret keys it")
}

func partialEvent() core.Event {
	return core.Event{ID: "evt_0190a", Type: core.EventRotationPartial, Time: time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC),
		Source: "warehouse-pg", RotationID: "rot_42",
		Targets: []core.EventTarget{
			{Name: "felt/0", Platform: "felt", Status: "failed", Error: &core.EventError{Code: "rejected", Message: "HTTP 400: bad <password> & more"}},
			{Name: "databrain/1", Platform: "databrain", Status: "succeeded"},
		}}
}

func TestPayload(t *testing.T) {
	b, err := json.Marshal(PayloadOf(partialEvent()))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"evt_0190a","type":"rotation.partial","time":"2026-03-14T15:09:26.535897Z","source":"warehouse-pg",
		"rotation_id":"rot_42","targets":[
			{"name":"felt/0","platform":"felt","status":"failed","error":{"code":"rejected","message":"HTTP 400: bad <password> & more"}},
			{"name":"databrain/1","platform":"databrain","status":"succeeded"}]}`, string(b))

	b, err = json.Marshal(PayloadOf(core.Event{ID: "evt_1", Type: core.EventPauseStarted, Time: time.Unix(0, 0), Detail: "every target: maintenance"}))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"evt_1","type":"pause.started","time":"1970-01-01T00:00:00Z","source":"","rotation_id":"","targets":[],
		"detail":"every target: maintenance"}`, string(b), "every documented key is there, whatever the event")
}

func TestSlackText(t *testing.T) {
	require.Equal(t, "credsync: rotation partly failed (source warehouse-pg, rotation rot_42). 1 target has not succeeded: "+
		"felt/0 (felt) failed: rejected: HTTP 400: bad &lt;password&gt; &amp; more", SlackText(partialEvent()),
		"Slack's control characters are escaped: no link, no mention")

	ok := partialEvent()
	ok.Type, ok.Targets = core.EventRotationSucceeded, ok.Targets[1:]
	require.Equal(t, "credsync: rotation succeeded (source warehouse-pg, rotation rot_42). 1 target is done", SlackText(ok))

	retired := core.Event{ID: "evt_2", Type: core.EventCredentialRetired, Source: "wh", RotationID: "rot_1", Detail: "the previous user a no longer logs in"}
	require.Equal(t, "credsync: previous credential retired (source wh, rotation rot_1): the previous user a no longer logs in", SlackText(retired))
	require.Equal(t, "credsync: pause started: maintenance", SlackText(core.Event{Type: core.EventPauseStarted, Detail: "maintenance"}))

	many := partialEvent()
	many.Type = core.EventRotationFailed
	many.Targets = nil
	for i := 0; i < 25; i++ {
		many.Targets = append(many.Targets, core.EventTarget{Name: fmt.Sprintf("t%d", i), Platform: "felt", Status: "failed",
			Error: &core.EventError{Code: "network", Message: strings.Repeat("x", 1000)}})
	}
	text := SlackText(many)
	require.Contains(t, text, "25 targets have not succeeded")
	require.Contains(t, text, "; and 15 more")
	require.NotContains(t, text, "t10 (felt)", "ten targets are listed")
	require.LessOrEqual(t, len(text), slackText+3)
	require.Contains(t, text, strings.Repeat("x", slackMessage)+"...", "each message is cut")
	require.NotContains(t, text, strings.Repeat("x", slackMessage+1))
}

func TestBackoffSchedule(t *testing.T) {
	s := schedule{base: 2 * time.Second, max: 30 * time.Minute, maxAge: 24 * time.Hour, jitter: func(d time.Duration) time.Duration { return d }}
	var got []time.Duration
	for n := 1; n <= 12; n++ {
		got = append(got, s.backoff(n))
	}
	require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second, 1024 * time.Second, 30 * time.Minute, 30 * time.Minute}, got)
	require.Equal(t, 30*time.Minute, s.backoff(1000), "no overflow")

	ev := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	next, ok := s.retryAt(ev, 1, ev.Add(time.Second), 0)
	require.True(t, ok)
	require.Equal(t, ev.Add(3*time.Second), next, "2s after the failed attempt")
	next, ok = s.retryAt(ev, 1, ev.Add(time.Second), time.Minute)
	require.True(t, ok)
	require.Equal(t, ev.Add(61*time.Second), next, "Retry-After asks for longer: honoured")
	next, ok = s.retryAt(ev, 3, ev.Add(time.Second), time.Second)
	require.True(t, ok)
	require.Equal(t, ev.Add(9*time.Second), next, "a shorter Retry-After does not shorten the backoff")

	// The 24-hour cut: the last attempt is at the cut, then it is given up.
	next, ok = s.retryAt(ev, 40, ev.Add(24*time.Hour-time.Minute), 0)
	require.True(t, ok)
	require.Equal(t, ev.Add(24*time.Hour), next, "never scheduled past the cut")
	_, ok = s.retryAt(ev, 41, ev.Add(24*time.Hour), 0)
	require.False(t, ok, "failed at the cut: given up")
	_, ok = s.retryAt(ev, 1, ev.Add(25*time.Hour), 0)
	require.False(t, ok)

	// Over a day of failures the receiver is tried about sixty times, never more often than
	// the backoff.
	at, attempts := ev, 0
	for n := 1; ; n++ {
		attempts++
		next, ok := s.retryAt(ev, n, at, 0)
		if !ok {
			break
		}
		require.True(t, next.After(at))
		at = next
	}
	require.Equal(t, ev.Add(24*time.Hour), at, "the last attempt is at the cut")
	require.InDelta(t, 58, attempts, 3)

	// Default jitter: in [d/2, d].
	s.jitter = nil
	for i := 0; i < 200; i++ {
		d := s.delay(3)
		require.GreaterOrEqual(t, d, 4*time.Second)
		require.LessOrEqual(t, d, 8*time.Second)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, 120*time.Second, parseRetryAfter("120", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("-5", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	require.Equal(t, 48*time.Hour, parseRetryAfter("999999999999", now), "bounded")
	require.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
}

func TestCheckURL(t *testing.T) {
	host, err := CheckURL("https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX?x=1")
	require.NoError(t, err)
	require.Equal(t, "hooks.example.com", host)
	host, err = CheckURL("http://127.0.0.1:9000/hook")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9000", host)
	for _, bad := range []string{"", "hooks.example.com/x", "ftp://h/x", "https:///x", "https://user:TOKEN-SECRET-1234@h/x", "://x"} {
		_, err := CheckURL(bad)
		require.Error(t, err, bad)
		if bad != "" {
			require.NotContains(t, err.Error(), "TOKEN-SECRET", "an error never quotes the URL")
		}
	}
}
