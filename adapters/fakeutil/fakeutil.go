// Package fakeutil is what the fake vendor servers (adapters/felt/feltfake,
// adapters/databrain/databrainfake, adapters/rivergen/rivergenfake) share: bearer-token
// checking, a record of every request received (for golden files and "nothing was sent"
// assertions), and a fault hook that lets a test make the vendor misbehave. It holds nothing
// vendor-specific and imports no adapter, so that each fake stays its own reading of its vendor's
// document; like the fakes it links no testing code (the demo runs them in the shipped binary).
package fakeutil

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/credsync/credsync/internal/httprec"
)

// Fault handles a request instead of the fake when it returns true. Tests use it to inject
// 429s, 5xx, hangs and resets.
type Fault func(w http.ResponseWriter, r *http.Request) bool

// Base is embedded by each fake server.
type Base struct {
	token string

	mu       sync.Mutex
	requests []httprec.Request
	fault    Fault
}

// NewBase returns a base that accepts only the given bearer token.
func NewBase(token string) *Base { return &Base{token: token} }

// SetFault installs (or, with nil, removes) a fault hook.
func (b *Base) SetFault(f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fault = f
}

// Requests returns every request received so far, in order, bodies included.
func (b *Base) Requests() []httprec.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]httprec.Request(nil), b.requests...)
}

// Reset forgets the recorded requests.
func (b *Base) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests = nil
}

// Begin records the request, reads its body (at most 1 MiB) and runs the fault hook. It returns
// the body and false when the fault hook already answered.
func (b *Base) Begin(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	b.mu.Lock()
	b.requests = append(b.requests, httprec.Record(r, body))
	f := b.fault
	b.mu.Unlock()
	if f != nil && f(w, r) {
		return nil, false
	}
	return body, true
}

// Authorized reports whether the request carries the right bearer token (constant-time).
func (b *Base) Authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(b.token)) == 1
}

// WriteJSON writes v with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
