package databrain

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/yamlx"
)

// Vendor is the vendor name used in config (`vendor: databrain`) and results.
const Vendor = "databrain"

// Platform is one Databrain account (one service token). Its targets share one HTTP client.
type Platform struct {
	name   string
	client *vendorhttp.Client
}

// NewPlatform builds the platform's shared HTTP client. It validates nothing vendor-specific.
func NewPlatform(p vendorhttp.Platform) (*Platform, error) {
	c, err := p.NewClient()
	if err != nil {
		return nil, fmt.Errorf("databrain platform %q: %w", p.Name, err)
	}
	return &Platform{name: p.Name, client: c}, nil
}

// targetConfig is a databrain target block. Unlike other vendors' targets, "name" stays in the
// node: it is the Databrain datasource name (credentials.name) as well as the target's name.
type targetConfig struct {
	DatasourceType  string    `yaml:"datasource_type"`
	Name            string    `yaml:"name"`
	Fields          yaml.Node `yaml:"fields"`
	TenancySettings yaml.Node `yaml:"tenancy_settings"`
	// Verify may only be true: Databrain tests the connection inside the update itself.
	Verify *bool `yaml:"verify"`
}

// NewTarget decodes and validates one databrain target block and returns its adapter. node is
// the target's mapping with "platform" removed and "name" kept (it is the datasource name).
// Every error names the line it is about.
func (p *Platform) NewTarget(node *yaml.Node) (core.Adapter, error) {
	var cfg targetConfig
	node, _, err := yamlx.DecodeBlock(node, &cfg, "a databrain target must be a mapping with datasource_type, name and fields")
	if err != nil {
		return nil, err
	}

	typeNode := yamlx.Lookup(node, "datasource_type")
	if typeNode == nil || strings.TrimSpace(cfg.DatasourceType) == "" {
		return nil, yamlx.Errorf(orNode(typeNode, node), "datasource_type is required (one of %s)", strings.Join(typeNames(), ", "))
	}
	spec, ok := types[cfg.DatasourceType]
	if !ok {
		return nil, yamlx.Errorf(typeNode, "datasource_type %q is not a Databrain datasource type credsync can update (one of %s)",
			cfg.DatasourceType, strings.Join(typeNames(), ", "))
	}
	nameNode := yamlx.Lookup(node, "name")
	if nameNode == nil || strings.TrimSpace(cfg.Name) == "" {
		return nil, yamlx.Errorf(orNode(nameNode, node), "name is required: it is the name of the existing Databrain datasource to update (credentials.name)")
	}
	if cfg.Name != strings.TrimSpace(cfg.Name) {
		return nil, yamlx.Errorf(nameNode, "name has leading or trailing spaces; Databrain matches the datasource name exactly")
	}
	if cfg.Verify != nil && !*cfg.Verify {
		return nil, yamlx.Errorf(yamlx.Lookup(node, "verify"), "verify: false is not possible for databrain targets: Databrain tests the connection as part of every datasource update (remove the key)")
	}

	fields, err := decodeFields(cfg.DatasourceType, spec, cfg.Name, &cfg.Fields, node)
	if err != nil {
		return nil, err
	}
	tenancy, err := decodeTenancy(&cfg.TenancySettings)
	if err != nil {
		return nil, err
	}
	return &Adapter{
		platform: p.name,
		client:   p.client,
		dsType:   cfg.DatasourceType,
		spec:     spec,
		name:     cfg.Name,
		fields:   fields,
		tenancy:  tenancy,
	}, nil
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

// decodeFields reads the `fields` mapping: every key must be a non-secret field of the type, every
// value of the type Databrain wants; then the conditional rules that depend on config alone.
func decodeFields(dsType string, spec *typeSpec, name string, fn *yaml.Node, target *yaml.Node) (map[string]any, error) {
	fields := map[string]any{}
	lines := map[string]*yaml.Node{}
	where := target // where "missing field" problems point
	if fn.Kind != 0 {
		where = fn
		if fn.Kind == yaml.AliasNode && fn.Alias != nil {
			fn = fn.Alias
		}
		if fn.Tag == "!!null" {
			fn = &yaml.Node{Kind: yaml.MappingNode, Line: fn.Line}
		}
		if fn.Kind != yaml.MappingNode {
			return nil, yamlx.Errorf(fn, "fields must be a mapping of the %s datasource's non-secret fields (%s)", dsType, strings.Join(spec.configFields(), ", "))
		}
		for i := 0; i+1 < len(fn.Content); i += 2 {
			k, v := fn.Content[i], fn.Content[i+1]
			if _, dup := lines[k.Value]; dup {
				return nil, yamlx.Errorf(k, "field %q is given twice", k.Value)
			}
			f, known := spec.field(k.Value)
			if !known {
				return nil, yamlx.Errorf(k, "%s", unknownFieldMessage(dsType, spec, k.Value))
			}
			switch f.origin {
			case fromName:
				return nil, yamlx.Errorf(k, "fields.name is not allowed: the datasource name is the target's name key")
			case fromCredential:
				return nil, yamlx.Errorf(k, "%s", credentialFieldMessage(dsType, f))
			}
			val, err := scalarValue(f, v)
			if err != nil {
				return nil, err
			}
			fields[k.Value] = val
			lines[k.Value] = v
		}
	}

	// Config-time part of the full validation: ignore what the credential will supply.
	check := map[string]any{"name": name}
	for k, v := range fields {
		check[k] = v
	}
	if ps := validateConfigPart(spec, dsType, check); len(ps) > 0 {
		p, at := ps[0], where // the first problem, at its field's line
		if n, ok := lines[p.field]; ok {
			at = n
		}
		return nil, yamlx.Errorf(at, "fields.%s %s", p.field, p.msg)
	}
	if v, _ := asBool(fields["disableAuth"]); v {
		return nil, yamlx.Errorf(lines["disableAuth"], "disableAuth: true leaves the %s datasource without a password, so credsync has nothing to rotate there; remove this target or the key", dsType)
	}
	return fields, nil
}

// validateConfigPart runs the full validation on the config's fields and keeps only the problems
// about fields the config itself provides (or must provide).
func validateConfigPart(spec *typeSpec, dsType string, c map[string]any) []problem {
	var out []problem
	for _, p := range validateWithoutGate(spec, dsType, c) {
		f, known := spec.field(p.field)
		if known && (f.origin == fromCredential || f.origin == fromEither) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// validateWithoutGate is validateCredentials, but the conditional rules run even when some
// (credential-supplied) required fields are missing.
func validateWithoutGate(spec *typeSpec, dsType string, c map[string]any) []problem {
	ps := validateCredentials(dsType, c)
	if spec.rules == nil {
		return ps
	}
	gated := false
	for _, p := range ps {
		if f, ok := spec.field(p.field); ok && (f.origin == fromCredential || f.origin == fromEither) && !filled(c, p.field) {
			gated = true
		}
	}
	if gated {
		ps = append(ps, spec.rules(c)...)
	}
	return ps
}

// scalarValue converts one YAML value to the JSON value Databrain wants for f.
func scalarValue(f fieldSpec, v *yaml.Node) (any, error) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return nil, yamlx.Errorf(v, "fields.%s must be %s", f.name, f.kind)
	}
	switch f.kind {
	case kindPort:
		if v.Tag != "!!int" {
			return nil, yamlx.Errorf(v, "fields.%s must be %s, written without quotes", f.name, f.kind)
		}
		var n int
		if err := v.Decode(&n); err != nil || n < 1 || n > 65535 {
			return nil, yamlx.Errorf(v, "fields.%s must be between 1 and 65535", f.name)
		}
		return n, nil
	case kindBool:
		if v.Tag != "!!bool" {
			return nil, yamlx.Errorf(v, "fields.%s must be a boolean (true or false, without quotes)", f.name)
		}
		var b bool
		if err := v.Decode(&b); err != nil {
			return nil, yamlx.Errorf(v, "fields.%s must be a boolean", f.name)
		}
		return b, nil
	default:
		switch v.Tag {
		case "!!str", "!!int", "!!float":
			// An unquoted number (database: 2024) is meant as its text.
		default:
			return nil, yamlx.Errorf(v, "fields.%s must be a string", f.name)
		}
		if len(f.enum) > 0 && !contains(f.enum, v.Value) {
			return nil, yamlx.Errorf(v, "fields.%s must be one of %s", f.name, quoteList(f.enum))
		}
		return v.Value, nil
	}
}

func unknownFieldMessage(dsType string, spec *typeSpec, key string) string {
	msg := fmt.Sprintf("%q is not a field of Databrain %s datasources (fields: %s)", key, dsType, strings.Join(spec.configFields(), ", "))
	switch {
	case key == "username" && spec.userKey == "user":
		msg += `; Databrain uses "user", not "username", for ` + dsType
	case key == "user" && spec.userKey == "username":
		msg += `; Databrain uses "username", not "user", for ` + dsType
	case key == "host" && dsType == "mssql":
		msg += `; Databrain uses "server", not "host", for mssql`
	case key == "port" && !hasField(spec, "port"):
		msg += "; " + dsType + " datasources have no port field"
	}
	return msg
}

func hasField(spec *typeSpec, name string) bool {
	_, ok := spec.field(name)
	return ok
}

func credentialFieldMessage(dsType string, f fieldSpec) string {
	switch {
	case f.secret:
		return fmt.Sprintf("%q is a secret: it comes from the rotated credential (%s), never from the config file", f.name, f.credPath)
	case f.name == "credentials":
		return fmt.Sprintf("%q is set by credsync from the credential type (password → %q, key_pair → %q)", f.name, snowflakePassword, snowflakeKeyPair)
	default:
		return fmt.Sprintf("%q comes from the rotated credential (%s); remove it from fields", f.name, f.credPath)
	}
}

// decodeTenancy reads the optional tenancy_settings mapping (Databrain's own key names).
func decodeTenancy(tn *yaml.Node) (map[string]any, error) {
	if tn.Kind == 0 {
		return nil, nil
	}
	if tn.Kind == yaml.AliasNode && tn.Alias != nil {
		tn = tn.Alias
	}
	if tn.Kind != yaml.MappingNode {
		return nil, yamlx.Errorf(tn, "tenancy_settings must be a mapping (%s)", strings.Join(tenancyKeys(), ", "))
	}
	t := map[string]any{}
	lines := map[string]*yaml.Node{}
	for i := 0; i+1 < len(tn.Content); i += 2 {
		k, v := tn.Content[i], tn.Content[i+1]
		if !contains(tenancyKeys(), k.Value) {
			return nil, yamlx.Errorf(k, "unknown tenancy setting %q (settings: %s)", k.Value, strings.Join(tenancyKeys(), ", "))
		}
		if _, dup := lines[k.Value]; dup {
			return nil, yamlx.Errorf(k, "tenancy setting %q is given twice", k.Value)
		}
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
			return nil, yamlx.Errorf(v, "tenancy_settings.%s must be a non-empty string", k.Value)
		}
		t[k.Value] = v.Value
		lines[k.Value] = v
	}
	ps := validateTenancy(t)
	if len(ps) == 0 && t["tenancyLevel"] == tenancyDatabase {
		keys := make([]string, 0)
		for k := range t {
			if contains(tenancyTableKeys, k) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps = append(ps, problem{"tenancySettings." + k, `applies only when tenancyLevel is "TABLE"`})
		}
	}
	if len(ps) > 0 {
		key := strings.TrimPrefix(ps[0].field, "tenancySettings.")
		at := tn
		if n, ok := lines[key]; ok {
			at = n
		}
		return nil, yamlx.Errorf(at, "tenancy_settings.%s %s", key, ps[0].msg)
	}
	return t, nil
}
