package api

import (
	"context"
	"net/http"
	"time"
)

// headKey marks, in a request's context, a HEAD request that is being served as a GET.
type headKey struct{}

// headAsGet answers HEAD on every GET route as GET would, without the body (RFC 9110 9.3.2):
// load balancers and probes often check /healthz and /readyz with HEAD. echo routes only the
// methods a route was registered with, so HEAD is served as a GET of a copy of the request and
// whatever the handler writes as the body is dropped. A route with no GET still answers 405.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		g := r.WithContext(context.WithValue(r.Context(), headKey{}, true))
		g.Method = http.MethodGet
		next.ServeHTTP(headWriter{w}, g)
	})
}

// requestMethod is the method the client sent: HEAD for a HEAD served as GET.
func requestMethod(r *http.Request) string {
	if head, _ := r.Context().Value(headKey{}).(bool); head {
		return http.MethodHead
	}
	return r.Method
}

// headWriter sends the status and headers of an answer and drops its body.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// millis is d in milliseconds with microsecond precision: the request log's took_ms.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
