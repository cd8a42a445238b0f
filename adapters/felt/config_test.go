package felt

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

func TestNewPlatformBadURL(t *testing.T) {
	if _, err := NewPlatform(vendorhttp.Platform{Name: "felt", BaseURL: "felt.com"}); err == nil {
		t.Fatal("NewPlatform accepted a base_url without a scheme")
	}
}

func TestConfigGood(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		src     string
		accepts core.CredentialType
		check   func(t *testing.T, tg *target)
	}{
		{"source_id: src_1\nconnection_type: postgresql\n", core.TypePassword, func(t *testing.T, tg *target) {
			if !tg.verify || tg.pollInterval != DefaultPollInterval || tg.verifyTimeout != DefaultVerifyTimeout {
				t.Errorf("defaults: verify=%v poll=%v timeout=%v", tg.verify, tg.pollInterval, tg.verifyTimeout)
			}
			if tg.credentialMode() {
				t.Error("connection mode target in credential mode")
			}
		}},
		{"source_id: src_1\nconnection_type: mssql\n", core.TypePassword, nil},
		{"source_id: src_1\nconnection_type: redshift\n", core.TypePassword, nil},
		{"source_id: src_1\nconnection_type: snowflake\n", core.TypePassword, nil},
		{"source_id: src_1\nconnection_type: feature_server\n", core.TypeToken, nil},
		{"source_id: src_1\nconnection_type: stac\n", core.TypeToken, nil},
		{"source_id: src_1\nconnection_type: bigquery\nverify: false\npoll_interval: 500ms\nverify_timeout: 1m30s\n", core.TypeGCPServiceAccount, func(t *testing.T, tg *target) {
			if tg.verify || tg.pollInterval != 500*time.Millisecond || tg.verifyTimeout != 90*time.Second {
				t.Errorf("verify=%v poll=%v timeout=%v", tg.verify, tg.pollInterval, tg.verifyTimeout)
			}
		}},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: key_pair\n", core.TypeKeyPair, func(t *testing.T, tg *target) {
			if !tg.credentialMode() || tg.feltType != "key_pair" {
				t.Errorf("mode: %+v", tg)
			}
		}},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: snowflake_pat\nconnection_type: snowflake\n", core.TypeToken, nil},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: gcp_service_account_json\nconnection_type: stac\n", core.TypeGCPServiceAccount, nil},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: aws_assume_role\nconnection_type: s3_bucket\n", core.TypeAWSAssumeRole, nil},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: azure_storage_connection_string\n", core.TypeAzureConnectionString, nil},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: azure_storage_connection_string\nconnection_type: abs_bucket\n", core.TypeAzureConnectionString, func(t *testing.T, tg *target) {
			if !tg.credentialMode() || tg.connectionType != "abs_bucket" {
				t.Errorf("mode: %+v", tg)
			}
		}},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: gcp_service_account_json\nconnection_type: gcs_bucket\n", core.TypeGCPServiceAccount, nil},
		{"source_id: src_1\ncredential_id: cred_1\ncredential_type: custom_headers\n", core.TypeCustomHeaders, nil},
	}
	for _, c := range cases {
		a, err := e.platform.NewTarget(parseNode(t, c.src))
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		if got := a.Accepts(); !reflect.DeepEqual(got, []core.CredentialType{c.accepts}) {
			t.Errorf("%q: Accepts = %v, want [%s]", c.src, got, c.accepts)
		}
		if c.check != nil {
			c.check(t, a.(*target))
		}
	}
}

