package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
	"github.com/credsync/credsync/internal/keyring"
)

// The one source of the suite: a password on all three vendors.
const (
	source        = "db"
	feltTarget    = "felt-pg"
	dbrainTarget  = "production-postgres"
	riverTarget   = "rivergen-pg"
	apiToken      = "faults-api-token-5b0c1d2e3f"
	configPattern = `server:
  listen: %[1]s
  api_tokens:
    - name: faults
      token: ${API_TOKEN}
  rotation_deadline: 1m
store:
  driver: sqlite
  dsn: %[2]s
platforms:
  felt:
    vendor: felt
    base_url: %[3]s
    token: ${FELT_TOKEN}
    timeout: %[6]s
    max_attempts: %[7]d
  databrain:
    vendor: databrain
    base_url: %[4]s
    token: ${DATABRAIN_TOKEN}
    timeout: %[6]s
    max_attempts: %[7]d
  rivergen:
    vendor: rivergen
    base_url: %[5]s
    token: ${RIVERGEN_TOKEN}
    timeout: %[6]s
    max_attempts: %[7]d
sources:
  db:
    targets:
      - platform: felt
        name: felt-pg
        source_id: src_pg
        connection_type: postgresql
        poll_interval: 50ms
      - platform: databrain
        name: production-postgres
        datasource_type: postgres
        fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}
      - platform: rivergen
        name: rivergen-pg
        data_source_id: 1
  sa:
    targets:
      - platform: felt
        name: felt-gcs
        source_id: src_gcs
        credential_id: cred_gcp
        credential_type: gcp_service_account_json
        poll_interval: 50ms
      - platform: databrain
        name: bq-analytics
        datasource_type: bigquery
        fields: {project_id: acme-analytics, dataset_location: US}
`
)

// targets maps each target of the source to its vendor.
var targets = map[string]string{feltTarget: felt.Vendor, dbrainTarget: databrain.Vendor, riverTarget: rivergen.Vendor}

// stackOptions shape a stack.
type stackOptions struct {
	timeout     time.Duration     // per vendor call
	maxAttempts int               // per call
	baseURLs    map[string]string // vendor → base_url instead of its fake's
	// The store: SQLite in dbDir (default: a temporary directory), or PostgreSQL at pgDSN;
	// storeTimeout is store.timeout (0: its default).
	dbDir        string
	pgDSN        string
	storeTimeout time.Duration
}

// stack is the real credsync against the fake vendors: a config written and parsed as an
// operator's would be, gateway.New on a SQLite file, the API on a loopback port. Everything the
// gateway logs (debug level, JSON) and every API answer it gives through call are kept.
type stack struct {
	fakes  *demo.Fakes
	gw     *gateway.Gateway
	dir    string
	dbPath string
	log    *syncBuffer

	logger *zap.Logger
	*client
	stopOnce sync.Once
	stopErr  error
	stop     func() error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	urls := map[string]string{}
	for v, u := range fakes.URLs {
		urls[v] = u
	}
	for v, u := range o.baseURLs {
		urls[v] = u
	}
	dir := t.TempDir()
	dbDir := dir
	if o.dbDir != "" {
		dbDir = o.dbDir
	}
	s := &stack{fakes: fakes, dir: dir, dbPath: filepath.Join(dbDir, "credsync.db"), log: &syncBuffer{}, client: &client{answers: &syncBuffer{}}}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	text := fmt.Sprintf(configPattern, l.Addr().String(), s.dbPath, urls[felt.Vendor], urls[databrain.Vendor], urls[rivergen.Vendor],
		o.timeout, o.maxAttempts)
	if o.pgDSN != "" {
		text = strings.Replace(text, "  driver: sqlite\n  dsn: "+s.dbPath+"\n", fmt.Sprintf("  driver: postgres\n  dsn: %q\n", o.pgDSN), 1)
	}
	if o.storeTimeout > 0 {
		text = strings.Replace(text, "store:\n", "store:\n  timeout: "+o.storeTimeout.String()+"\n", 1)
	}
	env := map[string]string{
		"API_TOKEN":       apiToken,
		"FELT_TOKEN":      fakes.Tokens[felt.Vendor],
		"DATABRAIN_TOKEN": fakes.Tokens[databrain.Vendor],
		"RIVERGEN_TOKEN":  fakes.Tokens[rivergen.Vendor],
	}
	cfg, err := config.Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)

	enc := zap.NewProductionEncoderConfig()
	s.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(s.log), zap.DebugLevel))
	s.gw, err = gateway.New(context.Background(), cfg, s.logger, gateway.Options{ShutdownGrace: 5 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.gw.Serve(ctx, l) }()
	s.client.base = "http://" + l.Addr().String()
	s.stop = func() error {
		s.stopOnce.Do(func() {
			cancel()
			s.stopErr = <-served
		})
		return s.stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("gateway stop: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", s.log.String())
		}
	})
	return s
}

