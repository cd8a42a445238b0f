package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/internal/keyring"
)

func TestDemoOnce(t *testing.T) {
	var out bytes.Buffer
	ok, err := demo.Run(context.Background(), demo.Options{Listen: "127.0.0.1:0", Once: true, LogFile: t.TempDir() + "/gw.log", Out: &out})
	require.NoError(t, err)
	require.True(t, ok, "every demo target must succeed:\n%s", out.String())
	require.Contains(t, out.String(), "9 of 9 rotations succeeded on every target.")
	for _, typ := range core.CredentialTypes() {
		require.Contains(t, out.String(), string(typ), "the demo rotates every credential type")
	}
}

// stack is the real gateway over real HTTP in front of the three fake vendors.
type stack struct {
	fakes *demo.Fakes
	base  string
	token string
	logs  *syncBuf
}

func startStack(t *testing.T) *stack {
	t.Helper()
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	token := "e2e-api-token-0123456789"
	env := fakes.Env(token)
	cfg, err := config.Parse([]byte(fakes.Config(l.Addr().String(), filepath.Join(t.TempDir(), "credsync.db"))), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	logs := &syncBuf{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel))
	gw, err := gateway.New(context.Background(), cfg, log, gateway.Options{ShutdownGrace: 5 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &stack{fakes: fakes, base: "http://" + l.Addr().String(), token: token, logs: logs}
}

// syncBuf is a log sink safe to write from the gateway and read from the test at once.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *stack) post(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestPasswordRotationEndToEnd is the spine's acceptance test: one password rotation of a source
// with a Felt, a Databrain and a RiverGen target sends exactly the documented request to each
// vendor (pinned in testdata/e2e), and all three end succeeded and verified.
func TestPasswordRotationEndToEnd(t *testing.T) {
	s := startStack(t)
	const pw = "e2e-N3w-passw0rd"
	status, b := s.post(t, "/v1/rotations?wait=30s", `{"source":"warehouse-pg","credential":{"type":"password","username":"dbuser","password":"`+pw+`"}}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	require.NotContains(t, string(b), pw)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Equal(t, core.RotationSucceeded, rot.Status)
	require.Len(t, rot.Targets, 3)
	for _, tr := range rot.Targets {
		require.Equal(t, core.TargetSucceeded, tr.Status, "%s: %+v", tr.Name, tr.Error)
		require.True(t, tr.Verified, tr.Name)
		require.Equal(t, 1, tr.Attempts, tr.Name)
	}

	// Exactly the documented request reached each vendor.
	feltReqs := s.fakes.Felt.Requests()
	require.GreaterOrEqual(t, len(feltReqs), 3, "baseline read, update, polls")
	require.Equal(t, "GET /api/v2/sources/src_pg", feltReqs[0].Method+" "+feltReqs[0].Path,
		"the source is read first: the baseline of a fresh sync status")
	require.Equal(t, "POST", feltReqs[1].Method)
	golden.Assert(t, "e2e/warehouse-pg_felt.golden", golden.Format(feltReqs[1]))
	for _, r := range feltReqs[2:] {
		require.Equal(t, "GET /api/v2/sources/src_pg", r.Method+" "+r.Path, "after the update Felt only sees sync_status polls")
	}
	dbReqs := s.fakes.Databrain.Requests()
	require.Len(t, dbReqs, 1, "Databrain verifies during the PUT: one call")
	golden.Assert(t, "e2e/warehouse-pg_databrain.golden", golden.Format(dbReqs[0]))
	rgReqs := s.fakes.RiverGen.Requests()
	require.Len(t, rgReqs, 2, "RiverGen: PATCH then Test Connection")
	golden.Assert(t, "e2e/warehouse-pg_rivergen.golden", golden.Format(rgReqs[0]))
	require.Equal(t, "POST /api/v1/data-sources/1/test", rgReqs[1].Method+" "+rgReqs[1].Path)

	// And each vendor now holds the new password.
	conn, ok := s.fakes.Felt.Connection("src_pg")
	require.True(t, ok)
	require.Equal(t, pw, conn["password"])
	creds, ok := s.fakes.Databrain.Credentials("production-postgres")
	require.True(t, ok)
	require.Equal(t, pw, creds["password"])
	rc, ok := s.fakes.RiverGen.Credentials(1)
	require.True(t, ok)
	require.Equal(t, pw, rc.Password)

	require.NotContains(t, s.logs.String(), pw, "no secret in the gateway log")
	require.Contains(t, s.logs.String(), `"msg":"target succeeded"`)
}

func TestRefusedRotationReachesNoVendor(t *testing.T) {
	s := startStack(t)
	// Databrain's postgres datasource cannot take a token: the whole rotation is refused.
	status, b := s.post(t, "/v1/rotations", `{"source":"warehouse-pg","credential":{"type":"token","token":"tok-e2e-secret"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", b)
	require.NotContains(t, string(b), "tok-e2e-secret")
	require.Contains(t, string(b), "production-postgres")
	require.Empty(t, s.fakes.Felt.Requests())
	require.Empty(t, s.fakes.Databrain.Requests())
	require.Empty(t, s.fakes.RiverGen.Requests())
}

// tempDirOf is the demo's temp directory, as its output names it.
func tempDirOf(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`; (\S+credsync-demo-\S+): `).FindStringSubmatch(out)
	require.NotNil(t, m, "the demo names its temp directory:\n%s", out)
	return m[1]
}

func TestDemoCleansUpUnlessKept(t *testing.T) {
	var out bytes.Buffer
	ok, err := demo.Run(context.Background(), demo.Options{Listen: "127.0.0.1:0", Once: true, Out: &out})
	require.NoError(t, err)
	require.True(t, ok)
	dir := tempDirOf(t, out.String())
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "the temp directory is removed on exit: %v", err)

	out.Reset()
	ok, err = demo.Run(context.Background(), demo.Options{Listen: "127.0.0.1:0", Once: true, Keep: true, Out: &out})
	require.NoError(t, err)
	require.True(t, ok)
	dir = tempDirOf(t, out.String())
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, f := range []string{"credsync.yaml", "credsync.db", "gateway.log"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, "--keep keeps %s", f)
	}
	require.Contains(t, out.String(), "Kept "+dir)
}

func TestDemoServingPrintsTheExportLines(t *testing.T) {
	out := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := demo.Run(ctx, demo.Options{Listen: "127.0.0.1:0", Out: out}); done <- err }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Press Ctrl-C") }, time.Minute, 20*time.Millisecond)
	text := out.String()
	addr := regexp.MustCompile(`export CREDSYNC_ADDR=(http://127\.0\.0\.1:\d+)\n`).FindStringSubmatch(text)
	tok := regexp.MustCompile(`export CREDSYNC_TOKEN=(demo-[0-9a-f]+)\n`).FindStringSubmatch(text)
	require.NotNil(t, addr, text)
	require.NotNil(t, tok, text)
	// The lines work: the gateway they name takes the token they name.
	req, err := http.NewRequest(http.MethodGet, addr[1]+"/v1/sources", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok[1])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(tempDirOf(t, text))
	require.True(t, os.IsNotExist(err), "removed on Ctrl-C too")
}
