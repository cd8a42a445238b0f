package adapters_test

import (
	"testing"

	"github.com/stretchr/testify/require"

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