var httpClient = &http.Client{Timeout: time.Minute}

// client calls a credsync API with the API token and keeps every answer it gets.
type client struct {
	base    string
	answers *syncBuffer // status, headers and body of every answer
}

// call makes one API call; hdr may be nil.
func (c *client) call(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var rec bytes.Buffer
	fmt.Fprintf(&rec, "%s %s -> %s\n", method, path, resp.Status)
	_ = resp.Header.Write(&rec)
	rec.Write(b)
	rec.WriteString("\n\n")
	_, _ = c.answers.Write(rec.Bytes())
	return resp.StatusCode, resp.Header, b
}

// rotate submits a password rotation of the source and waits for its end.
func (s *stack) rotate(t *testing.T, password string) *core.Rotation {
	t.Helper()
	return s.rotateCredential(t, source, map[string]any{"type": "password", "password": password})
}

// rotateCredential submits a rotation of src and waits for its end.
func (s *stack) rotateCredential(t *testing.T, src string, cred map[string]any) *core.Rotation {
	t.Helper()
	body, err := json.Marshal(map[string]any{"source": src, "credential": cred})
	require.NoError(t, err)
	status, hdr, b := s.call(t, http.MethodPost, "/v1/rotations?wait=60s", string(body), nil)
	require.Equal(t, http.StatusOK, status, "the rotation ends within the wait: %s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.True(t, rot.Status.Finished(), "%s", b)
	require.Equal(t, "/v1/rotations/"+rot.ID, hdr.Get("Location"))
	return &rot
}

// writes returns how many credential updates a vendor received (not Felt's Show Source polls nor
// RiverGen's Test Connection).
func (s *stack) writes(vendor string) int {
	n := 0
	for _, r := range s.requests(vendor) {
		if isWrite(r.Method, r.Path) {
			n++
		}
	}
	return n
}

// isWrite tells a credential write from a read (Felt's source reads and polls, RiverGen's Test
// Connection) and from Felt's sync request.
func isWrite(method, path string) bool {
	return method != http.MethodGet && !strings.HasSuffix(path, "/test") && !strings.HasSuffix(path, "/sync")
}

type goldenRequest struct{ Method, Path string }

// requests lists method and path of what a vendor received.
func (s *stack) requests(vendor string) []goldenRequest {
	var out []goldenRequest
	switch vendor {
	case felt.Vendor:
		for _, r := range s.fakes.Felt.Requests() {
			out = append(out, goldenRequest{r.Method, r.Path})
		}
	case databrain.Vendor:
		for _, r := range s.fakes.Databrain.Requests() {
			out = append(out, goldenRequest{r.Method, r.Path})
		}
	case rivergen.Vendor:
		for _, r := range s.fakes.RiverGen.Requests() {
			out = append(out, goldenRequest{r.Method, r.Path})
		}
	}
	return out
}

// setFault installs f on every fake vendor (each gets its own, from mk, so that counting faults
// count per vendor).
// setFault makes every vendor misbehave alike on its credential writes; reads answer as usual
// (the adapters' own tests cover faults on reads and polls).
func (s *stack) setFault(mk func() fakeutil.Fault) {
	onWrites := func(f fakeutil.Fault) fakeutil.Fault {
		if f == nil {
			return nil
		}
		return fakeutil.When(func(r *http.Request) bool { return isWrite(r.Method, r.URL.Path) }, f)
	}
	s.fakes.Felt.SetFault(onWrites(mk()))
	s.fakes.Databrain.SetFault(onWrites(mk()))
	s.fakes.RiverGen.SetFault(onWrites(mk()))
}

// closedPort returns a loopback base URL on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func target(t *testing.T, rot *core.Rotation, name string) core.TargetResult {
	t.Helper()
	for _, tr := range rot.Targets {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("rotation %s has no target %q", rot.ID, name)
	return core.TargetResult{}
}
