package golden_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/golden"
)

// TestReadmeMatrixCoversEveryGoldenFile keeps the README's vendor × credential matrix honest:
// every adapter golden file is linked from it, and every link in it points at a file.
func TestReadmeMatrixCoversEveryGoldenFile(t *testing.T) {
	root := golden.Root(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]bool{}
	for _, m := range regexp.MustCompile(`\]\((testdata/[^)\s]+)\)`).FindAllStringSubmatch(string(readme), -1) {
		links[m[1]] = true
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil {
			t.Errorf("README links %s, which does not exist", m[1])
		}
	}
	for _, vendor := range []string{"felt", "databrain", "rivergen"} {
		files, err := filepath.Glob(filepath.Join(root, "testdata", vendor, "*.golden"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no golden files for %s", vendor)
		}
		for _, f := range files {
			rel := "testdata/" + vendor + "/" + filepath.Base(f)
			if !links[rel] {
				t.Errorf("%s is not linked from the README matrix", rel)
			}
		}
	}
	if !strings.Contains(string(readme), "make test") || !strings.Contains(string(readme), "make demo") {
		t.Error("README must name make demo and make test")
	}
}
