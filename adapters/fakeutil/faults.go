package fakeutil

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ready-made faults for Base.SetFault. Each one makes the fake vendor misbehave the way real
// vendors and networks do; the fault-injection suite (package faults) drives the gateway against
// them. A fault answers the request itself and returns true; Times and When narrow a fault to
// some requests, the others reaching the fake as usual.

// Times applies f to the first n requests that reach it (n <= 0: to every request). Later
// requests reach the fake as usual.
func Times(n int, f Fault) Fault {
	if n <= 0 {
		return f
	}
	var mu sync.Mutex
	left := n
	return func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		if left == 0 {
			mu.Unlock()
			return false
		}
		left--
		mu.Unlock()
		return f(w, r)
	}
}

// When applies f only to the requests match accepts; the others reach the fake as usual.
func When(match func(*http.Request) bool, f Fault) Fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		return match(r) && f(w, r)
	}
}

// Method matches requests by HTTP method, for When.
func Method(m string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == m }
}

// Status answers the first n requests (n <= 0: every request) with code and body, plus a
// Retry-After header when retryAfter is not empty (seconds such as "1", or an HTTP date: see
// RetryAfterDate). The Content-Type is application/json when body is valid JSON, else text/plain.
func Status(code int, retryAfter, body string, n int) Fault {
	ct := "text/plain; charset=utf-8"
	if json.Valid([]byte(body)) {
		ct = "application/json"
	}
	return Times(n, func(w http.ResponseWriter, _ *http.Request) bool {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
		return true
	})
}

// RetryAfterDate is a Retry-After value d from now, as an HTTP date. The format has whole
// seconds, so the wait it asks for is between d-1s and d.
func RetryAfterDate(d time.Duration) string {
	return time.Now().Add(d).UTC().Format(http.TimeFormat)
}

// Hang accepts the request and never answers: it returns only once the client has gone away
// (its timeout) or the server closes the connection.
func Hang() Fault { return HangUntil(nil) }

// HangUntil is Hang that also gives up when release is closed (for servers such as
// httptest.Server whose Close waits for running handlers). A nil release never fires.
func HangUntil(release <-chan struct{}) Fault {
	return func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}
}

// Reset takes the connection over, writes a 200 status line, headers announcing a 4 KiB JSON body
// and the first bytes of it, then resets the connection (closes it without lingering), so the
// client fails mid-body. It needs an HTTP/1 server (http.Hijacker); elsewhere it answers 500.
func Reset() Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "fakeutil.Reset needs an HTTP/1 connection", http.StatusInternalServerError)
			return true
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return true
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n" +
			`{"success": true, "data": {"data_source_id": 1, "credentials_upd`)
		_ = buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST instead of FIN
		}
		_ = conn.Close()
		return true
	}
}

// Trickle answers 200 with a JSON body that arrives bytesPerSecond bytes a second and never ends:
// it stops only when the client goes away or the server closes the connection. A client with a
// timeout shorter than the body gives up mid-body.
func Trickle(bytesPerSecond int) Fault {
	if bytesPerSecond < 1 {
		bytesPerSecond = 1
	}
	tick, chunk := 50*time.Millisecond, bytesPerSecond/20
	if chunk < 1 {
		tick, chunk = time.Second/time.Duration(bytesPerSecond), 1
	}
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		next := []byte(`{"data":"`)[:1]
		rest := append([]byte(`{"data":"`)[1:], bytes.Repeat([]byte("x"), chunk)...)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			if _, err := w.Write(next); err != nil {
				return true
			}
			if flusher != nil {
				flusher.Flush()
			}
			// After the opening bytes, every chunk is padding inside the string.
			if len(rest) >= chunk {
				next, rest = rest[:chunk], rest[chunk:]
			} else {
				next = bytes.Repeat([]byte("x"), chunk)
			}
			select {
			case <-r.Context().Done():
				return true
			case <-t.C:
			}
		}
	}
}

// Huge answers status with a JSON error body of about n bytes ({"errors":[{"title":"xxx..."}]}),
// streamed so that the fake does not hold it in memory.
func Huge(status int, n int64) Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		const head, tail = `{"errors":[{"title":"`, `"}]}`
		if _, err := w.Write([]byte(head)); err != nil {
			return true
		}
		block := bytes.Repeat([]byte("x"), 32<<10)
		for left := n - int64(len(head)+len(tail)); left > 0; {
			b := block
			if int64(len(b)) > left {
				b = b[:left]
			}
			if _, err := w.Write(b); err != nil {
				return true
			}
			left -= int64(len(b))
		}
		_, _ = w.Write([]byte(tail))
		return true
	}
}

// NonJSON answers status with the HTML error page a proxy in front of the vendor would send.
func NonJSON(status int) Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		text := http.StatusText(status)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html>\r\n<head><title>" + strconv.Itoa(status) + " " + text + "</title></head>\r\n<body>\r\n<center><h1>" +
			strconv.Itoa(status) + " " + text + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
		return true
	}
}

// Redirect answers 307 Temporary Redirect (which keeps method and body) to the same path and
// query on toURL. A client that followed it would send the request, bearer token included, there.
func Redirect(toURL string) Fault {
	base := strings.TrimRight(toURL, "/")
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Location", base+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return true
	}
}
