package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb/snowflake"
)

// keyPairTargets are targets that take a key_pair: Felt credential mode and Databrain snowflake.
const keyPairTargets = `      - {platform: felt, source_id: s, credential_id: c, credential_type: key_pair}
      - platform: databrain
        datasource_type: snowflake
        name: sf
        fields: {host: acme.snowflakecomputing.com, username: SVC_BI, role: R, warehouse: W, database: D, schema: S}
`

// snowflakeSource adds a Snowflake key-pair source to the design example; adminKey is looked up
// as ${SF_ADMIN_KEY}.
func snowflakeSource(block, targets string) string {
	return designExample + `  sf:
    rotation:
` + block + `    targets:
` + targets
}

func parseWithKey(t *testing.T, doc string, adminKey core.Secret) (*config.Config, error) {
	t.Helper()
	return config.Parse([]byte(doc), func(k string) (string, bool) {
		if k == "SF_ADMIN_KEY" {
			return adminKey.Reveal(), true
		}
		return lookup(k)
	})
}

func TestSnowflakeRotationBlock(t *testing.T) {
	adminKey, err := snowflake.GenerateKey(2048)
	require.NoError(t, err)
	cfg, err := parseWithKey(t, snowflakeSource(`      engine: snowflake
      admin_dsn: snowflake://CREDSYNC_ADMIN@myorg-acct/?role=SECURITYADMIN
      admin_private_key: ${SF_ADMIN_KEY}
      users: [SVC_BI]
      key: {bits: 2048}
      retire_after: 2h
`, keyPairTargets), adminKey)
	require.NoError(t, err)
	var sr *core.SourceRotation
	for _, s := range cfg.Sources {
		if s.Name == "sf" {
			sr = s.Rotation
		}
	}
	require.NotNil(t, sr)
	require.Equal(t, []string{snowflake.SlotKey1, snowflake.SlotKey2}, sr.Users, "the user's two key slots alternate")
	require.Equal(t, "SVC_BI", sr.KeyUser)
	require.Equal(t, core.TypeKeyPair, sr.CredentialType())
	require.NotNil(t, sr.Initial, "the held slot comes from Snowflake before the first rotation")
	key, err := sr.Generate()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(key.Reveal(), "-----BEGIN PRIVATE KEY-----"), "a PEM private key is generated")
	_, err = snowflake.PublicKeyFingerprint(key)
	require.NoError(t, err)
}

func TestSnowflakeRotationRefusals(t *testing.T) {
	adminKey, err := snowflake.GenerateKey(2048)
	require.NoError(t, err)
	const dsn = "      engine: snowflake\n      admin_dsn: snowflake://ADM@acct/\n"
	const withKey = dsn + "      admin_private_key: ${SF_ADMIN_KEY}\n"
	for name, tc := range map[string]struct{ block, targets, want string }{
		"two users":          {withKey + "      users: [A, B]\n", keyPairTargets, "name exactly one"},
		"a password policy":  {withKey + "      users: [A]\n      password: {length: 40}\n", keyPairTargets, "rotates a key pair, not a password"},
		"odd key size":       {withKey + "      users: [A]\n      key: {bits: 1024}\n", keyPairTargets, "2048 or 4096"},
		"no admin key":       {dsn + "      users: [A]\n", keyPairTargets, "admin_private_key is required"},
		"a dsn of another":   {"      engine: snowflake\n      admin_dsn: postgres://a:b@h/db\n      admin_private_key: ${SF_ADMIN_KEY}\n      users: [A]\n", keyPairTargets, "admin_dsn"},
		"a password target":  {withKey + "      users: [A]\n", "      - platform: rivergen\n        data_source_id: 2\n", "takes no key_pair"},
		"key for a password": {"      engine: postgres\n      admin_dsn: x\n      users: [a]\n      key: {bits: 2048}\n", "      - platform: rivergen\n        data_source_id: 2\n", "for engine snowflake"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseWithKey(t, snowflakeSource(tc.block, tc.targets), adminKey)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "line ", "the error names its line")
			require.NotContains(t, err.Error(), "PRIVATE KEY")
		})
	}
	// An admin key that is not a PEM private key is refused without being quoted.
	_, err = parseWithKey(t, snowflakeSource(withKey+"      users: [A]\n", keyPairTargets), core.NewSecret("not-a-key-Zq81"))
	require.ErrorContains(t, err, "admin_private_key")
	require.NotContains(t, err.Error(), "not-a-key-Zq81")
}
