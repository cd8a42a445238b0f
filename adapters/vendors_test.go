package adapters_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

func TestEveryVendorBuildsAPlatform(t *testing.T) {
	names := adapters.Names()
	require.Equal(t, []string{"databrain", "felt", "rivergen"}, names)
	for _, name := range names {
		v, ok := adapters.Lookup(name)
		require.True(t, ok, name)
		p, err := v.NewPlatform(vendorhttp.Platform{Name: name, BaseURL: "https://vendor.example", Token: core.NewSecret("t")})
		require.NoError(t, err, name)
		require.NotNil(t, p, name)
		_, err = v.NewPlatform(vendorhttp.Platform{Name: name, BaseURL: "not a url"})
		require.Error(t, err, "%s: a bad base_url is refused", name)
	}
	_, ok := adapters.Lookup("looker")
	require.False(t, ok)
}

// The OpenAPI document names every vendor of the registry where it describes a target's vendor
// (a string, not an enum, so that clients do not break when a vendor is added).
func TestOpenAPINamesEveryVendor(t *testing.T) {
	raw, err := os.ReadFile("../api/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Description string `yaml:"description"`
				} `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	desc := doc.Components.Schemas["TargetResult"].Properties["vendor"].Description
	require.NotEmpty(t, desc, "TargetResult.vendor has a description")
	for _, name := range adapters.Names() {
		require.Contains(t, desc, name, "TargetResult.vendor's description in api/openapi.yaml names every vendor")
	}
}
