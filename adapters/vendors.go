// Package adapters is the list of vendors credsync can drive: one line per vendor. Adding a
// vendor is a package under adapters/ (its config, mapping, client and tests, and its fake in a
// package of its own that imports no adapter) and a line in builtin below; config, the API and
// the CLI take every vendor from here (a Registry).
package adapters

import (
	"fmt"
	"slices"
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

// builtin is credsync's vendors: one line each.
func builtin() []Vendor {
	return []Vendor{
		{Name: felt.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(felt.NewPlatform(p)) }},
		{Name: databrain.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(databrain.NewPlatform(p)) }, TargetKeepsName: true},
		{Name: rivergen.Vendor, NewPlatform: func(p vendorhttp.Platform) (Platform, error) { return wrap(rivergen.NewPlatform(p)) }},
	}
}

// wrap turns a vendor's concrete platform into a Platform, keeping a nil one nil.
func wrap[P Platform](p P, err error) (Platform, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Registry is a set of vendors, the one place config validation (and its messages) learns which
// vendors exist and how to build their platforms. Default holds credsync's own; With adds one
// (a test's toy vendor, or a build of credsync with a vendor of its own). A Registry is never
// changed once made, so one may be shared.
type Registry struct{ vendors []Vendor }

// Default is the registry of credsync's vendors.
func Default() *Registry { return &Registry{vendors: builtin()} }

// With returns a registry holding r's vendors and v. v needs a name no other vendor has and a
// NewPlatform.
func (r *Registry) With(v Vendor) (*Registry, error) {
	if v.Name == "" || v.NewPlatform == nil {
		return nil, fmt.Errorf("vendor %q: a vendor needs a name and a NewPlatform", v.Name)
	}
	if _, ok := r.Lookup(v.Name); ok {
		return nil, fmt.Errorf("vendor %q is already registered", v.Name)
	}
	return &Registry{vendors: append(slices.Clone(r.vendors), v)}, nil
}

// Lookup returns the vendor of that name.
func (r *Registry) Lookup(name string) (Vendor, bool) {
	for _, v := range r.vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Names lists the vendors, sorted.
func (r *Registry) Names() []string {
	out := make([]string, len(r.vendors))
	for i, v := range r.vendors {
		out[i] = v.Name
	}
	sort.Strings(out)
	return out
}

// Lookup returns the credsync vendor of that name (Default().Lookup).
func Lookup(name string) (Vendor, bool) { return Default().Lookup(name) }

// Names lists credsync's vendors, sorted (Default().Names).
func Names() []string { return Default().Names() }
