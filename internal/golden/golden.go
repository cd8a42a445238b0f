// Package golden compares test output with files under the module's testdata/ directory and
// rewrites them when tests run with -update (go test ./... -update). It imports testing and
// registers a flag, so only tests may import it; the recording of HTTP requests the fakes do
// (also in the shipped binary, for the demo) is internal/httprec.
package golden

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/credsync/credsync/internal/httprec"
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

// Request is one recorded HTTP request (internal/httprec, kept here for the tests' sake).
type Request = httprec.Request

// Record copies what a handler received; call it with the body already read.
func Record(r *http.Request, body []byte) Request { return httprec.Record(r, body) }

// Format renders a request canonically (see httprec.Format).
func Format(r Request) []byte { return httprec.Format(r) }

// CanonicalJSON re-indents a JSON document with sorted keys (see httprec.CanonicalJSON).
func CanonicalJSON(body []byte) []byte { return httprec.CanonicalJSON(body) }
