package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/credsync/credsync/core"
)

// integration sends one event to one receiver in its format (Alertmanager's notifier
// contract): nil when delivered, else the error and whether another attempt may help.
type integration interface {
	Notify(ctx context.Context, ev core.Event) (retry bool, err error)
}

// Headers of every webhook.
const (
	HeaderEventID   = "X-Credsync-Event-Id"
	HeaderSignature = "X-Credsync-Signature"
	UserAgent       = "credsync"
)

// maxAnswer bounds how much of a receiver's answer is read (the rest is dropped with the
// connection); answerSnippet how much of it an error quotes.
const (
	maxAnswer     = 64 << 10
	answerSnippet = 200
)

// NewClient is the bounded HTTP client webhooks are sent with: every attempt cut at timeout,
// no redirect followed (a 3xx is a final answer), the proxy from the environment.
func NewClient(timeout time.Duration) *http.Client {
	step := min(timeout, 10*time.Second)
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            (&net.Dialer{Timeout: step, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:    step,
			ResponseHeaderTimeout:  timeout,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Sign is the X-Credsync-Signature of body sent at t: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" keyed by the secret>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Payload is the JSON of an event as a json notification sends it: {"id", "type", "time",
// "source", "rotation_id", "targets": [{"name", "platform", "status", "error": {"code",
// "message"}}], "detail"}. source and rotation_id are "" for an event about neither, targets []
// for one about no target; detail is left out when empty.
type Payload struct {
	ID         string             `json:"id"`
	Type       string             `json:"type"`
	Time       time.Time          `json:"time"`
	Source     string             `json:"source"`
	RotationID string             `json:"rotation_id"`
	Targets    []core.EventTarget `json:"targets"`
	Detail     string             `json:"detail,omitempty"`
}

// PayloadOf is ev as a json notification sends it.
func PayloadOf(ev core.Event) Payload {
	p := Payload{ID: ev.ID, Type: ev.Type, Time: ev.Time.UTC(), Source: ev.Source, RotationID: ev.RotationID,
		Targets: ev.Targets, Detail: ev.Detail}
	if p.Targets == nil {
		p.Targets = []core.EventTarget{}
	}
	return p
}

// webhook is what both formats share: the POST, its headers, and reading the answer.
type webhook struct {
	name   string
	url    string
	host   string
	secret []byte
	client *http.Client
	now    func() time.Time
	scrub  *core.Scrubber // the URL's path and query (a token), the secret
}

func newWebhook(n Notification, host string, client *http.Client, now func() time.Time) *webhook {
	raw := n.URL.Reveal()
	// The host stays readable in errors ("cannot reach hooks.example.com"); what follows it may
	// be a token.
	secrets := []string{n.Secret.Reveal()}
	if u, err := url.Parse(raw); err == nil {
		secrets = append(secrets, u.Path, u.RawPath, u.RawQuery, u.EscapedPath())
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
		secrets = append(secrets, strings.Split(u.Path, "/")...)
	}
	keep := secrets[:0]
	for _, s := range secrets {
		if len(s) >= core.PieceLen { // shorter ones ("/", "hooks") are no token and would redact ordinary words
			keep = append(keep, s)
		}
	}
	return &webhook{name: n.Name, url: raw, host: host, secret: []byte(n.Secret.Reveal()), client: client, now: now,
		scrub: core.NewScrubber(keep...)}
}

// attemptError is why an attempt failed, for the log and the store: never the URL's path or
// query. RetryAfter is what a 429 or 503 asked for.
type attemptError struct {
	msg        string
	retryAfter time.Duration
}

func (e *attemptError) Error() string { return e.msg }

// retryAfter is the wait err asks for (0: none).
func retryAfter(err error) time.Duration {
	var ae *attemptError
	if errors.As(err, &ae) {
		return ae.retryAfter
	}
	return 0
}

// post sends body and classifies the answer: 2xx delivered; a network error, a timeout, 408,
// 429 or 5xx retried; anything else (another 4xx, a 3xx) final.
func (w *webhook) post(ctx context.Context, ev core.Event, body []byte, sign bool) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, &attemptError{msg: "cannot build the request to " + w.host}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEventID, ev.ID)
	if sign && len(w.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.secret, w.now(), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, &attemptError{msg: w.transportError(ctx, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return false, nil
	}
	msg := fmt.Sprintf("%s answered %d %s", w.host, code, http.StatusText(code))
	if snip := w.snippet(answer); snip != "" {
		msg += ": " + snip
	}
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), w.now())
		if ra > 0 {
			msg += fmt.Sprintf(" (Retry-After %s)", ra)
		}
		return true, &attemptError{msg: msg, retryAfter: ra}
	case code == http.StatusRequestTimeout || code >= 500:
		return true, &attemptError{msg: msg}
	case code >= 300 && code < 400:
		return false, &attemptError{msg: msg + ": redirects are not followed; configure the URL it redirects to"}
	default:
		return false, &attemptError{msg: msg + ": a 4xx other than 408 and 429 is final"}
	}
}

