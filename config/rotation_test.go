package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/config"
)

// rotating adds a source credsync rotates itself to the design example.
func rotating(block string) string {
	return designExample + `  owned:
    rotation:
` + block + `    targets:
      - platform: rivergen
        data_source_id: 2
`
}

func TestRotationBlock(t *testing.T) {
	cfg, err := config.Parse([]byte(rotating(`      engine: postgres
      admin_dsn: postgres://admin:pw@db:5432/app
      users: [analytics_a, analytics_b]
      password: {length: 40, symbols: true}
      retire_after: 2h
      schedule: 720h
`)), lookup)
	require.NoError(t, err)
	var src = cfg.Sources[0]
	for _, s := range cfg.Sources {
		if s.Name == "owned" {
			src = s
		}
	}
	require.NotNil(t, src.Rotation)
	require.Equal(t, []string{"analytics_a", "analytics_b"}, src.Rotation.Users)
	require.Equal(t, 2*time.Hour, src.Rotation.RetireAfter)
	require.Equal(t, 720*time.Hour, src.Rotation.Schedule)
	pw, err := src.Rotation.Generate()
	require.NoError(t, err)
	require.Len(t, pw.Reveal(), 40, "the policy reaches the generator")

	cfg, err = config.Parse([]byte(rotating("      engine: mysql\n      admin_dsn: admin:pw@tcp(db:3306)/\n      users: [solo]\n")), lookup)
	require.NoError(t, err)
	for _, s := range cfg.Sources {
		if s.Name == "owned" {
			require.Equal(t, config.DefaultRetireAfter, s.Rotation.RetireAfter)
			require.Zero(t, s.Rotation.Schedule)
		}
	}
}

func TestRotationBlockRefusals(t *testing.T) {
	for name, tc := range map[string]struct{ block, want string }{
		"unknown engine":  {"      engine: oracle\n      admin_dsn: x\n      users: [a]\n", "engine"},
		"no admin dsn":    {"      engine: postgres\n      users: [a]\n", "admin_dsn is required"},
		"three users":     {"      engine: postgres\n      admin_dsn: x\n      users: [a, b, c]\n", "users"},
		"the same user":   {"      engine: postgres\n      admin_dsn: x\n      users: [a, a]\n", "users"},
		"no users":        {"      engine: postgres\n      admin_dsn: x\n", "users"},
		"short password":  {"      engine: postgres\n      admin_dsn: x\n      users: [a]\n      password: {length: 8}\n", "between 16 and 128"},
		"too often":       {"      engine: postgres\n      admin_dsn: x\n      users: [a]\n      schedule: 30s\n", "at most once a minute"},
		"negative retire": {"      engine: postgres\n      admin_dsn: x\n      users: [a]\n      retire_after: -1h\n", "must not be negative"},
		"an unknown key":  {"      engine: postgres\n      admin_dsn: x\n      users: [a]\n      rotate_every: 1h\n", "rotate_every"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Parse([]byte(rotating(tc.block)), lookup)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "line ", "the error names its line")
		})
	}
	// A target that takes no password cannot be on a rotating source.
	doc := strings.Replace(rotating("      engine: postgres\n      admin_dsn: x\n      users: [a]\n"),
		"      - platform: rivergen\n        data_source_id: 2\n",
		"      - platform: felt\n        source_id: s\n        credential_id: c\n        credential_type: snowflake_pat\n", 1)
	_, err := config.Parse([]byte(doc), lookup)
	require.ErrorContains(t, err, "takes no password")
}
