package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/internal/golden"
)

// TestReadmeDocumentsEveryConfigKey checks the README's configuration reference against the
// config structs: every key credsync reads appears in it as "key:".
func TestReadmeDocumentsEveryConfigKey(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(golden.Root(t), "README.md"))
	require.NoError(t, err)
	start := strings.Index(string(readme), "## Configuration")
	require.GreaterOrEqual(t, start, 0, "README has no Configuration section")
	section := string(readme)[start:]
	if end := strings.Index(section[1:], "\n## "); end > 0 {
		section = section[:end+1]
	}
	for _, key := range yamlKeys(reflect.TypeOf(config.File{})) {
		require.True(t, strings.Contains(section, key+":"), "README's Configuration section does not document %q", key)
	}
}

func yamlKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeOf(config.File{}).PkgPath() {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		keys = append(keys, yamlKeys(f.Type)...)
	}
	return keys
}
