package felt

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

func TestBuildRefuses(t *testing.T) {
	e := newEnv(t)
	allCreds := []string{credPassword, credPasswordUser, credKeyPair, credToken, credGCP, credAWS, credAzure, credHeaders,
		`{"type":"oauth_client","client_id":"c","client_secret":"s3cr3t-client-1"}`,
		`{"type":"aws_access_key","access_key_id":"AKIAFAKE","secret_access_key":"s3cr3t-aws-1"}`}
	targets := map[string]core.CredentialType{
		"source_id: s\nconnection_type: postgresql\n":                                        core.TypePassword,
		"source_id: s\nconnection_type: stac\n":                                              core.TypeToken,
		"source_id: s\nconnection_type: bigquery\n":                                          core.TypeGCPServiceAccount,
		"source_id: s\ncredential_id: c\ncredential_type: key_pair\n":                        core.TypeKeyPair,
		"source_id: s\ncredential_id: c\ncredential_type: snowflake_pat\n":                   core.TypeToken,
		"source_id: s\ncredential_id: c\ncredential_type: gcp_service_account_json\n":        core.TypeGCPServiceAccount,
		"source_id: s\ncredential_id: c\ncredential_type: aws_assume_role\n":                 core.TypeAWSAssumeRole,
		"source_id: s\ncredential_id: c\ncredential_type: azure_storage_connection_string\n": core.TypeAzureConnectionString,
		"source_id: s\ncredential_id: c\ncredential_type: custom_headers\n":                  core.TypeCustomHeaders,
	}
	for src, accepts := range targets {
		tg := e.target(t, src)
		for _, cj := range allCreds {
			c := cred(t, cj)
			req, err := tg.Build(c)
			if c.Type == accepts {
				if err != nil {
					t.Errorf("%q: Build(%s): %v", src, c.Type, err)
				}
				dry, _ := json.Marshal(req)
				for _, s := range c.Secrets() {
					if strings.Contains(string(dry), s) {
						t.Errorf("%q: dry run of %s shows a secret: %s", src, c.Type, dry)
					}
				}
				if len(c.Secrets()) > 0 && !strings.Contains(string(dry), core.Redacted) {
					t.Errorf("%q: dry run of %s has no redaction: %s", src, c.Type, dry)
				}
				continue
			}
			var ie *core.InputError
			if !errors.As(err, &ie) {
				t.Errorf("%q: Build(%s) = %v, want *core.InputError", src, c.Type, err)
				continue
			}
			if len(ie.Problems) != 1 || ie.Problems[0].Field != "credential.type" ||
				!strings.Contains(ie.Problems[0].Message, "takes a "+string(accepts)) || !strings.Contains(ie.Error(), "Felt source \"s\"") {
				t.Errorf("%q: Build(%s) error %v", src, c.Type, ie)
			}
			for _, s := range c.Secrets() {
				if strings.Contains(ie.Error(), s) {
					t.Errorf("error shows a secret: %v", ie)
				}
			}
		}
	}
}

func TestBuildRefusesFieldsFeltLacks(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		target, cred, field, want string
	}{
		{"source_id: s\ncredential_id: c\ncredential_type: key_pair\n",
			`{"type":"key_pair","username":"svc","private_key":"s3cr3t-k"}`, "credential.username", "no user name field"},
	}
	for _, c := range cases {
		cr := cred(t, c.cred)
		_, err := e.target(t, c.target).Build(cr)
		var ie *core.InputError
		if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Field != c.field || !strings.Contains(ie.Problems[0].Message, c.want) {
			t.Errorf("Build(%s) = %v", c.cred, err)
			continue
		}
		for _, s := range cr.Secrets() {
			if strings.Contains(ie.Error(), s) {
				t.Errorf("error shows a secret: %v", ie)
			}
		}
	}
}

