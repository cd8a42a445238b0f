package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/yamlx"
)

// A fourth vendor is one package and one registry line. "toy" is such a package, written here in
// a few lines: a platform that builds targets from their config block, and an adapter that
// builds, sends and verifies. Registered with adapters.Default().With, it is configured, validated,
// rotated, verified and reported like the three real ones, with nothing else changed.

// toyVendor is the toy's registry line.
var toyVendor = adapters.Vendor{Name: "toy", NewPlatform: func(p vendorhttp.Platform) (adapters.Platform, error) {
	c, err := p.NewClient()
	if err != nil {
		return nil, err
	}
	return toyPlatform{c: c}, nil
}}

type toyPlatform struct{ c *vendorhttp.Client }

// NewTarget takes a block with one key, dataset.
func (p toyPlatform) NewTarget(node *yaml.Node) (core.Adapter, error) {
	var block struct {
		Dataset string `yaml:"dataset"`
	}
	if err := yamlx.DecodeStrict(node, &block); err != nil {
		return nil, err
	}
	if block.Dataset == "" {
		return nil, yamlx.Errorf(node, "a toy target needs a dataset")
	}
	return &toyTarget{c: p.c, dataset: block.Dataset}, nil
}

type toyTarget struct {
	c       *vendorhttp.Client
	dataset string
}

func (t *toyTarget) Accepts() []core.CredentialType { return []core.CredentialType{core.TypePassword} }

func (t *toyTarget) Build(cred core.Credential) (core.Request, error) {
	if cred.Type != core.TypePassword {
		return core.Request{}, &core.InputError{Message: "a toy target takes a password"}
	}
	return core.Request{Method: http.MethodPut, Path: "/datasets/" + t.dataset + "/password",
		Body: map[string]any{"password": cred.Password}}, nil
}

func (t *toyTarget) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	resp, retry, err := t.c.Send(ctx, req)
	if err != nil {
		return core.SendResult{}, retry, err
	}
	if resp.Status != http.StatusNoContent {
		retry, e := t.c.Classify(resp, "")
		return core.SendResult{}, retry, e
	}
	return core.SendResult{Check: true}, false, nil
}

func (t *toyTarget) Verify(ctx context.Context, _ core.VerifyRequest) (core.Verification, bool, error) {
	resp, retry, err := t.c.Do(ctx, http.MethodPost, "/datasets/"+t.dataset+"/test", nil)
	if err != nil {
		return core.Verification{}, retry, err
	}
	if resp.Status != http.StatusOK {
		retry, e := t.c.Classify(resp, "")
		return core.Verification{}, retry, e
	}
	return core.Verification{Verified: string(resp.Body) == `{"ok":true}`}, false, nil
}

// toyServer is the toy vendor: it stores one password per dataset and tests it against the
// database's password.
type toyServer struct {
	token, database string
	mu              sync.Mutex
	held            map[string]string
}

func (s *toyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "datasets" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && parts[2] == "password":
		var body struct {
			Password string `json:"password"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || body.Password == "" {
			http.Error(w, `{"error":"password required"}`, http.StatusBadRequest)
			return
		}
		s.held[parts[1]] = body.Password
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && parts[2] == "test":
		_, _ = io.WriteString(w, `{"ok":`+map[bool]string{true: "true", false: "false"}[s.held[parts[1]] == s.database]+`}`)
	default:
		http.Error(w, `{"error":"no such route"}`, http.StatusMethodNotAllowed)
	}
}

func TestAFourthVendorIsOneRegistryLine(t *testing.T) {
	const vendorToken, password = "toy-vendor-token-0123", "Toy-rotated-passw0rd"
	vendor := &toyServer{token: vendorToken, database: password, held: map[string]string{}}
	srv := httptest.NewServer(vendor)
	t.Cleanup(srv.Close)

	reg, err := adapters.Default().With(toyVendor)
	require.NoError(t, err)
	_, err = reg.With(toyVendor)
	require.ErrorContains(t, err, `vendor "toy" is already registered`)
	require.Equal(t, []string{"databrain", "felt", "rivergen"}, adapters.Default().Names(), "the default registry is not changed")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	text := `server:
  listen: ` + l.Addr().String() + `
  api_tokens:
    - name: ops
      token: ` + hardToken + `
store:
  driver: memory
platforms:
  toybox:
    vendor: toy
    base_url: ` + srv.URL + `
    token: ` + vendorToken + `
sources:
  warehouse:
    targets:
      - platform: toybox
        name: sales
        dataset: sales
`
	lookup := func(string) (string, bool) { return "", false }
	// Without the registry line, the same config is refused, naming the vendors there are.
	_, err = config.Parse([]byte(text), lookup)
	require.ErrorContains(t, err, `platforms.toybox.vendor is "toy": must be one of databrain, felt, rivergen`)
	// The toy's own validation runs at load, as the real vendors' does.
	_, err = config.ParseWith([]byte(strings.Replace(text, "dataset: sales", "datasett: sales", 1)), lookup, reg)
	require.ErrorContains(t, err, "datasett")

	cfg, err := config.ParseWith([]byte(text), lookup, reg)
	require.NoError(t, err)
	gw, err := gateway.New(context.Background(), cfg, zap.NewNop(), gateway.Options{ShutdownGrace: 2 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	req, err := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/v1/rotations?wait=30s",
		strings.NewReader(`{"source":"warehouse","credential":{"type":"password","password":"`+password+`"}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+hardToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot), "%s", b)
	require.Equal(t, core.RotationSucceeded, rot.Status, "%s", b)
	require.Len(t, rot.Targets, 1)
	require.Equal(t, "toy", rot.Targets[0].Vendor)
	require.True(t, rot.Targets[0].Verified, "%s", b)
	require.NotContains(t, string(b), password, "the answer holds no secret")

	vendor.mu.Lock()
	defer vendor.mu.Unlock()
	require.Equal(t, map[string]string{"sales": password}, vendor.held, "what the toy vendor applied")
}
