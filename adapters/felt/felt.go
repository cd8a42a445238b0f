package felt

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/yamlx"
)

// Vendor is the vendor name used in the config file (platforms.<name>.vendor).
const Vendor = "felt"

// Defaults of the target keys.
const (
	DefaultPollInterval  = 2 * time.Second
	DefaultVerifyTimeout = 2 * time.Minute
)

// Felt credential types (SourceCredentialUpdate-* in Felt's spec) that the API can update, each
// with the neutral credential type it is built from.
var credentialTypes = map[string]core.CredentialType{
	"aws_assume_role":                 core.TypeAWSAssumeRole,
	"azure_storage_connection_string": core.TypeAzureConnectionString,
	"custom_headers":                  core.TypeCustomHeaders,
	"gcp_service_account_json":        core.TypeGCPServiceAccount,
	"key_pair":                        core.TypeKeyPair,
	"snowflake_pat":                   core.TypeToken,
}

// Felt credential types that exist (SourceCredential-DatabricksPAT / -OAuthM2M) but that
// SourceCredentialUpdateParams cannot carry.
var notUpdatableCredentialTypes = map[string]bool{"databricks_pat": true, "oauth_m2m": true}

// Connection types whose credential field SourceUpdateConnectionParams carries, each with the
// neutral credential type it is built from.
var connectionTypes = map[string]core.CredentialType{
	"postgresql":     core.TypePassword,
	"mssql":          core.TypePassword,
	"redshift":       core.TypePassword,
	"snowflake":      core.TypePassword,
	"feature_server": core.TypeToken,
	"stac":           core.TypeToken,
	"bigquery":       core.TypeGCPServiceAccount,
}

// Connection types Felt knows (SourceReference.connection_type) whose connection parameters hold no
// credential: nothing of theirs can be rotated through the update-source call (connection mode).
var otherConnectionTypes = map[string]string{
	"abs_bucket":       "its connection has only blob_storage_url; an Azure connection string is a source credential (use credential_id with credential_type azure_storage_connection_string)",
	"databricks":       "its connection has no credential field and Felt's API cannot update Databricks PAT or OAuth M2M credentials; rotate them in Felt's UI",
	"gcs_bucket":       "its connection has only gs_uri; a GCP service account is a source credential (use credential_id with credential_type gcp_service_account_json)",
	"s3_bucket":        "its connection has only s3_uri; an AWS assume-role credential is a source credential (use credential_id with credential_type aws_assume_role)",
	"wfs":              "its connection has only url",
	"wms_wmts":         "its connection has only url",
	"lightning_server": "SourceUpdateConnectionParams has no lightning_server variant",
	"wherobots":        "SourceUpdateConnectionParams has no wherobots variant",
}

// Which Felt credential types a source of each connection type holds: the credentials list of
// its SourceConnection-* schema in Felt's spec (a test checks this table against the spec).
// A connection type missing here has no such list (postgresql, mssql, redshift, bigquery,
// feature_server, wfs, wms_wmts), or no SourceConnection schema at all (lightning_server,
// wherobots): it holds no source credential Felt documents. Used when a credential-mode target
// also names its connection_type.
var credentialsOfConnection = map[string][]string{
	"abs_bucket": {"azure_storage_connection_string"},
	"databricks": {"databricks_pat", "oauth_m2m"}, // neither is updatable: refused anyway
	"gcs_bucket": {"gcp_service_account_json"},
	"s3_bucket":  {"aws_assume_role"},
	"snowflake":  {"key_pair", "snowflake_pat"},
	"stac":       {"aws_assume_role", "azure_storage_connection_string", "custom_headers", "gcp_service_account_json"},
}

// Platform is one configured Felt account. Its targets share one HTTP client.
type Platform struct {
	name   string
	client *vendorhttp.Client
}

// NewPlatform builds the shared HTTP client of a Felt platform. It validates nothing
// Felt-specific beyond that.
func NewPlatform(p vendorhttp.Platform) (*Platform, error) {
	c, err := p.NewClient()
	if err != nil {
		return nil, fmt.Errorf("felt platform %q: %w", p.Name, err)
	}
	return &Platform{name: p.Name, client: c}, nil
}

// Duration is a YAML duration written with a unit ("500ms", "2s", "2m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlx.Errorf(n, "must be a duration such as 2s or 1m30s")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return yamlx.Errorf(n, "%q is not a duration: write it with a unit, such as 2s or 1m30s", n.Value)
	}
	*d = Duration(v)
	return nil
}

// targetConfig is a Felt target block (without the common keys platform and name).
type targetConfig struct {
	SourceID       string    `yaml:"source_id"`
	CredentialID   *string   `yaml:"credential_id"`
	ConnectionType string    `yaml:"connection_type"`
	CredentialType string    `yaml:"credential_type"`
	Verify         *bool     `yaml:"verify"`
	PollInterval   *Duration `yaml:"poll_interval"`
	VerifyTimeout  *Duration `yaml:"verify_timeout"`
}