func TestConfigBad(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		src  string
		want []string // each must be in the error
	}{
		{"source_id: s\nconnection_type: postgresql\nhost: db\n", []string{"line 3", `unknown key "host"`}},
		{"connection_type: postgresql\n", []string{"line 1", "source_id is required"}},
		{"source_id: \"\"\nconnection_type: postgresql\n", []string{"line 1", "source_id is required"}},
		{"source_id: s\n", []string{"line 1", "connection_type is required"}},
		{"source_id: s\nconnection_type: oracle\n", []string{"line 2", `unknown connection_type "oracle"`, "postgresql"}},
		{"source_id: s\nconnection_type: databricks\n", []string{"line 2", "cannot be rotated", "Databricks PAT or OAuth M2M"}},
		{"source_id: s\nconnection_type: s3_bucket\n", []string{"line 2", "cannot be rotated", "aws_assume_role"}},
		{"source_id: s\nconnection_type: abs_bucket\n", []string{"line 2", "cannot be rotated", "azure_storage_connection_string"}},
		{"source_id: s\nconnection_type: gcs_bucket\n", []string{"line 2", "cannot be rotated", "gcp_service_account_json"}},
		{"source_id: s\nconnection_type: wfs\n", []string{"line 2", "cannot be rotated"}},
		{"source_id: s\nconnection_type: postgresql\ncredential_type: key_pair\n", []string{"line 3", "credential_type applies only with credential_id"}},
		{"source_id: s\ncredential_id: c\n", []string{"line 1", "credential_type is required", "key_pair"}},
		{"source_id: s\ncredential_id: \"\"\ncredential_type: key_pair\n", []string{"line 2", "credential_id must not be empty"}},
		{"source_id: s\ncredential_id: c\ncredential_type: databricks_pat\n", []string{"line 3", "Felt's API cannot update Databricks PAT or OAuth M2M credentials", "rotate them in Felt's UI"}},
		{"source_id: s\ncredential_id: c\ncredential_type: oauth_m2m\n", []string{"line 3", "Felt's API cannot update Databricks PAT or OAuth M2M credentials"}},
		{"source_id: s\ncredential_id: c\ncredential_type: password\n", []string{"line 3", `unknown credential_type "password"`, "aws_assume_role, azure_storage_connection_string, custom_headers, gcp_service_account_json, key_pair, snowflake_pat"}},
		{"source_id: s\ncredential_id: c\ncredential_type: key_pair\nconnection_type: stac\n", []string{"line 3", "connection_type stac (line 4)", "stac sources hold", "not key_pair"}},
		{"source_id: s\ncredential_id: c\nconnection_type: s3_bucket\ncredential_type: snowflake_pat\n", []string{"line 4", "(line 3)", "s3_bucket sources hold aws_assume_role credentials", "not snowflake_pat"}},
		{"source_id: s\ncredential_id: c\ncredential_type: key_pair\nconnection_type: postgresql\n", []string{"line 3", "lists no source credentials for postgresql sources", "leave out credential_id and credential_type"}},
		{"source_id: s\ncredential_id: c\ncredential_type: custom_headers\nconnection_type: wfs\n", []string{"line 3", "lists no source credentials for wfs sources"}},
		{"source_id: s\ncredential_id: c\ncredential_type: aws_assume_role\nconnection_type: databricks\n", []string{"line 3", "databricks_pat or oauth_m2m", "rotate them in Felt's UI"}},
		{"source_id: s\ncredential_id: c\ncredential_type: key_pair\nconnection_type: oracle\n", []string{"line 4", `unknown connection_type "oracle"`}},
		{"source_id: s\nconnection_type: postgresql\nverify: maybe\n", []string{"line 3"}},
		{"source_id: s\nconnection_type: postgresql\npoll_interval: 5\n", []string{"line 3", "with a unit"}},
		{"source_id: s\nconnection_type: postgresql\npoll_interval: 0s\n", []string{"line 3", "poll_interval must be positive"}},
		{"source_id: s\nconnection_type: postgresql\nverify_timeout: -1m\n", []string{"line 3", "verify_timeout must be positive"}},
		{"source_id: s\nconnection_type: postgresql\nverify_timeout: [1]\n", []string{"line 3", "duration"}},
		{"- source_id: s\n", []string{"line 1", "must be a mapping"}},
	}
	for _, c := range cases {
		_, err := e.platform.NewTarget(parseNode(t, c.src))
		if err == nil {
			t.Errorf("%q: loaded, want an error", c.src)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", c.src, err, w)
			}
		}
	}
}

// TestConfigCredentialPairings tries every updatable credential type with every connection type
// in credential mode: exactly the pairings Felt's Source schemas list load, with the one neutral
// type of the credential; every other is refused at the credential_type line.
func TestConfigCredentialPairings(t *testing.T) {
	e := newEnv(t)
	want := map[string][]string{
		"snowflake":  {"key_pair", "snowflake_pat"},
		"s3_bucket":  {"aws_assume_role"},
		"abs_bucket": {"azure_storage_connection_string"},
		"gcs_bucket": {"gcp_service_account_json"},
		"stac":       {"gcp_service_account_json", "azure_storage_connection_string", "aws_assume_role", "custom_headers"},
	}
	for _, ct := range strings.Split(allConnectionTypes(), ", ") {
		for ft, accepts := range credentialTypes {
			src := "source_id: s\ncredential_id: c\ncredential_type: " + ft + "\nconnection_type: " + ct + "\n"
			a, err := e.platform.NewTarget(parseNode(t, src))
			if contains(want[ct], ft) {
				if err != nil {
					t.Errorf("%s + %s refused: %v", ct, ft, err)
				} else if got := a.Accepts(); !reflect.DeepEqual(got, []core.CredentialType{accepts}) {
					t.Errorf("%s + %s: Accepts %v", ct, ft, got)
				}
				continue
			}
			if err == nil || !strings.HasPrefix(err.Error(), "line 3: ") || !strings.Contains(err.Error(), "connection_type "+ct+" (line 4)") {
				t.Errorf("%s + %s: %v, want refused at line 3", ct, ft, err)
			}
		}
	}
}

// TestCredentialsOfConnectionMatchSpec: the pairing table is the credentials lists of Felt's
// SourceConnection-* schemas, no more and no less, as the fake (its own reading of the spec)
// finds them.
func TestCredentialsOfConnectionMatchSpec(t *testing.T) {
	for _, ct := range strings.Split(allConnectionTypes(), ", ") {
		inSpec := feltfake.CredentialTypes(ct)
		got := append([]string(nil), credentialsOfConnection[ct]...)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(inSpec, ",") {
			t.Errorf("%s: table %v, spec %v", ct, got, inSpec)
		}
	}
}

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Vendor{
		New: func(t *testing.T) (core.Adapter, adaptertest.Fake) {
			e := newEnv(t)
			e.fake.AddSource("src_pg", "postgresql")
			return e.target(t, "source_id: src_pg\nconnection_type: postgresql\npoll_interval: 10ms"), e.fake
		},
		Good:    cred(t, `{"type":"password","password":"conformance-Secret-7c1d9e"}`),
		Secret:  "conformance-Secret-7c1d9e",
		Refused: cred(t, `{"type":"token","token":"conformance-token-x"}`),
	})
}
