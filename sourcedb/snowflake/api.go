package snowflake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb"
)

// The SQL API client: one statement per request, signed by a fresh JWT, retried on 429 and 5xx
// unavailability, polled while Snowflake answers 202. Every error is a *safeError built from
// text written here plus the server's "message" field, scrubbed of every key and token of the
// call; no *url.Error, *json.SyntaxError or body is wrapped or quoted.

// tuning holds the timings of the client; tests shorten them.
type tuning struct {
	now          func() time.Time
	attempts     int           // requests per statement while Snowflake is unavailable (429, 502, 503, 504, no answer)
	backoff      time.Duration // first wait between those; doubled each time
	maxBackoff   time.Duration // cap of a wait (also of Retry-After)
	pollInterval time.Duration // first wait between polls of a statement answered 202; doubled up to maxBackoff
	maxPolls     int
}

func defaultTuning() *tuning {
	return &tuning{now: time.Now, attempts: 4, backoff: 500 * time.Millisecond, maxBackoff: 5 * time.Second,
		pollInterval: 250 * time.Millisecond, maxPolls: 60}
}

// maxBody bounds what is read of an answer. Our statements return a few dozen rows at most.
const maxBody = 1 << 20

// session is who runs a statement: a user, the key it signs its tokens with, and (for the
// admin) the role and warehouse of its statements.
type session struct {
	user            string
	key             *keyPair
	role, warehouse string
}

// resultSet is a statement's answer: its columns' names and its rows (SQL NULL as nil).
type resultSet struct {
	columns []string
	rows    [][]*string
}

// answer is what the SQL API answers, whatever the status.
type answer struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	SQLState          string `json:"sqlState"`
	StatementHandle   string `json:"statementHandle"`
	ResultSetMetaData *struct {
		RowType []struct {
			Name string `json:"name"`
		} `json:"rowType"`
	} `json:"resultSetMetaData"`
	Data [][]any `json:"data"`
}

// exec runs stmt as s and returns its result. what names the statement in errors ("SELECT 1",
// "DESC USER", ...); the statement's text is never quoted.
func (d *DB) exec(ctx context.Context, s session, stmt, what string) (*resultSet, error) {
	secrets := append(append([]string(nil), d.admin.key.secrets...), s.key.secrets...)
	fail := func(kinds []error, format string, args ...any) error {
		msg := fmt.Sprintf("%s as %q: ", what, s.user) + fmt.Sprintf(format, args...)
		return &safeError{msg: core.NewScrubber(secrets...).String(msg), kinds: kinds}
	}
	body := statementBody{Statement: stmt, Timeout: statementTimeout, Role: s.role, Warehouse: s.warehouse}
	t := d.tune
	handle := "" // set once Snowflake answered 202: then poll it
	unavailable, polls := 0, 0
	wait := t.backoff
	pollWait := t.pollInterval
	for {
		if err := ctx.Err(); err != nil {
			return nil, fail([]error{err}, "stopped: %s", ctxText(err))
		}
		token, err := signJWT(s.key.key, makeClaims(d.account, s.user, s.key.fp, t.now()))
		if err != nil {
			return nil, fail(nil, "%s", err.Error())
		}
		secrets = append(secrets, token)
		var req *http.Request
		if handle == "" {
			req, err = newStatementRequest(ctx, d.endpoint, body, token)
		} else {
			req, err = newStatusRequest(ctx, d.endpoint, handle, token)
		}
		if err != nil {
			return nil, fail(nil, "%s", err.Error())
		}
		resp, err := d.client.Do(req)
		var status int
		var raw []byte
		var retryAfter time.Duration
		if err == nil {
			status = resp.StatusCode
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
			raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
			_ = resp.Body.Close()
			if err == nil && len(raw) > maxBody {
				return nil, fail(nil, "Snowflake's answer (HTTP %d) is larger than %d bytes", status, maxBody)
			}
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fail([]error{cerr}, "stopped: %s", ctxText(cerr))
			}
			why := transportText(err)
			unavailable++
			if unavailable >= t.attempts {
				return nil, fail([]error{ErrUnavailable}, "no answer from Snowflake at %s after %d attempts (%s): check the endpoint and the network, then try again", d.endpoint, unavailable, why)
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, fail([]error{err}, "stopped while waiting to retry: %s", ctxText(err))
			}
			wait = min(2*wait, t.maxBackoff)
			continue
		}
		var a answer
		jsonErr := json.Unmarshal(raw, &a)
		switch {
		case status == http.StatusOK:
			if jsonErr != nil {
				return nil, fail(nil, "Snowflake answered HTTP 200 with a body that is not the SQL API's JSON (is the endpoint a Snowflake account URL?)")
			}
			return a.result(), nil
		case status == http.StatusAccepted:
			if jsonErr != nil || !validHandle(a.StatementHandle) {
				return nil, fail(nil, "Snowflake answered HTTP 202 (still running) without a usable statement handle")
			}
			polls++
			if polls > t.maxPolls {
				return nil, fail([]error{ErrUnavailable}, "the statement was still running after %d polls: try again later", t.maxPolls)
			}
			handle = a.StatementHandle
			if err := sleep(ctx, pollWait); err != nil {
				return nil, fail([]error{err}, "stopped while the statement was running: %s", ctxText(err))
			}
			pollWait = min(2*pollWait, t.maxBackoff)
			continue
		case status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
			status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
			unavailable++
			if unavailable >= t.attempts {
				return nil, fail([]error{ErrUnavailable}, "Snowflake answered HTTP %d %d times in a row: it is unavailable or throttling; try again later", status, unavailable)
			}
			w := wait
			if retryAfter > 0 {
				w = min(retryAfter, t.maxBackoff)
			}
			if err := sleep(ctx, w); err != nil {
				return nil, fail([]error{err}, "stopped while waiting to retry: %s", ctxText(err))
			}
			wait = min(2*wait, t.maxBackoff)
			continue
		}
		// An error. Its code and message, if the body is the SQL API's JSON.
		code, msg := "", ""
		if jsonErr == nil {
			code, msg = cleanCode(a.Code), cleanMessage(a.Message)
		}
		detail := fmt.Sprintf("HTTP %d", status)
		if code != "" {
			detail += ", code " + code
		}
		if isSyntaxError(code, msg) {
			msg = "a syntax error; its message is not shown, as it may quote the statement"
		}
		if msg != "" {
			detail += ": " + msg
		}
		switch {
		case status == http.StatusUnauthorized || strings.HasPrefix(code, "390"):
			return nil, fail([]error{sourcedb.ErrAuth}, "Snowflake refused the key (%s): check that the key's public half (fingerprint %s) is set on user %q (DESC USER shows RSA_PUBLIC_KEY_FP and RSA_PUBLIC_KEY_2_FP), that the account %q is right, and that this host's clock is correct",
				detail, s.key.fp, s.user, d.account)
		case code == "002003":
			return nil, fail([]error{sourcedb.ErrNoUser}, "%s: user %q does not exist, or the admin's role may not see it%s", detail, d.user, caseHint(d.user))
		case code == "003001":
			return nil, fail(nil, "%s: the admin's role may not alter user %q: use a role such as SECURITYADMIN (role= in the admin DSN) or grant OWNERSHIP on the user to the admin's role", detail, d.user)
		case status == http.StatusForbidden:
			return nil, fail(nil, "%s: Snowflake forbids the request (a network policy, or a role the user may not use?)", detail)
		}
		return nil, fail(nil, "Snowflake refused the statement (%s)", detail)
	}
}