// NewTarget decodes and validates one Felt target block and returns its adapter. node is the
// target's mapping with the common keys platform and name removed. Every error names its line.
func (p *Platform) NewTarget(node *yaml.Node) (core.Adapter, error) {
	var cfg targetConfig
	_, at, err := yamlx.DecodeBlock(node, &cfg, "a felt target must be a mapping with source_id and either credential_id + credential_type or connection_type")
	if err != nil {
		return nil, err
	}

	t := &target{
		client:        p.client,
		verify:        true,
		pollInterval:  DefaultPollInterval,
		verifyTimeout: DefaultVerifyTimeout,
	}
	t.sourceID = strings.TrimSpace(cfg.SourceID)
	if t.sourceID == "" {
		return nil, yamlx.Errorf(at("source_id"), "felt target: source_id is required (the Felt source whose credential this target rotates)")
	}
	if cfg.Verify != nil {
		t.verify = *cfg.Verify
	}
	if cfg.PollInterval != nil {
		t.pollInterval = time.Duration(*cfg.PollInterval)
		if t.pollInterval <= 0 {
			return nil, yamlx.Errorf(at("poll_interval"), "felt target: poll_interval must be positive")
		}
	}
	if cfg.VerifyTimeout != nil {
		t.verifyTimeout = time.Duration(*cfg.VerifyTimeout)
		if t.verifyTimeout <= 0 {
			return nil, yamlx.Errorf(at("verify_timeout"), "felt target: verify_timeout must be positive")
		}
	}

	if cfg.CredentialID != nil {
		// Credential mode.
		t.credentialID = strings.TrimSpace(*cfg.CredentialID)
		if t.credentialID == "" {
			return nil, yamlx.Errorf(at("credential_id"), "felt target: credential_id must not be empty (leave it out to rotate the source's connection instead)")
		}
		ft := strings.TrimSpace(cfg.CredentialType)
		switch {
		case ft == "":
			return nil, yamlx.Errorf(at("credential_type"), "felt target: credential_type is required with credential_id (one of %s)", keys(credentialTypes))
		case notUpdatableCredentialTypes[ft]:
			return nil, yamlx.Errorf(at("credential_type"), "felt target: credential_type %q cannot be rotated: Felt's API cannot update Databricks PAT or OAuth M2M credentials (SourceCredentialUpdateParams has no such type); rotate them in Felt's UI", ft)
		case credentialTypes[ft] == "":
			return nil, yamlx.Errorf(at("credential_type"), "felt target: unknown credential_type %q (one of %s)", ft, keys(credentialTypes))
		}
		t.feltType = ft
		t.accepts = credentialTypes[ft]
		if ct := strings.TrimSpace(cfg.ConnectionType); ct != "" {
			if connectionTypes[ct] == "" && otherConnectionTypes[ct] == "" {
				return nil, yamlx.Errorf(at("connection_type"), "felt target: unknown connection_type %q (Felt's connection types: %s)", ct, allConnectionTypes())
			}
			if err := pairing(at("credential_type"), at("connection_type"), ct, ft); err != nil {
				return nil, err
			}
			t.connectionType = ct
		}
		return t, nil
	}

	// Connection mode.
	if cfg.CredentialType != "" {
		return nil, yamlx.Errorf(at("credential_type"), "felt target: credential_type applies only with credential_id (credential mode); without credential_id the target rotates the source's connection, named by connection_type")
	}
	ct := strings.TrimSpace(cfg.ConnectionType)
	switch {
	case ct == "":
		return nil, yamlx.Errorf(at("connection_type"), "felt target: connection_type is required without credential_id (one of %s); or set credential_id and credential_type to rotate a source credential", keys(connectionTypes))
	case otherConnectionTypes[ct] != "":
		return nil, yamlx.Errorf(at("connection_type"), "felt target: the credential of a %s connection cannot be rotated through Felt's update-source API: %s", ct, otherConnectionTypes[ct])
	case connectionTypes[ct] == "":
		return nil, yamlx.Errorf(at("connection_type"), "felt target: unknown connection_type %q (rotatable: %s)", ct, keys(connectionTypes))
	}
	t.connectionType = ct
	t.accepts = connectionTypes[ct]
	return t, nil
}

// pairing refuses a credential type that a source of connection type ct does not hold, as
// Felt's Source schemas list them. The error is at the credential_type line and names the
// connection_type line too.
func pairing(ftNode, ctNode *yaml.Node, ct, ft string) error {
	allowed := credentialsOfConnection[ct]
	if contains(allowed, ft) {
		return nil
	}
	var why string
	switch {
	case ct == "databricks":
		why = "databricks sources hold databricks_pat or oauth_m2m credentials, which Felt's API cannot update (SourceCredentialUpdateParams has no such type); rotate them in Felt's UI"
	case len(allowed) == 0:
		why = fmt.Sprintf("Felt's Source schema lists no source credentials for %s sources; check both keys against the source in Felt", ct)
		if connectionTypes[ct] != "" {
			why += fmt.Sprintf(", or, to rotate its %s, leave out credential_id and credential_type (connection mode)", connectionTypes[ct])
		}
	default:
		why = fmt.Sprintf("%s sources hold %s credentials (Felt's Source schema), not %s", ct, strings.Join(allowed, " or "), ft)
	}
	return yamlx.Errorf(ftNode, "felt target: credential_type %s does not fit connection_type %s (line %d): %s", ft, ct, ctNode.Line, why)
}

func keys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func allConnectionTypes() string {
	all := map[string]bool{}
	for k := range connectionTypes {
		all[k] = true
	}
	for k := range otherConnectionTypes {
		all[k] = true
	}
	return keys(all)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