// transportError says why no answer came, naming only the host.
func (w *webhook) transportError(ctx context.Context, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error quotes the whole URL
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("%s did not answer in time (timeout)", w.host)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("the request to %s was canceled", w.host)
	}
	return fmt.Sprintf("cannot reach %s: %s", w.host, w.scrub.String(err.Error()))
}

// snippet is the start of a receiver's answer, on one line, scrubbed, bounded.
func (w *webhook) snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), 4*answerSnippet)]), "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	s = w.scrub.String(s)
	if len(s) > answerSnippet {
		s = strings.ToValidUTF8(s[:answerSnippet], "") + "..."
	}
	return s
}

// parseRetryAfter reads Retry-After: seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(48*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 48*time.Hour)
	}
	return 0
}

// jsonIntegration sends the event as JSON (Payload), signed when the notification has a secret.
type jsonIntegration struct{ w *webhook }

func (j jsonIntegration) Notify(ctx context.Context, ev core.Event) (bool, error) {
	body, err := json.Marshal(PayloadOf(ev))
	if err != nil {
		return false, &attemptError{msg: "cannot encode the event: " + err.Error()}
	}
	return j.w.post(ctx, ev, body, true)
}

// slackIntegration sends a Slack incoming-webhook message: {"text": SlackText(ev)}.
type slackIntegration struct{ w *webhook }

func (s slackIntegration) Notify(ctx context.Context, ev core.Event) (bool, error) {
	body, err := json.Marshal(map[string]string{"text": SlackText(ev)})
	if err != nil {
		return false, &attemptError{msg: "cannot encode the message: " + err.Error()}
	}
	return s.w.post(ctx, ev, body, false)
}

// Slack message bounds: targets listed, characters of each error message, of the whole text.
const (
	slackTargets = 10
	slackMessage = 200
	slackText    = 3000
)

// SlackText is an event as one readable Slack line: what happened, to which source and
// rotation, and the targets that did not succeed with their errors. Slack's control characters
// (& < >) are escaped, so nothing in it is read as a link or a mention.
func SlackText(ev core.Event) string {
	var b strings.Builder
	b.WriteString("credsync: ")
	b.WriteString(headline(ev))
	var ctx []string
	if ev.Source != "" {
		ctx = append(ctx, "source "+ev.Source)
	}
	if ev.RotationID != "" {
		ctx = append(ctx, "rotation "+ev.RotationID)
	}
	if len(ctx) > 0 {
		b.WriteString(" (" + strings.Join(ctx, ", ") + ")")
	}
	if ev.Detail != "" {
		b.WriteString(": " + ev.Detail)
	}
	var failing []core.EventTarget
	for _, t := range ev.Targets {
		if t.Status != string(core.TargetSucceeded) && t.Status != string(core.TargetSuperseded) {
			failing = append(failing, t)
		}
	}
	if len(failing) > 0 {
		fmt.Fprintf(&b, ". %d %s not succeeded: ", len(failing), plural(len(failing), "target has", "targets have"))
		for i, t := range failing {
			if i == slackTargets {
				fmt.Fprintf(&b, "; and %d more", len(failing)-slackTargets)
				break
			}
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s (%s) %s", t.Name, t.Platform, t.Status)
			if t.Error != nil {
				msg := t.Error.Message
				if len(msg) > slackMessage {
					msg = strings.ToValidUTF8(msg[:slackMessage], "") + "..."
				}
				fmt.Fprintf(&b, ": %s: %s", t.Error.Code, msg)
			}
		}
	} else if strings.HasPrefix(ev.Type, "rotation.") && len(ev.Targets) > 0 {
		fmt.Fprintf(&b, ". %d %s", len(ev.Targets), plural(len(ev.Targets), "target is done", "targets are done"))
	}
	text := b.String()
	if len(text) > slackText {
		text = strings.ToValidUTF8(text[:slackText], "") + "..."
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text)
}

func headline(ev core.Event) string {
	switch ev.Type {
	case core.EventRotationSucceeded:
		return "rotation succeeded"
	case core.EventRotationPartial:
		return "rotation partly failed"
	case core.EventRotationFailed:
		return "rotation failed"
	case core.EventRotationSuperseded:
		return "rotation superseded by a newer one"
	case core.EventTargetDrift:
		return "a target's credential stopped working (drift)"
	case core.EventTargetRecovered:
		return "a target's credential works again"
	case core.EventCredentialRetired:
		return "previous credential retired"
	case core.EventPauseStarted:
		return "pause started"
	case core.EventPauseEnded:
		return "pause ended"
	}
	return ev.Type
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