// Credentials built in code (not through DecodeCredential) may miss required fields.
func TestBuildRequiresFields(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		target string
		cred   core.Credential
		fields []string
	}{
		{"source_id: s\nconnection_type: postgresql\n", core.Credential{Type: core.TypePassword}, []string{"credential.password"}},
		{"source_id: s\nconnection_type: feature_server\n", core.Credential{Type: core.TypeToken}, []string{"credential.token"}},
		{"source_id: s\nconnection_type: bigquery\n", core.Credential{Type: core.TypeGCPServiceAccount}, []string{"credential.service_account_json"}},
		{"source_id: s\ncredential_id: c\ncredential_type: key_pair\n", core.Credential{Type: core.TypeKeyPair}, []string{"credential.private_key"}},
		{"source_id: s\ncredential_id: c\ncredential_type: aws_assume_role\n", core.Credential{Type: core.TypeAWSAssumeRole}, []string{"credential.role_arn", "credential.role_session_name"}},
		{"source_id: s\ncredential_id: c\ncredential_type: custom_headers\n",
			core.Credential{Type: core.TypeCustomHeaders, Headers: []core.Header{{Name: " "}}},
			[]string{"credential.headers[0].name", "credential.headers[0].value"}},
	}
	for _, c := range cases {
		_, err := e.target(t, c.target).Build(c.cred)
		var ie *core.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%q: Build = %v, want *core.InputError", c.target, err)
			continue
		}
		var got []string
		for _, p := range ie.Problems {
			got = append(got, p.Field)
		}
		if strings.Join(got, ",") != strings.Join(c.fields, ",") {
			t.Errorf("%q: problems %v, want fields %v", c.target, ie.Problems, c.fields)
		}
	}
}

func TestBuildBigQueryBase64(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t, "source_id: s\nconnection_type: bigquery\n")
	req, err := tg.Build(cred(t, credGCPNoName))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := req.WireBody()
	if err != nil {
		t.Fatal(err)
	}
	// base64 (standard, padded) of the compact JSON text the neutral credential holds:
	// {"type":"service_account","private_key":"s3cr3t-gcp-key-2"}
	want := `{"connection":{"base64_encoded_service_account":"eyJ0eXBlIjoic2VydmljZV9hY2NvdW50IiwicHJpdmF0ZV9rZXkiOiJzM2NyM3QtZ2NwLWtleS0yIn0=","type":"bigquery"}}`
	if string(wire) != want {
		t.Errorf("wire body\n%s\nwant\n%s", wire, want)
	}
	dry, _ := json.Marshal(req)
	if strings.Contains(string(dry), "eyJ0") || !strings.Contains(string(dry), core.Redacted) {
		t.Errorf("dry run = %s", dry)
	}
}

func TestBuildGCPStringDocumentSentAsObject(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t, "source_id: s\ncredential_id: c\ncredential_type: gcp_service_account_json\n")
	req, err := tg.Build(cred(t, credGCPNoName))
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := req.WireBody()
	want := `{"credential":{"service_account_json":{"type":"service_account","private_key":"s3cr3t-gcp-key-2"},"type":"gcp_service_account_json"}}`
	if string(wire) != want {
		t.Errorf("wire body\n%s\nwant\n%s", wire, want)
	}
}

func TestErrorMessage(t *testing.T) {
	cases := map[string]string{
		``:    "",
		`   `: "",
		`{"errors":[{"title":"Unprocessable Entity","detail":"is invalid","source":{"pointer":"/credential/private_key"}}]}`:        "Unprocessable Entity: credential.private_key: is invalid",
		`{"errors":[{"title":"Unauthorized","detail":"bad token","source":{"header":"authorization"}}]}`:                            "Unauthorized: header authorization: bad token",
		`{"errors":[{"title":"Not Found","detail":"Source not found","source":{"parameter":"source_id"}}]}`:                         "Not Found: parameter source_id: Source not found",
		`{"errors":[{"title":"A","detail":"x","source":{"pointer":"/a~1b/0"}},{"title":"B","detail":"y","source":{"pointer":""}}]}`: "A: a/b.0: x; B: y",
		`{"errors":[]}`:  `{"errors":[]}`,
		`[1,2]`:          `[1,2]`,
		`{"errors":"x"}`: `{"errors":"x"}`,
	}
	for body, want := range cases {
		if got := errorMessage([]byte(body)); got != want {
			t.Errorf("errorMessage(%s) = %q, want %q", body, got, want)
		}
	}
}