// result converts the rows: the SQL API sends every value as a JSON string, SQL NULL as null.
func (a *answer) result() *resultSet {
	rs := &resultSet{}
	if a.ResultSetMetaData != nil {
		for _, c := range a.ResultSetMetaData.RowType {
			rs.columns = append(rs.columns, c.Name)
		}
	}
	for _, row := range a.Data {
		out := make([]*string, len(row))
		for i, v := range row {
			switch v := v.(type) {
			case nil:
			case string:
				out[i] = &v
			default:
				s := fmt.Sprint(v)
				out[i] = &s
			}
		}
		rs.rows = append(rs.rows, out)
	}
	return rs
}

// column returns the index of the column named name (case-insensitive), or -1.
func (rs *resultSet) column(name string) int {
	for i, c := range rs.columns {
		if strings.EqualFold(c, name) {
			return i
		}
	}
	return -1
}

// isSyntaxError says whether an error is a SQL compilation error whose message may quote the
// statement ("syntax error line 1 at position 10 unexpected '...'").
func isSyntaxError(code, msg string) bool {
	return code == "001003" || strings.Contains(strings.ToLower(msg), "syntax error")
}

// caseHint is said of a user not found whose name is not all upper case.
func caseHint(user string) string {
	if strings.ToUpper(user) != user {
		return fmt.Sprintf(" (names are matched exactly, and Snowflake stores a name created without quotes upper-cased: is it %q?)", strings.ToUpper(user))
	}
	return ""
}

// cleanCode keeps a code that looks like one (digits, at most 10).
func cleanCode(c string) string {
	if len(c) == 0 || len(c) > 10 {
		return ""
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return ""
		}
	}
	return c
}

// maxMessage bounds how much of a server's message an error quotes.
const maxMessage = 300

// cleanMessage makes a server's message fit in one log line: control characters become spaces,
// invalid UTF-8 is dropped, and it is cut to maxMessage bytes. (It is scrubbed later.)
func cleanMessage(m string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(m, "") {
		if unicode.IsControl(r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxMessage {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// transportText says why a request got no answer, without the error's own text (which holds
// the URL and could hold anything a proxy said).
func transportText(err error) string {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &de):
		return "the host name does not resolve"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, &oe) && oe.Op == "dial":
		return "the connection was refused or could not be made"
	case strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "tls:"):
		return "the TLS handshake failed"
	}
	return "the connection failed"
}

func ctxText(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the deadline passed"
	}
	return "canceled"
}

// parseRetryAfter reads a Retry-After of seconds (the HTTP-date form is ignored).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// safeError is an error whose text has been scrubbed. It matches its kinds with errors.Is but
// holds nothing else: no HTTP or JSON error it came from.
type safeError struct {
	msg   string
	kinds []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.kinds }

// wrapf prefixes a safeError's text, keeping its kinds: "sourcedb: snowflake: <what>: <why>".
func wrapf(err error, format string, args ...any) error {
	var se *safeError
	if !errors.As(err, &se) {
		// Only our own errors reach here; anything else is reported without its text.
		se = &safeError{msg: "unexpected error"}
	}
	return &safeError{msg: "sourcedb: " + Engine + ": " + fmt.Sprintf(format, args...) + ": " + se.msg, kinds: se.kinds}
}
