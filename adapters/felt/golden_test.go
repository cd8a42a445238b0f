package felt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
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
	check func(t *testing.T, f *feltfake.Server)
}

func credentialCase(feltType, connection, credential string, check func(t *testing.T, fields map[string]any)) goldenCase {
	return goldenCase{
		name:       "credential_" + feltType,
		config:     "source_id: src_1\ncredential_id: cred_1\ncredential_type: " + feltType + "\n",
		connection: connection, feltType: feltType, credential: credential,
		check: func(t *testing.T, f *feltfake.Server) {
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
		check: func(t *testing.T, f *feltfake.Server) {
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

// runGoldenCase seeds a fake, builds the case's credential and delivers it as the engine does
// (verify on, the fake's default sync job), checks the fake accepted and stored it, and returns
// every request of the delivery and the index of the update among them.
func runGoldenCase(t *testing.T, c goldenCase) ([]golden.Request, int) {
	t.Helper()
	e := newEnv(t)
	e.fake.AddSource("src_1", c.connection)
	if c.feltType != "" {
		e.fake.AddCredential("src_1", "cred_1", c.feltType)
	}
	tg := e.target(t, c.config+"poll_interval: 1ms\n")
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
	res, err := adaptertest.Deliver(context.Background(), tg, req)
	if err != nil || !res.Verify.Verified {
		t.Fatalf("Deliver: %+v, %v", res, err)
	}
	c.check(t, e.fake)
	reqs := e.fake.Requests()
	// The baseline read, the update, in credential mode Sync Source, then Show Source polls.
	want := []string{"GET /api/v2/sources/src_1", req.Method + " " + req.Path}
	if tg.credentialMode() {
		want = append(want, "POST /api/v2/sources/src_1/sync")
	}
	prefix := len(want)
	for len(want) < max(len(reqs), prefix+1) {
		want = append(want, "GET /api/v2/sources/src_1")
	}
	var got []string
	for _, r := range reqs {
		got = append(got, r.Method+" "+r.Path)
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("requests %v, want %v (at least one poll)", got, want)
	}
	return reqs, 1
}

// formatAll renders every request of a delivery, in order, for one golden file.
func formatAll(reqs []golden.Request) []byte {
	var b bytes.Buffer
	for i, r := range reqs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### request %d of %d\n", i+1, len(reqs))
		b.Write(bytes.TrimRight(golden.Format(r), "\n"))
		b.WriteString("\n")
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases {
		if seen[c.name] {
			t.Fatalf("duplicate golden case %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			reqs, _ := runGoldenCase(t, c)
			golden.Assert(t, "felt/"+c.name+".golden", formatAll(reqs))
		})
	}
}

// TestGoldenVerifyPoll records one verification check: a Show Source poll.
func TestGoldenVerifyPoll(t *testing.T) {
	e := newEnv(t)
	e.fake.AddSource("src_1", "postgresql")
	e.fake.SetStalePolls(0)
	e.fake.SetSyncingPolls(0)
	tg := e.target(t, "source_id: src_1\nconnection_type: postgresql\npoll_interval: 5ms\n")
	res, _, err := tg.Send(context.Background(), mustBuild(t, tg, credPassword))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.Reset()
	v, _, err := tg.Verify(context.Background(), core.VerifyRequest{Receipt: res.Receipt})
	if err != nil || !v.Verified {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d polls, want 1", len(reqs))
	}
	golden.Assert(t, "felt/verify_show_source.golden", golden.Format(reqs[0]))
}
