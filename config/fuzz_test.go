package config_test

import (
	"context"
	"testing"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
	"github.com/credsync/credsync/store/memstore"
)

var fuzzEnv = map[string]string{
	"CREDSYNC_API_TOKEN":      "api-token-0123456789abcdef",
	"FELT_API_TOKEN":          "felt-token-0123456789abcdef",
	"DATABRAIN_SERVICE_TOKEN": "databrain-token-0123456789",
	"RIVERGEN_ACCESS_TOKEN":   "rivergen-token-0123456789",
	"PORT":                    "5432",
	"DB_HOST":                 "db.internal",
}

func fuzzLookup(k string) (string, bool) { v, ok := fuzzEnv[k]; return v, ok }

// fuzzSeedFull is a config with every vendor and most target shapes.
const fuzzSeedFull = `server:
  listen: 127.0.0.1:8080
  api_tokens:
    - name: rotation-job
      token: ${CREDSYNC_API_TOKEN}
  rotation_deadline: 5m
store:
  driver: memory
platforms:
  felt:
    vendor: felt
    base_url: https://felt.com
    token: ${FELT_API_TOKEN}
    timeout: 10s
    max_attempts: 3
  databrain:
    vendor: databrain
    base_url: https://api.usedatabrain.com
    token: ${DATABRAIN_SERVICE_TOKEN}
    max_concurrency: 4
  rivergen:
    vendor: rivergen
    base_url: https://api.rivergen.com
    token: ${RIVERGEN_ACCESS_TOKEN}
sources:
  warehouse-pg:
    targets:
      - platform: felt
        source_id: src_pg
        connection_type: postgresql
        poll_interval: 100ms
      - platform: databrain
        datasource_type: postgres
        name: production-postgres
        fields:
          host: ${DB_HOST}
          port: ${PORT}
          username: dbuser
          database: analytics
          schema: public
      - platform: rivergen
        data_source_id: 1
        test_query: SELECT 1
        test_timeout_seconds: 5
  snowflake-key:
    targets:
      - platform: felt
        name: felt-snowflake-key
        source_id: src_sf
        credential_id: cred_kp
        credential_type: key_pair
      - platform: databrain
        datasource_type: snowflake
        name: snowflake-prod
        fields: {host: acme.snowflakecomputing.com, username: SVC_BI, role: ANALYST, warehouse: BI_WH, database: ANALYTICS, schema: PUBLIC}
  analytics-token:
    targets:
      - platform: rivergen
        name: rivergen-api
        data_source_id: 2
        token_field: api_key
        verify: false
`

// sampleCredentials are one credential of each type, for Build.
func sampleCredentials() map[core.CredentialType]core.Credential {
	s := core.NewSecret
	return map[core.CredentialType]core.Credential{
		core.TypePassword:              {Type: core.TypePassword, Username: "svc", Password: s("pw"), SSHTunnel: &core.SSHTunnel{PrivateKey: s("ssh-key")}},
		core.TypeKeyPair:               {Type: core.TypeKeyPair, PrivateKey: s("-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----"), PrivateKeyPassphrase: s("pp")},
		core.TypeToken:                 {Type: core.TypeToken, Token: s("tok")},
		core.TypeOAuthClient:           {Type: core.TypeOAuthClient, ClientID: "id", ClientSecret: s("cs")},
		core.TypeGCPServiceAccount:     {Type: core.TypeGCPServiceAccount, ServiceAccountJSON: core.NewSecretJSON(`{"type":"service_account","private_key":"k"}`)},
		core.TypeAWSAccessKey:          {Type: core.TypeAWSAccessKey, AccessKeyID: "AKIA", SecretAccessKey: s("sak")},
		core.TypeAWSAssumeRole:         {Type: core.TypeAWSAssumeRole, RoleARN: "arn:aws:iam::1:role/r", RoleSessionName: "s"},
		core.TypeAzureConnectionString: {Type: core.TypeAzureConnectionString, ConnectionString: s("cs")},
		core.TypeCustomHeaders:         {Type: core.TypeCustomHeaders, Headers: []core.Header{{Name: "X", Value: s("v"), Sensitive: true}}},
	}
}

// FuzzParse feeds the config loader arbitrary documents. It must never panic; what it refuses it
// explains; what it accepts the engine accepts too, and every target it built can build a
// request for each credential type it says it takes without panicking.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fuzzSeedFull,
		"server:\n  api_tokens:\n    - name: a\n      token: ${CREDSYNC_API_TOKEN}\nstore:\n  driver: sqlite\n  dsn: x.db\nplatforms:\n  f:\n    vendor: felt\n    base_url: http://127.0.0.1:1\n    token: t\nsources:\n  s:\n    targets:\n      - platform: f\n        source_id: a\n        connection_type: bigquery\n",
		"server:\n  api_tokens: []\n",
		"server: {api_tokens: [{name: a, token: ${MISSING}}]}\n",
		"platforms:\n  x:\n    vendor: nope\n",
		"sources:\n  s:\n    targets:\n      - platform: unknown\n",
		"a: &a [*a, *a]\n",
		"- just\n- a\n- list\n",
		"",
		"{",
		"server:\n  listen: 127.0.0.1:8080\n  unknown_key: 1\n",
	} {
		f.Add([]byte(seed))
	}
	creds := sampleCredentials()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, fuzzLookup)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			return
		}
		if len(cfg.File.Server.APITokens) == 0 {
			t.Fatal("accepted a config without API tokens")
		}
		platforms := map[string]bool{}
		for _, p := range cfg.Platforms {
			platforms[p.Name] = true
		}
		for _, s := range cfg.Sources {
			names := map[string]bool{}
			for _, tg := range s.Targets {
				if tg.Adapter == nil || !platforms[tg.Platform] || names[tg.Name] {
					t.Fatalf("source %q: target %+v is not usable", s.Name, tg)
				}
				names[tg.Name] = true
				accepts := tg.Adapter.Accepts()
				if len(accepts) == 0 {
					t.Fatalf("source %q target %q takes no credential type", s.Name, tg.Name)
				}
				for _, typ := range accepts {
					if c, ok := creds[typ]; ok {
						_, _ = tg.Adapter.Build(c)
					}
				}
			}
		}
		eng, err := core.NewEngine(core.EngineConfig{Platforms: cfg.Platforms, Sources: cfg.Sources, Store: memstore.New()})
		if err != nil {
			t.Fatalf("the engine refuses what the config loader accepted: %v", err)
		}
		_ = eng.Shutdown(context.Background())
	})
}

// TestFuzzSeedLoads keeps FuzzParse's main seed a config that loads, so that the fuzzer starts
// from the accepting path. The seed takes a Databrain port and host from ${VAR}s, as an operator
// would: an expanded value must keep the YAML type it resolves to (a plain ${PORT} is an int).
func TestFuzzSeedLoads(t *testing.T) {
	cfg, err := config.Parse([]byte(fuzzSeedFull), fuzzLookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 3 {
		t.Fatalf("%d sources", len(cfg.Sources))
	}
}
