package rivergen_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/golden"
)

const testToken = "rg-access-token-1"

// Obviously fake secrets.
const (
	pw1        = "s3cr3t-pw-1"
	tok1       = "s3cr3t-token-1"
	sshKey1    = "-----BEGIN OPENSSH PRIVATE KEY-----\ns3cr3t-ssh-key-1\n-----END OPENSSH PRIVATE KEY-----\n"
	sshPass1   = "s3cr3t-ssh-pass-1"
	allSecrets = "s3cr3t"
)

// env is a fake RiverGen behind an httptest server and a platform pointing at it.
type env struct {
	fake     *rivergenfake.Server
	srv      *httptest.Server
	platform *rivergen.Platform
}

// newEnv starts a fake holding data source 1 and returns a platform using token.
func newEnv(t *testing.T, token string) *env {
	t.Helper()
	fake := rivergenfake.New(testToken)
	fake.AddDataSource(1)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p, err := rivergen.NewPlatform(vendorhttp.Platform{
		Name: "rivergen", BaseURL: srv.URL, Token: core.NewSecret(token), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewPlatform: %v", err)
	}
	return &env{fake: fake, srv: srv, platform: p}
}

// target builds a target from a YAML block.
func (e *env) target(t *testing.T, block string) core.Adapter {
	t.Helper()
	a, err := e.platform.NewTarget(yamlNode(t, block))
	if err != nil {
		t.Fatalf("NewTarget(%q): %v", block, err)
	}
	return a
}

func yamlNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if len(doc.Content) != 1 {
		t.Fatalf("yaml: empty document %q", text)
	}
	return doc.Content[0]
}

func password(pw string) core.Credential {
	return core.Credential{Type: core.TypePassword, Password: core.NewSecret(pw)}
}

func token(tok string) core.Credential {
	return core.Credential{Type: core.TypeToken, Token: core.NewSecret(tok)}
}

// lastRequest returns the last recorded request, failing when there is none.
func (e *env) lastRequest(t *testing.T) golden.Request {
	t.Helper()
	reqs := e.fake.Requests()
	if len(reqs) == 0 {
		t.Fatalf("fake received no request")
	}
	return reqs[len(reqs)-1]
}
