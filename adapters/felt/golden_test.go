package felt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/golden"
)

// goldenCase is one credential type × mode: the target block, the vendor objects it refers to,
// and the credential sent.
type goldenCase struct {
	name       string // golden file: testdata/felt/<name>.golden
	config     string
	connection string // the source's connection type
	feltType   string // credential mode: the seeded credential's type
	credential string
	// check asserts what the fake now holds.
	check func(t *testing.T, f *Fake)
}

func credentialCase(feltType, connection, credential string, check func(t *testing.T, fields map[string]any)) goldenCase {
	return goldenCase{
		name:       "credential_" + feltType,
		config:     "source_id: src_1\ncredential_id: cred_1\ncredential_type: " + feltType + "\n",
		connection: connection, feltType: feltType, credential: credential,
		check: func(t *testing.T, f *Fake) {
			t.Helper()
			c, ok := f.Credential("src_1", "cred_1")
			if !ok || c.Type != feltType {
				t.Fatalf("fake credential = %+v, %v", c, ok)
			}
			check(t, c.Fields)
		},
	}
}

func connectionCase(name, connection, credential string, check func(t *testing.T, conn map[string]any)) goldenCase {
	return goldenCase{
		name:       name,
		config:     "source_id: src_1\nconnection_type: " + connection + "\n",
		connection: connection, credential: credential,
		check: func(t *testing.T, f *Fake) {
			t.Helper()
			conn, ok := f.Connection("src_1")
			if !ok || conn["type"] != connection {
				t.Fatalf("fake connection = %v, %v", conn, ok)
			}
			check(t, conn)
		},
	}
}

func wantField(t *testing.T, m map[string]any, key string, want any) {
	t.Helper()
	got, _ := json.Marshal(m[key])
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("fake holds %s = %s, want %s", key, got, exp)
	}
}

func noField(t *testing.T, m map[string]any, key string) {
	t.Helper()
	if _, ok := m[key]; ok {
		t.Errorf("fake holds %s = %v, want it absent", key, m[key])
	}
}

func passwordCase(name, connection, credential, user, password string) goldenCase {
	return connectionCase(name, connection, credential, func(t *testing.T, conn map[string]any) {
		wantField(t, conn, "password", password)
		if user == "" {
			noField(t, conn, "user")
		} else {
			wantField(t, conn, "user", user)
		}
	})
}

func tokenCase(connection string) goldenCase {
	return connectionCase("connection_"+connection, connection, credToken, func(t *testing.T, conn map[string]any) {
		wantField(t, conn, "token", "s3cr3t-token-1")
	})
}

