package core_test

import (
	"encoding/base64"
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

const (
	testPrivateKey   = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	testPrivateKeyID = "3f1c9a0d5e7b2468ace0f13579bdf02468ace013"
	testServiceDoc   = `{"type":"service_account","project_id":"acme-analytics","private_key_id":"` + testPrivateKeyID + `",` +
		`"private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n",` +
		`"client_email":"loader@acme-analytics.iam.gserviceaccount.com","client_id":"100000000000000000001",` +
		`"auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token"}`
)

// TestSecretsOfEveryField: each secret field is a secret, identifiers are not, and a service account
// gives the secrets inside it rather than the whole document, whose 8-character pieces would
// redact ordinary words out of every vendor message.
func TestSecretsOfEveryField(t *testing.T) {
	c, err := core.DecodeCredential([]byte(`{"type":"gcp_service_account","filename":"sa.json","service_account_json":` + testServiceDoc + `}`))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{testPrivateKey, testPrivateKeyID}, c.Secrets())
	sc := core.NewScrubber(c.Secrets()...)
	msg := `{"error":"the \"type\": \"service_account\" key of project acme-analytics (loader@acme-analytics.iam.gserviceaccount.com, client 100000000000000000001) was refused by https://oauth2.googleapis.com/token"}`
	require.Equal(t, msg, sc.String(msg), "the non-secret fields of the document are ordinary words")
	out := sc.String("echo: " + testServiceDoc[40:300])
	require.Empty(t, leak(out, testPrivateKey), out)
	require.Empty(t, leak(out, testPrivateKeyID), out)
	require.Contains(t, out, `"private_key_id":"`+core.Redacted+`","private_key":"`+core.Redacted+`","client_email":"loader@`, "a quote of the document loses its secret fields only")

	// A document with no secret-looking field is kept whole.
	c, err = core.DecodeCredential([]byte(`{"type":"gcp_service_account","service_account_json":{"type":"external_account","audience":"//iam.googleapis.com/x"}}`))
	require.NoError(t, err)
	require.Equal(t, []string{`{"type":"external_account","audience":"//iam.googleapis.com/x"}`}, c.Secrets())

	c, err = core.DecodeCredential([]byte(`{"type":"custom_headers","headers":[{"name":"X-Key","value":"v1","sensitive":true},{"name":"X-Org","value":"v2","sensitive":false}],
		"ssh_tunnel":{"private_key":"sk","passphrase":"sp"}}`))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v1", "v2", "sk", "sp"}, c.Secrets(), "every header value is a secret, sensitive or not")

	for js, want := range map[string][]string{
		`{"type":"password","username":"svc","password":"p"}`:                                                         {"p"},
		`{"type":"key_pair","username":"svc","private_key":"k","private_key_passphrase":"pp","private_key_name":"n"}`: {"k", "pp"},
		`{"type":"token","token":"t"}`:                                                          {"t"},
		`{"type":"oauth_client","client_id":"cid","client_secret":"cs"}`:                        {"cs"},
		`{"type":"aws_access_key","access_key_id":"AKIA","secret_access_key":"sak"}`:            {"sak"},
		`{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r","role_session_name":"s"}`: nil,
		`{"type":"azure_connection_string","connection_string":"cs"}`:                           {"cs"},
	} {
		c, err := core.DecodeCredential([]byte(js))
		require.NoError(t, err)
		require.ElementsMatch(t, want, c.Secrets(), js)
	}
}

// TestRequestSecretsOfDocuments: a service account sent as a JSON value, as a string (Databrain's
// credentials_json) or base64-encoded (Felt's base64_encoded_service_account) gives its secret
// fields.
func TestRequestSecretsOfDocuments(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(testServiceDoc))
	for name, tc := range map[string]struct {
		v    any
		want []string
	}{
		"object":                              {core.NewSecretJSON(testServiceDoc), []string{testPrivateKey, testPrivateKeyID}},
		"string":                              {core.NewSecret(testServiceDoc), []string{testPrivateKey, testPrivateKeyID}},
		"base64":                              {core.NewSecret(b64), []string{b64, testPrivateKey, testPrivateKeyID}},
		"plain":                               {core.NewSecret("hunter2-hunter2"), []string{"hunter2-hunter2"}},
		"json password without secret fields": {core.NewSecret(`{"a":1}`), []string{`{"a":1}`}},
	} {
		req := core.Request{Body: map[string]any{"x": tc.v}}
		require.ElementsMatch(t, tc.want, req.Secrets(), name)
	}
}
