package rivergen

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/yamlx"
)

// Vendor is the vendor name used in the config file (platforms.<name>.vendor).
const Vendor = "rivergen"

// Token fields a target can map a neutral token credential to (config key token_field).
const (
	TokenFieldAPIKey     = "api_key"
	TokenFieldOAuthToken = "oauth_token"
)

// Platform is one RiverGen account: its name in the config and the HTTP client every target of
// that account shares.
type Platform struct {
	name    string
	timeout time.Duration
	client  *vendorhttp.Client
}

// NewPlatform builds the shared HTTP client of a RiverGen account. It validates nothing
// vendor-specific beyond what the client needs (an absolute http(s) base URL).
func NewPlatform(p vendorhttp.Platform) (*Platform, error) {
	c, err := p.NewClient()
	if err != nil {
		return nil, fmt.Errorf("rivergen platform %q: %w", p.Name, err)
	}
	return &Platform{name: p.Name, timeout: p.Timeout, client: c}, nil
}

// targetConfig is one rivergen target block (without the common keys platform and name).
type targetConfig struct {
	// DataSourceID is RiverGen's integer data source id (required, > 0).
	DataSourceID *int `yaml:"data_source_id"`
	// TokenField is the RiverGen field a neutral token credential is written to: api_key or
	// oauth_token. Without it the target refuses token credentials.
	TokenField string `yaml:"token_field"`
	// RotateCredentials sends "rotate_credentials": true with every update (default false: not sent).
	RotateCredentials bool `yaml:"rotate_credentials"`
	// Verify runs RiverGen's Test Connection after the update (default true).
	Verify *bool `yaml:"verify"`
	// TestQuery is sent as test_query in the Test Connection body when set.
	TestQuery *string `yaml:"test_query"`
	// TestTimeoutSeconds is sent as timeout_seconds in the Test Connection body when set.
	TestTimeoutSeconds *int `yaml:"test_timeout_seconds"`
}

// NewTarget decodes and validates one rivergen target block and returns its adapter. node is the
// target's YAML mapping with the common keys "platform" and "name" already removed. Every error
// names the line it is about.
func (p *Platform) NewTarget(node *yaml.Node) (core.Adapter, error) {
	node, err := yamlx.Mapping(node, "a rivergen target must be a mapping with at least data_source_id")
	if err != nil {
		return nil, err
	}
	// yaml.v3 truncates a float into an int field (1.5 becomes 1): refuse it before decoding.
	for _, key := range []string{"data_source_id", "test_timeout_seconds"} {
		if v := yamlx.Lookup(node, key); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!float" {
			return nil, yamlx.Errorf(v, "%s must be an integer, got %s", key, v.Value)
		}
	}
	var cfg targetConfig
	if err := yamlx.DecodeStrict(node, &cfg); err != nil {
		return nil, err
	}

	if cfg.DataSourceID == nil {
		return nil, yamlx.Errorf(yamlx.At(node)("data_source_id"), "rivergen target needs data_source_id (the integer id of the RiverGen data source whose credentials are rotated)")
	}
	if *cfg.DataSourceID <= 0 {
		return nil, yamlx.Errorf(yamlx.Lookup(node, "data_source_id"), "data_source_id must be a positive integer, got %d", *cfg.DataSourceID)
	}

	switch cfg.TokenField {
	case "", TokenFieldAPIKey, TokenFieldOAuthToken:
	default:
		return nil, yamlx.Errorf(yamlx.Lookup(node, "token_field"),
			"token_field %q is not a RiverGen credential field; use %s or %s (the field a token credential is written to)",
			cfg.TokenField, TokenFieldAPIKey, TokenFieldOAuthToken)
	}
	if cfg.TokenField == "" && yamlx.Lookup(node, "token_field") != nil {
		return nil, yamlx.Errorf(yamlx.Lookup(node, "token_field"),
			"token_field is empty; use %s or %s, or leave the key out if this target takes no token credential",
			TokenFieldAPIKey, TokenFieldOAuthToken)
	}

	verify := cfg.Verify == nil || *cfg.Verify
	if cfg.TestQuery != nil {
		at := yamlx.Lookup(node, "test_query")
		if !verify {
			return nil, yamlx.Errorf(at, "test_query has no effect with verify: false (RiverGen's Test Connection is not called); remove one of them")
		}
		if *cfg.TestQuery == "" {
			return nil, yamlx.Errorf(at, "test_query is empty; leave the key out to let RiverGen use its default test")
		}
	}
	if cfg.TestTimeoutSeconds != nil {
		at := yamlx.Lookup(node, "test_timeout_seconds")
		if !verify {
			return nil, yamlx.Errorf(at, "test_timeout_seconds has no effect with verify: false (RiverGen's Test Connection is not called); remove one of them")
		}
		secs := *cfg.TestTimeoutSeconds
		if secs <= 0 {
			return nil, yamlx.Errorf(at, "test_timeout_seconds must be a positive number of seconds, got %d", secs)
		}
		if p.timeout > 0 && time.Duration(secs)*time.Second >= p.timeout {
			return nil, yamlx.Errorf(at,
				"test_timeout_seconds (%ds) must be shorter than the timeout of platform %q (%s): credsync would give up on the Test Connection call before RiverGen answers",
				secs, p.name, p.timeout)
		}
	}

	a := &adapter{
		platform:          p.name,
		client:            p.client,
		id:                *cfg.DataSourceID,
		tokenField:        cfg.TokenField,
		rotateCredentials: cfg.RotateCredentials,
		verify:            verify,
	}
	if cfg.TestQuery != nil {
		a.testQuery = *cfg.TestQuery
	}
	if cfg.TestTimeoutSeconds != nil {
		a.testTimeoutSeconds = *cfg.TestTimeoutSeconds
	}
	return a, nil
}
