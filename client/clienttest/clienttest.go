// Package clienttest runs the real credsync API (api.Server over a core.Engine on the in-memory
// store) behind an httptest server, in front of stand-in adapters whose outcome a test controls.
// The client package's tests and the CLI's tests use it.
package clienttest

import (
	"context"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

// Token is the API token the server accepts, for everything; ReaderToken may only read.
const (
	Token       = "clienttest-api-token-0123456789"
	ReaderToken = "clienttest-reader-token-0123456789"
)

// Adapter stands in for a vendor target: the tests' one stand-in (internal/standin), taking
// password and token credentials. It records how many sends reached it and the last credential
// built, fails when told to, and can hold every send until released.
type Adapter struct {
	standin.Adapter
}

// newAdapter returns a target's stand-in.
func newAdapter() *Adapter {
	return &Adapter{Adapter: standin.Adapter{Types: []core.CredentialType{core.TypePassword, core.TypeToken}}}
}

// SetFail makes the following sends fail as the vendor refusing the credential (HTTP 400), or
// succeed again.
func (a *Adapter) SetFail(fail bool) {
	if !fail {
		a.FailWith(nil)
		return
	}
	a.FailWith(&core.Error{Code: core.CodeRejected, Message: "HTTP 400: the vendor refused the credential", VendorStatus: 400})
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
	s := &Server{Targets: map[string]*Adapter{"alpha": newAdapter(), "beta": newAdapter(), "gamma": newAdapter()}}
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
	tokens := []api.Token{{Name: "clienttest", Token: core.NewSecret(Token)},
		{Name: "reader", Token: core.NewSecret(ReaderToken), Scope: api.Scope{Actions: []api.Action{api.ActionRead}}}}
	s.srv = httptest.NewServer(api.New(eng, tokens, zap.NewNop()).Handler())
	s.URL = s.srv.URL
	t.Cleanup(func() {
		for _, a := range s.Targets {
			a.Release()
		}
		s.srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return s
}

// Engine returns the engine behind the API.
func (s *Server) Engine() *core.Engine { return s.eng }
