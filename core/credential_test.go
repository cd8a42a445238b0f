package core_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
	"github.com/stretchr/testify/require"
)

func TestDecodeCredentialEveryType(t *testing.T) {
	cases := map[string]string{
		"password":                `{"type":"password","username":"u","password":"p"}`,
		"key_pair":                `{"type":"key_pair","private_key":"k","private_key_passphrase":"pp","private_key_name":"n"}`,
		"token":                   `{"type":"token","token":"t"}`,
		"oauth_client":            `{"type":"oauth_client","client_id":"c","client_secret":"s"}`,
		"gcp_object":              `{"type":"gcp_service_account","service_account_json":{"type":"service_account","private_key":"k"},"filename":"sa.json"}`,
		"gcp_string":              `{"type":"gcp_service_account","service_account_json":"{\"type\":\"service_account\"}"}`,
		"aws_access_key":          `{"type":"aws_access_key","access_key_id":"AK","secret_access_key":"s"}`,
		"aws_assume_role":         `{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r","role_session_name":"s"}`,
		"azure_connection_string": `{"type":"azure_connection_string","connection_string":"c"}`,
		"custom_headers":          `{"type":"custom_headers","headers":[{"name":"X-Key","value":"v","sensitive":true}]}`,
		"with_ssh":                `{"type":"password","password":"p","ssh_tunnel":{"private_key":"k","passphrase":"q"}}`,
	}
	for name, js := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := core.DecodeCredential([]byte(js))
			require.NoError(t, err)
			if c.Type != core.TypeAWSAssumeRole { // the only type without a secret
				require.NotEmpty(t, c.Secrets())
			}
		})
	}
	c, err := core.DecodeCredential([]byte(cases["gcp_string"]))
	require.NoError(t, err)
	require.Equal(t, `{"type":"service_account"}`, c.ServiceAccountJSON.Reveal())
}

func TestDecodeCredentialRejects(t *testing.T) {
	cases := map[string]struct{ js, field, msg string }{
		"not an object":   {`[1]`, "credential", "JSON object"},
		"no type":         {`{"password":"p"}`, "credential.type", "required"},
		"unknown type":    {`{"type":"kerberos"}`, "credential.type", "unknown type"},
		"missing secret":  {`{"type":"password","username":"u"}`, "credential.password", "required"},
		"empty secret":    {`{"type":"token","token":""}`, "credential.token", "required"},
		"foreign field":   {`{"type":"token","token":"t","password":"p"}`, "credential.password", "not a field of type token"},
		"wrong json type": {`{"type":"password","password":12}`, "credential", "JSON string"},
		"bad gcp":         {`{"type":"gcp_service_account","service_account_json":"not json"}`, "credential.service_account_json", "JSON object"},
		"header no value": {`{"type":"custom_headers","headers":[{"name":"X"}]}`, "credential.headers[0].value", "required"},
		"ssh no key":      {`{"type":"password","password":"p","ssh_tunnel":{"passphrase":"q"}}`, "credential.ssh_tunnel.private_key", "required"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := core.DecodeCredential([]byte(tc.js))
			var ie *core.InputError
			require.True(t, errors.As(err, &ie), "want *InputError, got %v", err)
			found := false
			for _, p := range ie.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					found = true
				}
			}
			require.True(t, found, "problems %+v lack %s: %s", ie.Problems, tc.field, tc.msg)
		})
	}
	// A rejected secret value is never echoed back.
	_, err := core.DecodeCredential([]byte(`{"type":"password","password":["very-secret-value"]}`))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "very-secret-value")
}

func TestEncodeClearRoundTrips(t *testing.T) {
	for _, js := range []string{
		`{"type":"password","username":"u","password":"p"}`,
		`{"type":"key_pair","private_key":"k","private_key_passphrase":"pp","private_key_name":"n"}`,
		`{"type":"gcp_service_account","service_account_json":{"type":"service_account","k":"v"},"filename":"f.json"}`,
		`{"type":"custom_headers","headers":[{"name":"X","value":"v","sensitive":true},{"name":"Y","value":"w","sensitive":false}]}`,
		`{"type":"token","token":"t","ssh_tunnel":{"private_key":"sk","passphrase":"sp"}}`,
		`{"type":"aws_access_key","access_key_id":"A","secret_access_key":"S"}`,
		`{"type":"aws_assume_role","role_arn":"r","role_session_name":"s"}`,
		`{"type":"azure_connection_string","connection_string":"c"}`,
		`{"type":"oauth_client","client_id":"c","client_secret":"s"}`,
	} {
		c, err := core.DecodeCredential([]byte(js))
		require.NoError(t, err)
		clear, err := c.EncodeClear()
		require.NoError(t, err)
		back, err := core.DecodeCredential(clear)
		require.NoError(t, err, string(clear))
		again, err := back.EncodeClear()
		require.NoError(t, err)
		require.JSONEq(t, string(clear), string(again))
		require.ElementsMatch(t, c.Secrets(), back.Secrets())
	}
}
