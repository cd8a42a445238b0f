// Package adapters is the list of vendors credsync can drive: one line per vendor. Adding a
// vendor is a package under adapters/ (its config, mapping, client, fake and tests) and a line
// in vendors below; config, the API and the CLI take every vendor from here.
package adapters

import (
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/databrain"
	"github.com/credsync/credsync/adapters/felt"
	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

// Platform is one configured account of a vendor: it builds that account's targets.
type Platform interface {
	// NewTarget decodes and validates one target block and returns its adapter. Every error
	// names its line.
	NewTarget(node *yaml.Node) (core.Adapter, error)
}

// Vendor is one vendor's entry point.
type Vendor struct {
	Name string
	// NewPlatform builds an account's shared HTTP client and whatever its targets share.
	NewPlatform func(vendorhttp.Platform) (Platform, error)
	// TargetKeepsName: the target block keeps its "name" key because the vendor uses it (a
	// Databrain datasource is keyed by credentials.name); other vendors get the block without it.
	TargetKeepsName bool
}

var vendors = []Vendor{
	{Name: felt.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(felt.NewPlatform(p)) }},
	{Name: databrain.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(databrain.NewPlatform(p)) }, TargetKeepsName: true},
	{Name: rivergen.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(rivergen.NewPlatform(p)) }},
}

// wrap turns a vendor's concrete platform into a Platform, keeping a nil one nil.
func wrap[P Platform](p P, err error) (Platform, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Lookup returns the vendor of that name.
func Lookup(name string) (Vendor, bool) {
	for _, v := range vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Names lists the vendors, sorted.
func Names() []string {
	out := make([]string, len(vendors))
	for i, v := range vendors {
		out[i] = v.Name
	}
	sort.Strings(out)
	return out
}
