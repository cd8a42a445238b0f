// Package golden compares test output with files under the module's testdata/ directory and
// rewrites them when tests run with -update (go test ./... -update). It also renders a recorded
// HTTP request in the canonical form the golden files use.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// update is the standard library's golden-file habit: go test ./... -update rewrites the files.
// Every test package of this module imports golden (directly or through a helper), so the flag
// is known to every test binary that `go test ./... -update` starts.
var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Updating reports whether the test run rewrites golden files.
func Updating() bool { return *update }

// Root returns the module root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("golden: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("golden: no go.mod above the test directory")
		}
		dir = parent
	}
}

// Assert compares got with testdata/<name> under the module root, or rewrites it with -update.
func Assert(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join(Root(t), "testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run go test ./... -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("golden: testdata/%s differs (run go test ./... -update and review the diff)\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// Request is one recorded HTTP request.
type Request struct {
	Method string
	Path   string // with query, as received
	Header http.Header
	Body   []byte
}

// Record copies what a handler received; call it with the body already read.
func Record(r *http.Request, body []byte) Request {
	return Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: append([]byte(nil), body...)}
}

// skipHeaders are left out of golden files: the token (shown as a placeholder) and what Go's
// transport adds on its own.
var skipHeaders = map[string]bool{"Authorization": true, "Accept-Encoding": true, "Content-Length": true}

// Format renders a request canonically: the request line, the headers sorted (the bearer token
// replaced by <token>), a blank line, and the body as indented JSON with sorted keys.
func Format(r Request) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.Path)
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		fmt.Fprintf(&b, "Authorization: %s <token>\n", scheme)
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !skipHeaders[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if len(r.Body) > 0 {
		b.Write(CanonicalJSON(r.Body))
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// CanonicalJSON re-indents a JSON document with sorted keys; a body that is not JSON is returned
// as it is.
func CanonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return body
	}
	return out
}
