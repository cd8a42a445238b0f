package feltfake

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// openAPISpec is Felt's Sources API (OpenAPI 3.0), a copy of the vendor's spec. The fake
// validates request bodies against it, so it refuses what Felt would refuse.
//
//go:embed openapi.json
var openAPISpec []byte

// OpenAPISpec returns the embedded copy of Felt's Sources OpenAPI document.
func OpenAPISpec() []byte { return append([]byte(nil), openAPISpec...) }

// spec is the parsed embedded document.
type spec struct{ doc map[string]any }

var (
	specOnce   sync.Once
	loadedSpec *spec
	specErr    error
)

func loadSpec() (*spec, error) {
	specOnce.Do(func() {
		var doc map[string]any
		if err := json.Unmarshal(openAPISpec, &doc); err != nil {
			specErr = fmt.Errorf("feltfake: embedded openapi.json: %w", err)
			return
		}
		loadedSpec = &spec{doc: doc}
	})
	return loadedSpec, specErr
}

func mustSpec() *spec {
	s, err := loadSpec()
	if err != nil {
		panic(err)
	}
	return s
}

// schema returns components.schemas[name].
func (s *spec) schema(name string) map[string]any {
	comps, _ := s.doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	sc, _ := schemas[name].(map[string]any)
	return sc
}

// requestSchema returns the application/json request body schema of an operation.
func (s *spec) requestSchema(path, method string) map[string]any {
	paths, _ := s.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[method].(map[string]any)
	rb, _ := op["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	mt, _ := content["application/json"].(map[string]any)
	sc, _ := mt["schema"].(map[string]any)
	return sc
}

func (s *spec) resolve(sc map[string]any) map[string]any {
	for i := 0; i < 10; i++ {
		ref, ok := sc["$ref"].(string)
		if !ok {
			return sc
		}
		sc = s.schema(strings.TrimPrefix(ref, "#/components/schemas/"))
	}
	return sc
}

// schemaError is one validation problem at a JSON pointer, worded like Felt's (OpenApiSpex)
// validation errors.
type schemaError struct {
	Pointer string
	Detail  string
}

// decodeJSON parses a body keeping numbers exact (to tell integers from other numbers).
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// validate checks v against an OpenAPI 3.0 schema: $ref, type, nullable, enum, properties,
// required, additionalProperties (false or a schema), items and oneOf: the subset Felt's spec uses.
func (s *spec) validate(sc map[string]any, v any, ptr string) []schemaError {
	sc = s.resolve(sc)
	if sc == nil {
		return nil
	}
	if v == nil {
		if nullable, _ := sc["nullable"].(bool); nullable {
			return nil
		}
		if _, typed := sc["type"]; typed || sc["oneOf"] != nil {
			return []schemaError{{ptr, "null value where a value is required"}}
		}
		return nil
	}
	if typ, ok := sc["type"].(string); ok {
		if !hasType(v, typ) {
			return []schemaError{{ptr, fmt.Sprintf("Invalid %s. Got: %s", typ, jsonType(v))}}
		}
	}
	if one, ok := sc["oneOf"].([]any); ok {
		if errs := s.validateOneOf(one, v, ptr); len(errs) > 0 {
			return errs
		}
	}
	if enum, ok := sc["enum"].([]any); ok && !inEnum(enum, v) {
		return []schemaError{{ptr, fmt.Sprintf("Invalid value for enum (allowed: %s)", enumList(enum))}}
	}
	var errs []schemaError
	switch x := v.(type) {
	case map[string]any:
		props, _ := sc["properties"].(map[string]any)
		if req, ok := sc["required"].([]any); ok {
			for _, r := range req {
				name, _ := r.(string)
				if _, present := x[name]; !present {
					errs = append(errs, schemaError{ptr + "/" + escapePointer(name), "Missing field: " + name})
				}
			}
		}
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			p := ptr + "/" + escapePointer(k)
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, s.validate(ps, x[k], p)...)
				continue
			}
			switch ap := sc["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, schemaError{p, "Unexpected field: " + k})
				}
			case map[string]any:
				errs = append(errs, s.validate(ap, x[k], p)...)
			}
		}
	case []any:
		if items, ok := sc["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, s.validate(items, e, ptr+"/"+strconv.Itoa(i))...)
			}
		}
	}
	return errs
}

