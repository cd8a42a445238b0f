package databrain

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/databrain/databrainfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

const testToken = "dbn_test_service_token"

// Test secrets: obviously fake, and each distinct so a leak is easy to spot.
const (
	pw1          = "s3cr3t-pw-1"
	privKey1     = "-----BEGIN PRIVATE KEY-----\nFAKE-SNOWFLAKE-KEY-1\n-----END PRIVATE KEY-----"
	privKeyPass1 = "s3cr3t-key-pass-1"
	sshKey1      = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-SSH-KEY-1\n-----END OPENSSH PRIVATE KEY-----"
	sshPass1     = "s3cr3t-ssh-pass-1"
	token1       = "dapi-s3cr3t-token-1"
	clientSec1   = "s3cr3t-client-1"
	awsSecret1   = "s3cr3t-aws-secret-1"
	saKey1       = "FAKE-SA-PRIVATE-KEY-1"
)

var allSecrets = []string{pw1, privKey1, privKeyPass1, sshKey1, sshPass1, token1, clientSec1, awsSecret1, saKey1, "FAKE-SNOWFLAKE-KEY-1", "FAKE-SSH-KEY-1"}

// cred decodes a credential the way the API does.
func cred(t *testing.T, js string) core.Credential {
	t.Helper()
	c, err := core.DecodeCredential([]byte(js))
	if err != nil {
		t.Fatalf("decode credential: %v", err)
	}
	return c
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var (
	credPassword     = `{"type":"password","password":` + mustJSON(pw1) + `}`
	credPasswordUser = `{"type":"password","username":"dbuser_rotated","password":` + mustJSON(pw1) + `}`
	credPasswordSSH  = `{"type":"password","password":` + mustJSON(pw1) + `,"ssh_tunnel":{"private_key":` + mustJSON(sshKey1) + `}}`
	credKeyPair      = `{"type":"key_pair","username":"SVC_CREDSYNC","private_key":` + mustJSON(privKey1) + `,"private_key_passphrase":` + mustJSON(privKeyPass1) + `,"private_key_name":"key-2025"}`
	credKeyPairNoPP  = `{"type":"key_pair","private_key":` + mustJSON(privKey1) + `}`
	credToken        = `{"type":"token","token":` + mustJSON(token1) + `}`
	credOAuth        = `{"type":"oauth_client","client_id":"fb-client-id-1","client_secret":` + mustJSON(clientSec1) + `}`
	credGCP          = `{"type":"gcp_service_account","filename":"sa.json","service_account_json":{"type":"service_account","project_id":"demo-proj","private_key":` + mustJSON(saKey1) + `,"client_email":"credsync@demo-proj.iam.gserviceaccount.com"}}`
	credAWS          = `{"type":"aws_access_key","access_key_id":"AKIAFAKEEXAMPLE0001","secret_access_key":` + mustJSON(awsSecret1) + `}`
)

// env is a fake Databrain behind an httptest server and a platform pointing at it.
type env struct {
	fake     *databrainfake.Server
	srv      *httptest.Server
	platform *Platform
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvToken(t, testToken)
}

// newEnvToken builds an env whose platform uses clientToken while the fake accepts testToken.
func newEnvToken(t *testing.T, clientToken string) *env {
	t.Helper()
	fake := databrainfake.New(testToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p, err := NewPlatform(vendorhttp.Platform{Name: "databrain", BaseURL: srv.URL, Token: core.NewSecret(clientToken), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, srv: srv, platform: p}
}

// parseNode parses a target block.
func parseNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return doc.Content[0]
}

func (e *env) target(t *testing.T, src string) *Adapter {
	t.Helper()
	a, err := e.platform.NewTarget(parseNode(t, src))
	if err != nil {
		t.Fatalf("NewTarget: %v", err)
	}
	return a.(*Adapter)
}

func asCoreError(t *testing.T, err error) *core.Error {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *core.Error, got %T %v", err, err)
	}
	return ce
}

func asInputError(t *testing.T, err error) *core.InputError {
	t.Helper()
	var ie *core.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want *core.InputError, got %T %v", err, err)
	}
	return ie
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range allSecrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains secret %q: %s", what, sec, s)
		}
	}
}

// send is Send for the tests of the write. It also checks what Send says of verification:
// Databrain tests the connection during the update, so a success is verified with no Verify
// call to make, and a failure reports nothing.
func send(t *testing.T, a core.Adapter, req core.Request) (bool, error) {
	t.Helper()
	res, retry, err := a.Send(context.Background(), req)
	switch {
	case err == nil && (res.Check || !res.Verified):
		t.Errorf("Send succeeded with %+v, want Verified and no Check: Databrain verifies during the update", res)
	case err != nil && (res.Check || res.Verified || res.Receipt != nil):
		t.Errorf("a failed Send reported %+v", res)
	}
	return retry, err
}
