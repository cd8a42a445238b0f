package felt

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

const testToken = "felt-test-token-1"

// env is a fake Felt behind an HTTP server and a platform pointed at it.
type env struct {
	fake     *feltfake.Server
	server   *httptest.Server
	platform *Platform
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvToken(t, testToken)
}

// newEnvToken is newEnv with the platform using token (the fake accepts only testToken).
func newEnvToken(t *testing.T, token string) *env {
	t.Helper()
	fake := feltfake.New(testToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p, err := NewPlatform(vendorhttp.Platform{Name: "felt", BaseURL: srv.URL, Token: core.NewSecret(token), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("NewPlatform: %v", err)
	}
	return &env{fake: fake, server: srv, platform: p}
}

// get sends an authorized GET of path to the fake, for a test that needs Show Source answered
// (it moves a sync on) without the adapter.
func (e *env) get(t *testing.T, path string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// parseNode parses a YAML target block into its mapping node.
func parseNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return doc.Content[0]
}

// target loads a target block on the env's platform.
func (e *env) target(t *testing.T, src string) *target {
	t.Helper()
	a, err := e.platform.NewTarget(parseNode(t, src))
	if err != nil {
		t.Fatalf("NewTarget: %v", err)
	}
	return a.(*target)
}

// cred decodes a neutral credential as the API would.
func cred(t *testing.T, js string) core.Credential {
	t.Helper()
	c, err := core.DecodeCredential([]byte(js))
	if err != nil {
		t.Fatalf("DecodeCredential(%s): %v", js, err)
	}
	return c
}

// Test credentials: obviously fake values.
const (
	credPassword     = `{"type":"password","password":"s3cr3t-pw-1"}`
	credPasswordUser = `{"type":"password","username":"svc_felt_2","password":"s3cr3t-pw-2"}`
	credKeyPair      = `{"type":"key_pair","private_key":"-----BEGIN PRIVATE KEY-----\nZmFrZS1rZXktMQ==\n-----END PRIVATE KEY-----","private_key_passphrase":"s3cr3t-passphrase-1","private_key_name":"rsa_key_2"}`
	credKeyPairMin   = `{"type":"key_pair","private_key":"-----BEGIN PRIVATE KEY-----\nZmFrZS1rZXktMg==\n-----END PRIVATE KEY-----"}`
	credToken        = `{"type":"token","token":"s3cr3t-token-1"}`
	credGCP          = `{"type":"gcp_service_account","service_account_json":{"type":"service_account","project_id":"demo-project","private_key_id":"fake-key-id","private_key":"s3cr3t-gcp-key-1","client_email":"felt@demo-project.iam.gserviceaccount.com"},"filename":"felt-sa.json"}`
	credGCPNoName    = `{"type":"gcp_service_account","service_account_json":"{\"type\":\"service_account\",\"private_key\":\"s3cr3t-gcp-key-2\"}"}`
	credAWS          = `{"type":"aws_assume_role","role_arn":"arn:aws:iam::123456789012:role/felt-reader","role_session_name":"felt-credsync"}`
	credAzure        = `{"type":"azure_connection_string","connection_string":"DefaultEndpointsProtocol=https;AccountName=demo;AccountKey=s3cr3t-azure-1"}`
	credHeaders      = `{"type":"custom_headers","headers":[{"name":"Authorization","value":"Bearer s3cr3t-header-1","sensitive":true},{"name":"X-Tenant","value":"demo-tenant","sensitive":false}]}`
)

// secretsOf lists the clear secret values of a credential, to check nothing leaks.
func secretsOf(c core.Credential) []string { return c.Secrets() }