var goldenCases = []goldenCase{
	credentialCase("key_pair", "snowflake", credKeyPair, func(t *testing.T, f map[string]any) {
		wantField(t, f, "private_key", "-----BEGIN PRIVATE KEY-----\nZmFrZS1rZXktMQ==\n-----END PRIVATE KEY-----")
		wantField(t, f, "private_key_passphrase", "s3cr3t-passphrase-1")
		wantField(t, f, "private_key_name", "rsa_key_2")
	}),
	func() goldenCase {
		c := credentialCase("key_pair", "snowflake", credKeyPairMin, func(t *testing.T, f map[string]any) {
			wantField(t, f, "private_key", "-----BEGIN PRIVATE KEY-----\nZmFrZS1rZXktMg==\n-----END PRIVATE KEY-----")
			wantField(t, f, "private_key_name", "seeded-key") // not sent: Felt keeps the name it had
			noField(t, f, "private_key_passphrase")
		})
		c.name = "credential_key_pair_minimal"
		return c
	}(),
	credentialCase("snowflake_pat", "snowflake", credToken, func(t *testing.T, f map[string]any) {
		wantField(t, f, "token", "s3cr3t-token-1")
	}),
	credentialCase("gcp_service_account_json", "stac", credGCP, func(t *testing.T, f map[string]any) {
		wantField(t, f, "service_account_json", map[string]any{"type": "service_account", "project_id": "demo-project",
			"private_key_id": "fake-key-id", "private_key": "s3cr3t-gcp-key-1", "client_email": "felt@demo-project.iam.gserviceaccount.com"})
		wantField(t, f, "service_account_filename", "felt-sa.json")
	}),
	credentialCase("aws_assume_role", "s3_bucket", credAWS, func(t *testing.T, f map[string]any) {
		wantField(t, f, "role_arn", "arn:aws:iam::123456789012:role/felt-reader")
		wantField(t, f, "role_session_name", "felt-credsync")
	}),
	credentialCase("azure_storage_connection_string", "abs_bucket", credAzure, func(t *testing.T, f map[string]any) {
		wantField(t, f, "connection_string", "DefaultEndpointsProtocol=https;AccountName=demo;AccountKey=s3cr3t-azure-1")
	}),
	credentialCase("custom_headers", "stac", credHeaders, func(t *testing.T, f map[string]any) {
		wantField(t, f, "headers", []any{
			map[string]any{"name": "Authorization", "value": "Bearer s3cr3t-header-1", "sensitive": true},
			map[string]any{"name": "X-Tenant", "value": "demo-tenant", "sensitive": false},
		})
	}),
	passwordCase("connection_postgresql", "postgresql", credPassword, "", "s3cr3t-pw-1"),
	passwordCase("connection_postgresql_with_user", "postgresql", credPasswordUser, "svc_felt_2", "s3cr3t-pw-2"),
	passwordCase("connection_mssql", "mssql", credPassword, "", "s3cr3t-pw-1"),
	passwordCase("connection_redshift", "redshift", credPassword, "", "s3cr3t-pw-1"),
	passwordCase("connection_snowflake", "snowflake", credPassword, "", "s3cr3t-pw-1"),
	passwordCase("connection_snowflake_with_user", "snowflake", credPasswordUser, "svc_felt_2", "s3cr3t-pw-2"),
	tokenCase("feature_server"),
	tokenCase("stac"),
	connectionCase("connection_bigquery", "bigquery", credGCP, func(t *testing.T, conn map[string]any) {
		enc, _ := conn["base64_encoded_service_account"].(string)
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatalf("base64_encoded_service_account is not std base64: %v", err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil || doc["private_key"] != "s3cr3t-gcp-key-1" || doc["project_id"] != "demo-project" {
			t.Errorf("decoded service account = %s (%v)", raw, err)
		}
	}),
}

// runGoldenCase seeds a fake, builds and sends the case's credential, checks the fake accepted and
// stored it, and returns the recorded update request.
func runGoldenCase(t *testing.T, c goldenCase) golden.Request {
	t.Helper()
	e := newEnv(t)
	e.fake.AddSource("src_1", c.connection)
	if c.feltType != "" {
		e.fake.AddCredential("src_1", "cred_1", c.feltType)
	}
	tg := e.target(t, c.config+"verify: false\n")
	cr := cred(t, c.credential)
	req, err := tg.Build(cr)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	dry, _ := json.Marshal(req)
	for _, s := range secretsOf(cr) {
		if strings.Contains(string(dry), s) {
			t.Errorf("dry run shows a secret: %s", dry)
		}
	}
	if retry, err := tg.Send(context.Background(), req); err != nil {
		t.Fatalf("Send: retry=%v err=%v", retry, err)
	}
	c.check(t, e.fake)
	reqs := e.fake.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost {
		t.Fatalf("recorded %d requests, want one POST", len(reqs))
	}
	return reqs[0]
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases {
		if seen[c.name] {
			t.Fatalf("duplicate golden case %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			got := runGoldenCase(t, c)
			golden.Assert(t, "felt/"+c.name+".golden", golden.Format(got))
		})
	}
}

func TestGoldenVerifyPoll(t *testing.T) {
	e := newEnv(t)
	e.fake.AddSource("src_1", "postgresql")
	e.fake.SetSyncingPolls(0)
	tg := e.target(t, "source_id: src_1\nconnection_type: postgresql\npoll_interval: 5ms\n")
	if _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword)); err != nil {
		t.Fatal(err)
	}
	e.fake.Reset()
	v, _, err := tg.Verify(context.Background())
	if err != nil || !v.Verified {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d polls, want 1", len(reqs))
	}
	golden.Assert(t, "felt/verify_show_source.golden", golden.Format(reqs[0]))
}
