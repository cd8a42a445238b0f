package rivergen_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

func TestNewPlatformRejectsBadBaseURL(t *testing.T) {
	_, err := rivergen.NewPlatform(vendorhttp.Platform{Name: "rg", BaseURL: "api.rivergen.com", Token: core.NewSecret("x")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "base_url")
}

func TestConfigGood(t *testing.T) {
	e := newEnv(t, testToken)
	cases := []struct {
		block   string
		accepts []core.CredentialType
	}{
		{"data_source_id: 1", []core.CredentialType{core.TypePassword}},
		{"data_source_id: 1\ntoken_field: api_key", []core.CredentialType{core.TypePassword, core.TypeToken}},
		{"data_source_id: 1\ntoken_field: oauth_token\nrotate_credentials: true", []core.CredentialType{core.TypePassword, core.TypeToken}},
		{"data_source_id: 7\nverify: false", []core.CredentialType{core.TypePassword}},
		{"data_source_id: 7\nverify: true\ntest_query: SELECT 1\ntest_timeout_seconds: 4", []core.CredentialType{core.TypePassword}},
		{"data_source_id: 7\nrotate_credentials: false", []core.CredentialType{core.TypePassword}},
	}
	for _, tc := range cases {
		t.Run(tc.block, func(t *testing.T) {
			a, err := e.platform.NewTarget(yamlNode(t, tc.block))
			require.NoError(t, err)
			assert.Equal(t, tc.accepts, a.Accepts())
		})
	}
}

func TestConfigBad(t *testing.T) {
	e := newEnv(t, testToken) // platform timeout 5s
	cases := []struct {
		name, block, want string
	}{
		{"unknown key", "data_source_id: 1\ndatasource: 2", `line 2: unknown key "datasource"`},
		{"missing data_source_id", "token_field: api_key\nverify: true", "line 1: rivergen target needs data_source_id"},
		{"null data_source_id", "verify: true\ndata_source_id:", "line 2: rivergen target needs data_source_id"},
		{"zero data_source_id", "verify: true\ndata_source_id: 0", "line 2: data_source_id must be a positive integer"},
		{"negative data_source_id", "data_source_id: -3", "line 1: data_source_id must be a positive integer"},
		{"string data_source_id", "data_source_id: ds-1", "line 1: cannot read"},
		{"float data_source_id", "data_source_id: 1.5", "line 1: data_source_id must be an integer, got 1.5"},
		{"float timeout", "data_source_id: 1\ntest_timeout_seconds: 2.5", "line 2: test_timeout_seconds must be an integer, got 2.5"},
		{"bad token_field", "data_source_id: 1\ntoken_field: password", `line 2: token_field "password" is not a RiverGen credential field`},
		{"empty token_field", "data_source_id: 1\ntoken_field: ''", "line 2: token_field is empty"},
		{"bad rotate_credentials", "data_source_id: 1\nrotate_credentials: sometimes", "line 2: cannot read"},
		{"test_query without verify", "data_source_id: 1\nverify: false\ntest_query: SELECT 1", "line 3: test_query has no effect with verify: false"},
		{"timeout without verify", "data_source_id: 1\nverify: false\ntest_timeout_seconds: 2", "line 3: test_timeout_seconds has no effect with verify: false"},
		{"empty test_query", "data_source_id: 1\ntest_query: ''", "line 2: test_query is empty"},
		{"zero timeout", "data_source_id: 1\ntest_timeout_seconds: 0", "line 2: test_timeout_seconds must be a positive number"},
		{"timeout above platform timeout", "data_source_id: 1\ntest_timeout_seconds: 5", "line 2: test_timeout_seconds (5s) must be shorter than the timeout of platform"},
		{"not a mapping", "- data_source_id: 1", "line 1: a rivergen target must be a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := e.platform.NewTarget(yamlNode(t, tc.block))
			require.Error(t, err)
			assert.Nil(t, a)
			assert.Contains(t, err.Error(), tc.want)
			assert.Regexp(t, `line \d+`, err.Error())
		})
	}
}

// A target nested in a bigger file reports the file's line numbers.
func TestConfigLineIsTheFileLine(t *testing.T) {
	e := newEnv(t, testToken)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("targets:\n  - data_source_id: 1\n  - data_source_id: 2\n    token_field: apikey\n"), &doc))
	targets := doc.Content[0].Content[1].Content
	_, err := e.platform.NewTarget(targets[0])
	require.NoError(t, err)
	_, err = e.platform.NewTarget(targets[1])
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "line 4: "), err.Error())
}

// Without a platform timeout any positive test timeout is fine.
func TestConfigTimeoutWithoutPlatformTimeout(t *testing.T) {
	p, err := rivergen.NewPlatform(vendorhttp.Platform{Name: "rg", BaseURL: "https://api.rivergen.example", Token: core.NewSecret("x")})
	require.NoError(t, err)
	_, err = p.NewTarget(yamlNode(t, "data_source_id: 1\ntest_timeout_seconds: 600"))
	require.NoError(t, err)
}

// verify defaults to true: a target without the key calls Test Connection.
func TestConfigVerifyDefaultsTrue(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.target(t, "data_source_id: 1")
	req, err := a.Build(password(pw1))
	require.NoError(t, err)
	res, err := adaptertest.Deliver(context.Background(), a, req)
	require.NoError(t, err)
	assert.True(t, res.Send.Check, "Send asks for verification")
	assert.True(t, res.Verify.Verified)
	assert.Equal(t, 1, e.fake.TestCount(1))
}

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Vendor{
		New: func(t *testing.T) (core.Adapter, adaptertest.Fake) {
			e := newEnv(t, testToken)
			return e.target(t, "data_source_id: 1"), e.fake
		},
		Good:    mustCred(t, `{"type":"password","password":"conformance-Secret-7c1d9e"}`),
		Secret:  "conformance-Secret-7c1d9e",
		Refused: mustCred(t, `{"type":"aws_access_key","access_key_id":"AKIA","secret_access_key":"conformance-aws-x"}`),
	})
}

func mustCred(t *testing.T, js string) core.Credential {
	t.Helper()
	c, err := core.DecodeCredential([]byte(js))
	if err != nil {
		t.Fatalf("DecodeCredential: %v", err)
	}
	return c
}