// TestSSHTunnelIgnored: a credential's ssh_tunnel is for the targets of the source that tunnel.
// Felt has no SSH field, so every Felt target takes the rotation, sends no SSH field and no
// piece of the SSH secrets, and the rest lands as without it.
func TestSSHTunnelIgnored(t *testing.T) {
	const tunnel = `,"ssh_tunnel":{"private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\ns3cr3t-ssh-key\n-----END OPENSSH PRIVATE KEY-----","passphrase":"s3cr3t-ssh-pass"}}`
	for _, c := range []struct{ target, cred, credType string }{
		{pgTarget, credPasswordUser, ""},
		{"source_id: src_bq\nconnection_type: bigquery\npoll_interval: 5ms\n", credGCP, ""},
		{kpTarget, credKeyPair, "key_pair"},
		{"source_id: src_sf\ncredential_id: cred_pat\ncredential_type: snowflake_pat\npoll_interval: 5ms\n", credToken, "snowflake_pat"},
		{"source_id: src_stac\ncredential_id: cred_h\ncredential_type: custom_headers\nconnection_type: stac\npoll_interval: 5ms\n", credHeaders, "custom_headers"},
	} {
		e := seeded(t)
		e.fake.AddSource("src_bq", "bigquery")
		e.fake.AddSource("src_stac", "stac")
		e.fake.AddCredential("src_stac", "cred_h", "custom_headers")
		tg := e.target(t, c.target)
		withTunnel := strings.TrimSuffix(c.cred, "}") + tunnel
		cr := cred(t, withTunnel)
		if cr.SSHTunnel == nil {
			t.Fatalf("test credential has no ssh_tunnel: %s", withTunnel)
		}
		req, err := tg.Build(cr)
		if err != nil {
			t.Fatalf("%s: Build refused a credential with ssh_tunnel: %v", tg.describe(), err)
		}
		plain, err := tg.Build(cred(t, c.cred))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := req.WireBody()
		want, _ := plain.WireBody()
		if string(got) != string(want) {
			t.Errorf("%s: ssh_tunnel changed the request:\n%s\nwant\n%s", tg.describe(), got, want)
		}
		res, err := adaptertest.Deliver(context.Background(), tg, req)
		if err != nil || !res.Verify.Verified {
			t.Fatalf("%s: Deliver = %+v, %v", tg.describe(), res, err)
		}
		for _, r := range e.fake.Requests() {
			if b := strings.ToLower(string(r.Body)); strings.Contains(b, "ssh") {
				t.Errorf("%s: %s %s carries an SSH field or secret: %s", tg.describe(), r.Method, r.Path, r.Body)
			}
		}
		// What Felt now holds is the rotated credential, and nothing of the tunnel.
		var held any
		if c.credType != "" {
			fc, _ := e.fake.Credential(tg.sourceID, tg.credentialID)
			held = fc.Fields
		} else {
			held, _ = e.fake.Connection(tg.sourceID)
		}
		js, _ := json.Marshal(held)
		secrets := plain.Secrets()
		if len(secrets) == 0 {
			t.Fatalf("%s: no secret in the request", tg.describe())
		}
		first, _ := json.Marshal(secrets[0])
		if !strings.Contains(string(js), strings.Trim(string(first), `"`)) || strings.Contains(strings.ToLower(string(js)), "ssh") {
			t.Errorf("%s: Felt holds %s", tg.describe(), js)
		}
	}
}
