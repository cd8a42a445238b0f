// Package clienttest runs the real credsync API (api.Server over a core.Engine on the in-memory
// store) behind an httptest server, in front of stand-in adapters whose outcome a test controls.
// The client package's tests and the CLI's tests use it.
package clienttest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/store/memstore"
)

// Token is the API token the server accepts.
const Token = "clienttest-api-token-0123456789"

// Adapter stands in for a vendor target: it takes password and token credentials, records how
// many sends reached it, fails when told to, and can hold every send until released.
type Adapter struct {
	mu      sync.Mutex
	fail    bool
	hold    chan struct{}
	release func()
	sends   int
	last    core.Credential
}

var _ core.Adapter = (*Adapter)(nil)

// Accepts implements core.Adapter.
func (a *Adapter) Accepts() []core.CredentialType {
	return []core.CredentialType{core.TypePassword, core.TypeToken}
}

// Build implements core.Adapter: a PATCH with the secret, redacted in the dry run.
func (a *Adapter) Build(c core.Credential) (core.Request, error) {
	a.mu.Lock()
	a.last = c
	a.mu.Unlock()
	switch c.Type {
	case core.TypePassword:
		body := map[string]any{"password": c.Password}
		if c.Username != "" {
			body["username"] = c.Username
		}
		return core.Request{Method: "PATCH", Path: "/credentials", Body: body}, nil
	case core.TypeToken:
		return core.Request{Method: "PATCH", Path: "/credentials", Body: map[string]any{"api_key": c.Token}}, nil
	}
	return core.Request{}, &core.InputError{Message: "credential not accepted", Problems: []core.Problem{
		{Field: "credential.type", Message: fmt.Sprintf("%s is not accepted here (password or token)", c.Type)}}}
}

// Send implements core.Adapter.
func (a *Adapter) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	retry, err := a.send(ctx, req)
	return core.SendResult{Check: err == nil}, retry, err
}

func (a *Adapter) send(ctx context.Context, _ core.Request) (bool, error) {
	a.mu.Lock()
	a.sends++
	hold, fail := a.hold, a.fail
	a.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if fail {
		return false, &core.Error{Code: core.CodeRejected, Message: "HTTP 400: the vendor refused the credential", VendorStatus: 400}
	}
	return false, nil
}

// Verify implements core.Adapter.
func (a *Adapter) Verify(ctx context.Context, _ core.VerifyRequest) (core.Verification, bool, error) {
	return a.verify(ctx)
}

func (a *Adapter) verify(ctx context.Context) (core.Verification, bool, error) {
	return core.Verification{Verified: true}, false, nil
}

// SetFail makes the following sends fail (or succeed again).
func (a *Adapter) SetFail(fail bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = fail
}

// Hold makes the following sends wait until the returned release function is called.
func (a *Adapter) Hold() (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() {
		once.Do(func() {
			a.mu.Lock()
			if a.hold == ch {
				a.hold = nil
			}
			a.mu.Unlock()
			close(ch)
		})
	}
	a.mu.Lock()
	prev := a.release
	a.hold, a.release = ch, release
	a.mu.Unlock()
	if prev != nil {
		prev()
	}
	return release
}

// releaseAll lets every held send go on.
func (a *Adapter) releaseAll() {
	a.mu.Lock()
	r := a.release
	a.mu.Unlock()
	if r != nil {
		r()
	}
}

// LastCredential returns the last credential a request was built from (dry runs included).
func (a *Adapter) LastCredential() core.Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// Sends returns how many sends reached the adapter.
func (a *Adapter) Sends() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sends
}

// Server is the API under test. Its one source "db" has targets "alpha" and "beta" (platform p1)
// and "gamma" (platform p2); each target's Adapter is in Targets.
type Server struct {
	URL     string
	Targets map[string]*Adapter
	srv     *httptest.Server
	eng     *core.Engine
}

// New starts the server; it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	s := &Server{Targets: map[string]*Adapter{"alpha": {}, "beta": {}, "gamma": {}}}
	tgt := func(name, platform string) *core.Target {
		return &core.Target{Name: name, Platform: platform, Vendor: "stand-in", Adapter: s.Targets[name]}
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Sealer: kr,
		Platforms: []core.Platform{
			{Name: "p1", Vendor: "stand-in", MaxAttempts: 1, MaxConcurrency: 4},
			{Name: "p2", Vendor: "stand-in", MaxAttempts: 1, MaxConcurrency: 4},
		},
		Sources: []*core.Source{{Name: "db", Targets: []*core.Target{tgt("alpha", "p1"), tgt("beta", "p1"), tgt("gamma", "p2")}}},
		Store:   memstore.New(),
		Logger:  zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	s.eng = eng
	s.srv = httptest.NewServer(api.New(eng, []api.Token{{Name: "clienttest", Token: core.NewSecret(Token)}}, zap.NewNop()).Handler())
	s.URL = s.srv.URL
	t.Cleanup(func() {
		for _, a := range s.Targets {
			a.releaseAll()
		}
		s.srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return s
}

// Engine returns the engine behind the API.
func (s *Server) Engine() *core.Engine { return s.eng }
