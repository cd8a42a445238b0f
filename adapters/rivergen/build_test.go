package rivergen_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

func TestBuildRefuses(t *testing.T) {
	// Build is pure: a platform whose base URL nobody listens on is fine.
	p, err := rivergen.NewPlatform(vendorhttp.Platform{Name: "rg", BaseURL: "http://127.0.0.1:1", Token: core.NewSecret("x")})
	require.NoError(t, err)
	plain, err := p.NewTarget(yamlNode(t, "data_source_id: 3"))
	require.NoError(t, err)
	withToken, err := p.NewTarget(yamlNode(t, "data_source_id: 3\ntoken_field: api_key"))
	require.NoError(t, err)

	cases := []struct {
		name   string
		target core.Adapter
		cred   core.Credential
		field  string
		want   string
	}{
		{"key_pair", withToken, core.Credential{Type: core.TypeKeyPair, PrivateKey: core.NewSecret("s3cr3t-key-1"), PrivateKeyPassphrase: core.NewSecret("s3cr3t-kp-pass")},
			"credential.type", "cannot take a key_pair credential: RiverGen has no private-key field"},
		{"token without token_field", plain, token(tok1), "credential.type", "has no token_field configured (api_key or oauth_token)"},
		{"empty token", withToken, core.Credential{Type: core.TypeToken}, "credential.token", "writes a token credential to its api_key field"},
		{"empty password", plain, core.Credential{Type: core.TypePassword, Username: "u"}, "credential.password", "is required"},
		{"ssh tunnel without key", plain, core.Credential{Type: core.TypePassword, Password: core.NewSecret(pw1), SSHTunnel: &core.SSHTunnel{Passphrase: core.NewSecret(sshPass1)}},
			"credential.ssh_tunnel.private_key", "is required when ssh_tunnel is given"},
		{"oauth_client", withToken, core.Credential{Type: core.TypeOAuthClient, ClientID: "id", ClientSecret: core.NewSecret("s3cr3t-cs")},
			"credential.type", `cannot take a "oauth_client" credential; it accepts password, token`},
		{"gcp_service_account", plain, core.Credential{Type: core.TypeGCPServiceAccount, ServiceAccountJSON: core.NewSecretJSON(`{"private_key":"s3cr3t-sa"}`)},
			"credential.type", `cannot take a "gcp_service_account" credential; it accepts password`},
		{"aws_access_key", plain, core.Credential{Type: core.TypeAWSAccessKey, AccessKeyID: "AKIA", SecretAccessKey: core.NewSecret("s3cr3t-aws")}, "credential.type", "aws_access_key"},
		{"aws_assume_role", plain, core.Credential{Type: core.TypeAWSAssumeRole, RoleARN: "arn:aws:iam::1:role/x", RoleSessionName: "s"}, "credential.type", "aws_assume_role"},
		{"azure_connection_string", plain, core.Credential{Type: core.TypeAzureConnectionString, ConnectionString: core.NewSecret("s3cr3t-az")}, "credential.type", "azure_connection_string"},
		{"custom_headers", plain, core.Credential{Type: core.TypeCustomHeaders, Headers: []core.Header{{Name: "X", Value: core.NewSecret("s3cr3t-h")}}}, "credential.type", "custom_headers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.target.Build(tc.cred)
			require.Error(t, err)
			var ie *core.InputError
			require.True(t, errors.As(err, &ie), "want *core.InputError, got %T", err)
			require.NotEmpty(t, ie.Problems)
			assert.Equal(t, tc.field, ie.Problems[0].Field)
			assert.Contains(t, ie.Problems[0].Message, tc.want)
			assert.Contains(t, ie.Problems[0].Message, "rivergen data source 3", "the message names the target")
			assert.NotContains(t, err.Error(), allSecrets)
			assert.Equal(t, core.Request{}, req)
		})
	}
}

func TestBuildBodies(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.target(t, "data_source_id: 12\ntoken_field: oauth_token\nrotate_credentials: true")
	req, err := a.Build(core.Credential{Type: core.TypeToken, Token: core.NewSecret(tok1),
		SSHTunnel: &core.SSHTunnel{PrivateKey: core.NewSecret(sshKey1), Passphrase: core.NewSecret(sshPass1)}})
	require.NoError(t, err)
	assert.Equal(t, "PATCH", req.Method)
	assert.Equal(t, "/api/v1/data-sources/12/credentials", req.Path)

	dry, err := json.Marshal(req)
	require.NoError(t, err)
	assert.JSONEq(t, `{"method":"PATCH","path":"/api/v1/data-sources/12/credentials","body":{
		"oauth_token":"[REDACTED]","ssh_private_key":"[REDACTED]","ssh_passphrase":"[REDACTED]","rotate_credentials":true}}`, string(dry))

	wire, err := req.WireBody()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(wire, &got))
	assert.Equal(t, map[string]any{"oauth_token": tok1, "ssh_private_key": sshKey1, "ssh_passphrase": sshPass1, "rotate_credentials": true}, got)
	assert.Empty(t, e.fake.Requests(), "Build sends nothing")

	// rotate_credentials false is never sent; username only when set.
	b := e.target(t, "data_source_id: 12")
	req, err = b.Build(password(pw1))
	require.NoError(t, err)
	wire, err = req.WireBody()
	require.NoError(t, err)
	assert.JSONEq(t, `{"password":"`+pw1+`"}`, string(wire))
	dry, err = json.Marshal(req)
	require.NoError(t, err)
	assert.NotContains(t, string(dry), allSecrets)
}
