package adapters_test

import (
	"go/build"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/credsync/credsync"

// The fake vendors (adapters/<vendor>/<vendor>fake) are each an independent reading of the
// vendor's document: none may import its adapter, nor any other adapter, directly or through
// another package of the module. Only the vendor-neutral adapters/fakeutil is theirs to share.
// Nor may they link package testing: the demo, in the shipped binary, runs them.
func TestFakesImportNoAdapter(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("*", "*fake"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"databrain/databrainfake", "felt/feltfake", "rivergen/rivergenfake"}
	var found []string
	for _, d := range dirs {
		found = append(found, filepath.ToSlash(d))
	}
	sort.Strings(found)
	for _, w := range want {
		if !contains(found, w) {
			t.Errorf("no fake package adapters/%s (found %v)", w, found)
		}
	}
	for _, d := range found {
		pkg := module + "/adapters/" + d
		for imp, via := range moduleImports(t, pkg) {
			switch {
			case imp == "testing":
				t.Errorf("%s imports testing (via %s): the shipped binary would link it", pkg, via)
			case strings.HasPrefix(imp, module+"/adapters") && imp != module+"/adapters/fakeutil" && !strings.HasPrefix(imp, pkg):
				t.Errorf("%s imports %s (via %s): a fake must not read the adapters' code", pkg, imp, via)
			}
		}
	}
}

// moduleImports returns every package pkg imports, directly or through the module's own
// packages (non-test files only), each with the module package that imports it.
func moduleImports(t *testing.T, pkg string) map[string]string {
	t.Helper()
	seen := map[string]string{}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		dir := filepath.Join("..", strings.TrimPrefix(p, module+"/"))
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if _, ok := seen[imp]; ok {
				continue
			}
			seen[imp] = p
			if strings.HasPrefix(imp, module+"/") {
				queue = append(queue, imp)
			}
		}
	}
	return seen
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
