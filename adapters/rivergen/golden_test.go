package rivergen_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/golden"
)

// TestGoldenUpdate runs Build+Send for every credential type × target setting RiverGen takes and
// compares the request the fake received with testdata/rivergen/<case>.golden.
func TestGoldenUpdate(t *testing.T) {
	cases := []struct {
		name  string
		block string
		cred  core.Credential
		want  rivergenfake.Credentials // what the fake stores afterwards (Updates etc. checked apart)
	}{
		{
			name:  "password",
			block: "data_source_id: 1",
			cred:  password(pw1),
			want:  rivergenfake.Credentials{Username: "olduser", Password: pw1, APIKey: "old-key"},
		},
		{
			name:  "password_with_username",
			block: "data_source_id: 1",
			cred:  core.Credential{Type: core.TypePassword, Username: "newuser", Password: core.NewSecret(pw1)},
			want:  rivergenfake.Credentials{Username: "newuser", Password: pw1, APIKey: "old-key"},
		},
		{
			name:  "token_api_key",
			block: "data_source_id: 1\ntoken_field: api_key",
			cred:  token(tok1),
			want:  rivergenfake.Credentials{Username: "olduser", Password: "old-pw", APIKey: tok1},
		},
		{
			name:  "token_oauth_token",
			block: "data_source_id: 1\ntoken_field: oauth_token",
			cred:  token(tok1),
			want:  rivergenfake.Credentials{Username: "olduser", Password: "old-pw", APIKey: "old-key", OAuthToken: tok1},
		},
		{
			name:  "password_ssh_tunnel",
			block: "data_source_id: 1",
			cred: core.Credential{Type: core.TypePassword, Password: core.NewSecret(pw1),
				SSHTunnel: &core.SSHTunnel{PrivateKey: core.NewSecret(sshKey1), Passphrase: core.NewSecret(sshPass1)}},
			want: rivergenfake.Credentials{Username: "olduser", Password: pw1, APIKey: "old-key", SSHPrivateKey: sshKey1, SSHPassphrase: sshPass1},
		},
		{
			name:  "token_api_key_ssh_tunnel",
			block: "data_source_id: 1\ntoken_field: api_key",
			cred: core.Credential{Type: core.TypeToken, Token: core.NewSecret(tok1),
				SSHTunnel: &core.SSHTunnel{PrivateKey: core.NewSecret(sshKey1)}},
			want: rivergenfake.Credentials{Username: "olduser", Password: "old-pw", APIKey: tok1, SSHPrivateKey: sshKey1},
		},
		{
			name:  "rotate_credentials",
			block: "data_source_id: 1\nrotate_credentials: true",
			cred:  core.Credential{Type: core.TypePassword, Username: "newuser", Password: core.NewSecret(pw1)},
			want:  rivergenfake.Credentials{Username: "newuser", Password: pw1, APIKey: "old-key", Rotations: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testToken)
			e.fake.SetCredentials(1, rivergenfake.Credentials{Username: "olduser", Password: "old-pw", APIKey: "old-key"})
			a := e.target(t, tc.block)

			req, err := a.Build(tc.cred)
			require.NoError(t, err)
			dry, err := json.Marshal(req)
			require.NoError(t, err)
			assert.NotContains(t, string(dry), allSecrets, "dry run shows a secret")

			res, retry, err := a.Send(context.Background(), req)
			require.NoError(t, err)
			assert.False(t, retry)
			assert.True(t, res.Check, "verify defaults to true")

			reqs := e.fake.Requests()
			require.Len(t, reqs, 1, "Send makes exactly one call")
			golden.Assert(t, "rivergen/"+tc.name+".golden", golden.Format(reqs[0]))

			got, ok := e.fake.Credentials(1)
			require.True(t, ok)
			assert.Equal(t, 1, got.Updates)
			assert.False(t, got.UpdatedAt.IsZero())
			got.Updates, got.UpdatedAt = 0, time.Time{}
			assert.Equal(t, tc.want, got, "the fake stores exactly the rotated fields")
		})
	}
}

// TestGoldenVerify records the Test Connection request, with and without test settings.
func TestGoldenVerify(t *testing.T) {
	cases := []struct{ name, block, body string }{
		{"verify_test_connection", "data_source_id: 1\ntest_query: SELECT 1\ntest_timeout_seconds: 3", `{"test_query":"SELECT 1","timeout_seconds":3}`},
		{"verify_test_connection_default", "data_source_id: 1", `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testToken)
			a := e.target(t, tc.block)
			v, retry, err := a.Verify(context.Background(), core.VerifyRequest{})
			require.NoError(t, err)
			assert.False(t, retry)
			assert.True(t, v.Verified)
			reqs := e.fake.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.body, strings.TrimSpace(string(reqs[0].Body)))
			assert.Equal(t, 1, e.fake.TestCount(1))
			golden.Assert(t, "rivergen/"+tc.name+".golden", golden.Format(reqs[0]))
		})
	}
}
