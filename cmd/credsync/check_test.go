package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
)

// demoFakes starts the demo's fake vendors and sets the environment its config refers to.
func demoFakes(t *testing.T) *demo.Fakes {
	t.Helper()
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	for k, v := range fakes.Env("check-api-token-0123456789") {
		t.Setenv(k, v)
	}
	return fakes
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credsync.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

type checkJSON struct {
	OK      bool           `json:"ok"`
	Counts  map[string]int `json:"counts"`
	Targets []checkRow     `json:"targets"`
}

func byTarget(rows []checkRow) map[string]checkRow {
	m := map[string]checkRow{}
	for _, r := range rows {
		m[r.Target] = r
	}
	return m
}

// The demo config against the demo fakes: every target ready or unknown, exit 0.
func TestCheckDemoConfig(t *testing.T) {
	fakes := demoFakes(t)
	path := writeConfig(t, fakes.Config("127.0.0.1:8080", filepath.Join(t.TempDir(), "c.db")))

	code, out, errOut := runCLI("check", "--config", path)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Regexp(t, `warehouse-pg\s+felt-pg\s+felt\s+felt\s+ready\s+Felt source "src_pg" exists, postgresql connection`, out)
	require.Regexp(t, `warehouse-pg\s+rivergen-pg\s+rivergen\s+rivergen\s+ready`, out)
	require.Regexp(t, `warehouse-pg\s+production-postgres\s+databrain\s+databrain\s+unknown\s+Databrain datasource`, out)
	require.Contains(t, out, "check(s): ")

	code, out, errOut = runCLI("check", "--config", path, "--output", "json")
	require.Equal(t, exitOK, code, errOut)
	var rep checkJSON
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.True(t, rep.OK)
	rows := byTarget(rep.Targets)
	require.Len(t, rows, 16)
	require.Equal(t, core.CheckReady, rows["felt-bigquery"].Status)
	require.Equal(t, core.CheckReady, rows["rivergen-api"].Status)
	require.Equal(t, core.CheckUnknown, rows["firebolt-prod"].Status)
	// Felt credential mode: ready once the fake lists a source's credentials in Show Source (as
	// Felt does), unknown until then; never a failure.
	require.Contains(t, []core.CheckStatus{core.CheckReady, core.CheckUnknown}, rows["felt-snowflake-key"].Status)
	require.Equal(t, core.CheckUnknown, rows["felt-headers"].Status, "a feature_server source lists no credentials")
	for _, r := range rep.Targets {
		for _, tok := range fakes.Tokens {
			require.NotContains(t, r.Message, tok)
		}
	}
	// Nothing changed: no vendor received a write.
	for _, rec := range append(fakes.Felt.Requests(), fakes.RiverGen.Requests()...) {
		require.True(t, rec.Method == "GET" || strings.HasSuffix(rec.Path, "/test"), "%s %s", rec.Method, rec.Path)
	}
	require.Empty(t, fakes.Databrain.Requests())
}

func TestCheckFailures(t *testing.T) {
	fakes := demoFakes(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	cfg := fmt.Sprintf(`server:
  api_tokens:
    - name: job
      token: ${CREDSYNC_API_TOKEN}
platforms:
  felt:
    vendor: felt
    base_url: %[1]s
    token: ${FELT_API_TOKEN}
  felt-wrong-token:
    vendor: felt
    base_url: %[1]s
    token: not-the-felt-token
  rivergen:
    vendor: rivergen
    base_url: %[2]s
    token: ${RIVERGEN_ACCESS_TOKEN}
  rivergen-down:
    vendor: rivergen
    base_url: %[3]s
    token: ${RIVERGEN_ACCESS_TOKEN}
    timeout: 2s
sources:
  pg:
    targets:
      - platform: felt
        name: ok
        source_id: src_pg
        connection_type: postgresql
      - platform: felt-wrong-token
        name: wrong-token
        source_id: src_pg
        connection_type: postgresql
      - platform: felt
        name: no-such-source
        source_id: src_nope
        connection_type: postgresql
      - platform: felt
        name: wrong-type
        source_id: src_pg
        connection_type: mssql
      - platform: rivergen
        name: no-such-data-source
        data_source_id: 404
      - platform: rivergen-down
        name: down
        data_source_id: 1
`, fakes.URLs["felt"], fakes.URLs["rivergen"], closed)
	path := writeConfig(t, cfg)

	code, out, errOut := runCLI("check", "--config", path, "--output", "json")
	require.Equal(t, exitFailure, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	var rep checkJSON
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.False(t, rep.OK)
	rows := byTarget(rep.Targets)
	want := map[string]core.CheckStatus{
		"ok":                  core.CheckReady,
		"wrong-token":         core.CheckUnauthorized,
		"no-such-source":      core.CheckNotFound,
		"wrong-type":          core.CheckMismatch,
		"no-such-data-source": core.CheckNotFound,
		"down":                core.CheckUnreachable,
	}
	for name, st := range want {
		require.Equal(t, st, rows[name].Status, "%s: %s", name, rows[name].Message)
	}
	require.Equal(t, map[string]int{"ready": 1, "unauthorized": 1, "not_found": 2, "mismatch": 1, "unreachable": 1}, rep.Counts)
	require.NotContains(t, out, "not-the-felt-token")

	code, out, _ = runCLI("check", "--config", path)
	require.Equal(t, exitFailure, code)
	require.Contains(t, out, "6 check(s): 1 ready, 1 unauthorized, 2 not_found, 1 mismatch, 1 unreachable.")
}

func TestCheckUsageAndConfigErrors(t *testing.T) {
	code, _, errOut := runCLI("check")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "--config FILE is required")

	code, _, _ = runCLI("check", "--config", "x", "--output", "xml")
	require.Equal(t, exitBadInput, code)

	bad := writeConfig(t, "server: {}\nplatforms: {}\nsources: {}\nbogus: 1\n")
	code, _, errOut = runCLI("check", "--config", bad)
	require.Equal(t, exitConfig, code)
	require.Contains(t, errOut, "invalid config")
}
