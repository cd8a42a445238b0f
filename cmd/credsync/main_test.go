package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/internal/golden"
)

func TestHelpListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"--help"}, &out, &errb))
	for _, c := range []string{"serve", "validate", "demo", "--once", "--config"} {
		require.Contains(t, out.String(), c)
	}
	require.Equal(t, exitUsage, run(nil, &out, &errb))
	require.Equal(t, exitUsage, run([]string{"frobnicate"}, &out, &errb))
	require.Contains(t, errb.String(), `unknown command "frobnicate"`)
	errb.Reset()
	require.Equal(t, exitOK, run([]string{"serve", "--help"}, &out, &errb))
	require.Contains(t, errb.String(), "-shutdown-grace")
	require.Equal(t, exitUsage, run([]string{"serve"}, &out, &errb), "serve without --config")
	require.Equal(t, exitUsage, run([]string{"validate", "--config", "x", "extra"}, &out, &errb))
}

const validConfig = `server:
  api_tokens:
    - name: job
      token: ${CREDSYNC_TEST_API_TOKEN}
platforms:
  rivergen:
    vendor: rivergen
    base_url: https://api.rivergen.com
    token: rg
sources:
  pg:
    targets:
      - platform: rivergen
        data_source_id: 1
`

func TestValidate(t *testing.T) {
	t.Setenv("CREDSYNC_TEST_API_TOKEN", "0123456789abcdef0123")
	t.Setenv("CREDSYNC_ENCRYPTION_KEY", newKey(32)) // the default store is a durable SQLite file
	t.Setenv("CREDSYNC_ENCRYPTION_OLD_KEYS", "")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(validConfig), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"validate", "--config", good}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "is valid: 1 platform(s), 1 source(s)")
	require.Contains(t, out.String(), "rivergen/0")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(validConfig, "data_source_id", "datasource_id", 1)), 0o600))
	errb.Reset()
	require.Equal(t, exitConfig, run([]string{"validate", "--config", bad}, &out, &errb))
	require.Contains(t, errb.String(), "line 14")
	require.NotContains(t, errb.String(), "0123456789abcdef0123")
}

func TestDemoOnceExitsZero(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--once", "--listen", "127.0.0.1:0", "--log-file", filepath.Join(t.TempDir(), "log")}, &out, &errb)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "SOURCE")
}

func TestServeRefusesDurableStoreWithoutKey(t *testing.T) {
	t.Setenv("CREDSYNC_TEST_API_TOKEN", "0123456789abcdef0123")
	t.Setenv("CREDSYNC_ENCRYPTION_KEY", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	cfg := strings.Replace(validConfig, "platforms:", "store:\n  driver: sqlite\n  dsn: "+filepath.Join(dir, "c.db")+"\nplatforms:", 1)
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, exitConfig, run([]string{"serve", "--config", path}, &out, &errb), "an invalid config: exit 3, as validate")
	require.Contains(t, errb.String(), "CREDSYNC_ENCRYPTION_KEY")
	require.Contains(t, errb.String(), "--allow-no-encryption-key")
}

// TestReadmeShowsTheRealHelp keeps README's CLI section equal to credsync --help.
func TestReadmeShowsTheRealHelp(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(golden.Root(t), "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), usageText(), "README's CLI block is not credsync --help: paste the new help into it")
}

// TestBinaryLinksNoTestCode: the shipped binary imports neither the testing package nor the
// golden-file helper (which registers a global -update flag). The fakes the demo runs record
// requests through internal/httprec instead.
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/credsync/credsync/cmd/credsync").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, pkg := range strings.Fields(string(out)) {
		require.NotEqual(t, "testing", pkg, "the binary links the testing package")
		require.NotEqual(t, "github.com/credsync/credsync/internal/golden", pkg, "the binary links the golden-file helper")
	}
}
