package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
)

// designExample is the config of DESIGN.md, on the in-memory store so that parsing opens nothing.
const designExample = `server:
  listen: 127.0.0.1:8080
  api_tokens:                 # who may call the gateway
    - name: rotation-job
      token: ${CREDSYNC_API_TOKEN}
store:
  driver: memory
platforms:
  felt:
    vendor: felt
    base_url: https://felt.com
    token: ${FELT_API_TOKEN}
  databrain:
    vendor: databrain
    base_url: https://api.usedatabrain.com
    token: ${DATABRAIN_SERVICE_TOKEN}
  rivergen:
    vendor: rivergen
    base_url: https://api.rivergen.com
    token: ${RIVERGEN_ACCESS_TOKEN}
    timeout: 5s
    max_attempts: 3
    max_concurrency: 2
sources:
  warehouse-pg:
    targets:
      - platform: felt
        source_id: src_pg
        connection_type: postgresql
      - platform: databrain
        datasource_type: postgres
        name: production-postgres
        fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}
      - platform: rivergen
        data_source_id: 1
`

var env = map[string]string{
	"CREDSYNC_API_TOKEN":      "api-token-0123456789abcdef",
	"FELT_API_TOKEN":          "felt-token",
	"DATABRAIN_SERVICE_TOKEN": "dbn_live_x",
	"RIVERGEN_ACCESS_TOKEN":   "rg-token",
}

func lookup(k string) (string, bool) { v, ok := env[k]; return v, ok }

func TestDesignExampleLoads(t *testing.T) {
	cfg, err := config.Parse([]byte(designExample), lookup)
	require.NoError(t, err)
	require.Len(t, cfg.Platforms, 3)
	require.Len(t, cfg.Sources, 1)
	src := cfg.Sources[0]
	require.Equal(t, "warehouse-pg", src.Name)
	var names []string
	for _, tg := range src.Targets {
		names = append(names, tg.Name)
		require.Contains(t, tg.Adapter.Accepts(), core.TypePassword, tg.Name)
	}
	require.Equal(t, []string{"felt/0", "production-postgres", "rivergen/2"}, names, "unnamed targets are <platform>/<index>")
	require.Equal(t, "api-token-0123456789abcdef", cfg.File.Server.APITokens[0].Token.Reveal())
	for _, p := range cfg.Platforms {
		if p.Name == "rivergen" {
			require.Equal(t, 3, p.MaxAttempts)
			require.Equal(t, 2, p.MaxConcurrency)
			require.Equal(t, "5s", p.Timeout.String())
		}
	}
}

func TestLoadFromFile(t *testing.T) {
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := filepath.Join(t.TempDir(), "credsync.yaml")
	require.NoError(t, os.WriteFile(path, []byte(designExample), 0o600))
	_, err := config.Load(path)
	require.NoError(t, err)
	_, err = config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "read config")
}

func TestRefusedConfigsSayWhichLine(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown top-level key", "store:\n", "stores:\n", "line 6: unknown key \"stores\""},
		{"unknown platform key", "    timeout: 5s\n", "    timout: 5s\n", "line 21: unknown key \"timout\""},
		{"missing env var", "${FELT_API_TOKEN}", "${FELT_TOKEN}", "line 12: environment variable FELT_TOKEN is not set"},
		{"unknown platform", "      - platform: rivergen\n", "      - platform: rivergem\n", "line 34: sources.warehouse-pg.targets[2]: unknown platform \"rivergem\""},
		{"field the vendor does not have", "        connection_type: postgresql\n", "        connection_type: postgresql\n        datasource_type: postgres\n", "line 30"},
		{"databrain field of another type", "schema: public}", "schema: public, warehouse: WH}", "line 33: \"warehouse\" is not a field of Databrain postgres"},
		{"bad vendor", "    vendor: felt\n", "    vendor: tableau\n", "line 10: platforms.felt.vendor is \"tableau\""},
		{"bad base_url", "https://felt.com", "felt.com", "line 11: platforms.felt.base_url"},
		{"unknown store driver", "driver: memory", "driver: mysql", "line 7: store.driver is \"mysql\": must be one of memory, sqlite, postgres"},
		{"postgres needs a dsn", "driver: memory", "driver: postgres", "line 7: store.dsn is required with driver postgres"},
		{"bad duration", "timeout: 5s", "timeout: soon", "line 21"},
		{"bad number", "max_attempts: 3", "max_attempts: three", "line 22"},
		{"duplicate target name", "      - platform: rivergen\n", "      - platform: rivergen\n        name: production-postgres\n", "already used"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(designExample, tc.from, tc.to, 1)
			require.NotEqual(t, designExample, doc, "the case must change the document")
			_, err := config.Parse([]byte(doc), lookup)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			for _, v := range env {
				require.NotContains(t, err.Error(), v, "a config error never prints a secret")
			}
		})
	}
}

func TestRefusedWholeDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":        "",
		"not a map":    "- a\n- b\n",
		"no platforms": "server:\n  api_tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaa}]\nsources: {s: {targets: [{platform: x}]}}\n",
		"no sources":   "server:\n  api_tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaa}]\nplatforms: {felt: {vendor: felt, base_url: 'https://felt.com', token: t}}\n",
		"no server":    "platforms: {felt: {vendor: felt, base_url: 'https://felt.com', token: t}}\n",
		"no tokens":    "server: {listen: '127.0.0.1:1'}\nplatforms: {felt: {vendor: felt, base_url: 'https://felt.com', token: t}}\nsources: {s: {targets: [{platform: felt, source_id: a, connection_type: postgresql}]}}\n",
		"bad yaml":     "server: [\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Parse([]byte(doc), lookup)
			require.Error(t, err)
		})
	}
}

func TestStoreDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(strings.Replace(designExample, "store:\n  driver: memory\n", "", 1)), lookup)
	require.NoError(t, err)
	require.Equal(t, "sqlite", cfg.File.Store.Driver, "the embedded store is the default")
	require.Equal(t, "credsync.db", cfg.File.Store.DSN)
	require.Equal(t, config.DefaultStoreTimeout, cfg.File.Store.Timeout, "store.timeout defaults to 5s")
}

func TestStoreTimeout(t *testing.T) {
	doc := func(v string) []byte {
		return []byte(strings.Replace(designExample, "  driver: memory\n", "  driver: memory\n  timeout: "+v+"\n", 1))
	}
	cfg, err := config.Parse(doc("1500ms"), lookup)
	require.NoError(t, err)
	require.Equal(t, 1500*time.Millisecond, cfg.File.Store.Timeout)
	for _, bad := range []string{"0s", "-1s"} {
		_, err := config.Parse(doc(bad), lookup)
		require.ErrorContains(t, err, "line 8: store.timeout is", bad)
		require.ErrorContains(t, err, "must be more than 0", bad)
	}
	_, err = config.Parse(doc("soon"), lookup)
	require.ErrorContains(t, err, "line 8")
}

func TestShortAPITokenRefused(t *testing.T) {
	_, err := config.Parse([]byte(designExample), func(k string) (string, bool) {
		if k == "CREDSYNC_API_TOKEN" {
			return "short", true
		}
		return lookup(k)
	})
	require.ErrorContains(t, err, "line 5: server.api_tokens[0] (rotation-job): the token must be at least 16 characters")
}

func TestTokenScopes(t *testing.T) {
	withTokens := func(block string) []byte {
		return []byte(strings.Replace(designExample, "      token: ${CREDSYNC_API_TOKEN}\n", "      token: ${CREDSYNC_API_TOKEN}\n"+block, 1))
	}
	cfg, err := config.Parse(withTokens("      sources: [\"warehouse-*\", crm]\n      actions: [rotate, read]\n"), lookup)
	require.NoError(t, err)
	tok := cfg.File.Server.APITokens[0]
	require.Equal(t, []string{"warehouse-*", "crm"}, tok.Sources)
	require.Equal(t, []string{"rotate", "read"}, tok.Actions)

	for _, c := range []struct{ block, want string }{
		{"      sources: [\"warehouse-[\"]\n", `line 6: server.api_tokens[0] (rotation-job): sources[0] "warehouse-[" is not a glob pattern`},
		{"      sources: [a, \"\"]\n", `line 6: server.api_tokens[0] (rotation-job): sources[1] "" is not a glob pattern`},
		{"      actions: [rotate, delete]\n", "delete"},
	} {
		_, err := config.Parse(withTokens(c.block), lookup)
		require.ErrorContains(t, err, c.want, c.block)
	}

	status := strings.Replace(designExample, "store:\n", "  status_tokens:\n    - name: wall\n      token: wallboard-token-0123456789\n      actions: [read, rotate]\nstore:\n", 1)
	_, err = config.Parse([]byte(status), lookup)
	require.ErrorContains(t, err, `server.status_tokens[0] (wall): a status token may only read`)
	require.ErrorContains(t, err, `remove "rotate"`)
}

func TestVerifyEvery(t *testing.T) {
	doc := strings.Replace(designExample, "    max_concurrency: 2\n", "    max_concurrency: 2\n    verify_every: 6h\n", 1)
	doc = strings.Replace(doc, "      - platform: felt\n", "      - platform: felt\n        verify_every: 30m\n", 1)
	cfg, err := config.Parse([]byte(doc), lookup)
	require.NoError(t, err)
	every := map[string]time.Duration{}
	for _, tg := range cfg.Sources[0].Targets {
		every[tg.Platform] = tg.VerifyEvery
	}
	require.Equal(t, map[string]time.Duration{"felt": 30 * time.Minute, "databrain": 0, "rivergen": 6 * time.Hour}, every,
		"the platform's schedule, a target's own, none")

	off := strings.Replace(doc, "      - platform: rivergen\n", "      - platform: rivergen\n        verify_every: 0s\n", 1)
	cfg, err = config.Parse([]byte(off), lookup)
	require.NoError(t, err)
	require.Zero(t, cfg.Sources[0].Targets[2].VerifyEvery, "0 turns a platform's schedule off for that target")

	for _, bad := range []struct{ doc, want string }{
		{strings.Replace(doc, "verify_every: 30m", "verify_every: soon", 1), `line 29: sources.warehouse-pg.targets[0].verify_every "soon" is not a duration`},
		{strings.Replace(doc, "verify_every: 30m", "verify_every: 10ms", 1), "sources.warehouse-pg.targets[0].verify_every is 10ms: at least 1s"},
		{strings.Replace(doc, "verify_every: 6h", "verify_every: -1h", 1), "platforms.rivergen.verify_every is -1h0m0s: at least 1s"},
	} {
		_, err := config.Parse([]byte(bad.doc), lookup)
		require.ErrorContains(t, err, bad.want)
	}
}