// validateOneOf requires exactly one branch to match. When none does, the errors of the branch
// whose "type" enum names the value's type are reported (they say what is wrong with it).
func (s *spec) validateOneOf(branches []any, v any, ptr string) []schemaError {
	matched := 0
	var typed []schemaError
	for _, b := range branches {
		bs, _ := b.(map[string]any)
		errs := s.validate(bs, v, ptr)
		if len(errs) == 0 {
			matched++
			continue
		}
		if obj, ok := v.(map[string]any); ok && typed == nil {
			rb := s.resolve(bs)
			props, _ := rb["properties"].(map[string]any)
			tp, _ := props["type"].(map[string]any)
			if enum, ok := tp["enum"].([]any); ok && obj["type"] != nil && inEnum(enum, obj["type"]) {
				typed = errs
			}
		}
	}
	switch {
	case matched == 1:
		return nil
	case matched > 1:
		return []schemaError{{ptr, "Value matches more than one schema of oneOf"}}
	case typed != nil:
		return typed
	}
	if obj, ok := v.(map[string]any); ok {
		if _, has := obj["type"]; has {
			return []schemaError{{ptr + "/type", "Invalid value for enum: no variant of this type"}}
		}
		return []schemaError{{ptr + "/type", "Missing field: type"}}
	}
	return []schemaError{{ptr, "Value does not match any schema of oneOf"}}
}

func hasType(v any, typ string) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := strconv.ParseInt(n.String(), 10, 64)
		return err == nil
	}
	return true
}

func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	case nil:
		return "null"
	}
	return "unknown"
}

func inEnum(enum []any, v any) bool {
	// Felt's spec has only string enums.
	sv, ok := v.(string)
	if !ok {
		return false
	}
	for _, e := range enum {
		if es, ok := e.(string); ok && es == sv {
			return true
		}
	}
	return false
}

func enumList(enum []any) string {
	s := make([]string, len(enum))
	for i, e := range enum {
		s[i] = fmt.Sprint(e)
	}
	return strings.Join(s, ", ")
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// connectionShowFields lists, per connection type, the fields Show Source may return for it
// (SourceConnection-* in the spec, less the nested credentials list).
func (s *spec) connectionShowFields(connectionType string) map[string]bool {
	src := s.schema("Source")
	props, _ := src["properties"].(map[string]any)
	conn, _ := props["connection"].(map[string]any)
	one, _ := conn["oneOf"].([]any)
	for _, b := range one {
		bs := s.resolve(b.(map[string]any))
		bp, _ := bs["properties"].(map[string]any)
		tp, _ := bp["type"].(map[string]any)
		enum, _ := tp["enum"].([]any)
		if inEnum(enum, connectionType) {
			out := map[string]bool{}
			for k := range bp {
				if k != "credentials" {
					out[k] = true
				}
			}
			return out
		}
	}
	return nil
}

// CheckRequestBody validates a request body against the request schema of the Felt operation
// at specPath (a path of the spec, e.g. "/api/v2/sources/{source_id}/update"; the method is POST,
// the only one with a body) with the validator the fake uses, and returns each problem as
// "pointer: detail"; none when Felt would take the body. An unknown specPath validates nothing.
func CheckRequestBody(specPath string, body []byte) []string {
	v, err := decodeJSON(body)
	if err != nil {
		return []string{": Invalid JSON body"}
	}
	s := mustSpec()
	var out []string
	for _, e := range s.validate(s.requestSchema(specPath, "post"), v, "") {
		out = append(out, e.Pointer+": "+e.Detail)
	}
	return out
}

// CredentialTypes returns the credential types (SourceCredential-* "type" values) that Felt's
// spec lists in the credentials of a connectionType source (SourceConnection-<type>.credentials),
// sorted; nil when that connection type has no credentials list.
func CredentialTypes(connectionType string) []string {
	s := mustSpec()
	item := s.connectionCredentialsItem(connectionType)
	if item == nil {
		return nil
	}
	var out []string
	props, _ := s.resolve(item)["properties"].(map[string]any)
	credential, _ := props["credential"].(map[string]any)
	one, _ := credential["oneOf"].([]any)
	for _, b := range one {
		bm, _ := b.(map[string]any)
		bp, _ := s.resolve(bm)["properties"].(map[string]any)
		tp, _ := bp["type"].(map[string]any)
		enum, _ := tp["enum"].([]any)
		for _, v := range enum {
			if str, ok := v.(string); ok {
				out = append(out, str)
			}
		}
	}
	sort.Strings(out)
	return out
}
