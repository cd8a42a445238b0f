// Package yamlx decodes YAML config strictly: ${VAR} expansion in values, unknown keys refused, and
// every error prefixed with the line it is about.
package yamlx

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a config problem at one line.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Errorf reports a problem at node's line.
func Errorf(node *yaml.Node, format string, args ...any) error {
	line := 0
	if node != nil {
		line = node.Line
	}
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Expand replaces ${VAR} in every scalar value below node with lookup(VAR); "$$" stands for a
// literal "$". A variable that lookup does not know is an error naming it and its line. Keys are
// not expanded.
func Expand(node *yaml.Node, lookup func(string) (string, bool)) error {
	switch node.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range node.Content {
			if err := Expand(c, lookup); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(node.Content); i += 2 {
			if err := Expand(node.Content[i], lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(node.Value, "$") {
			return nil
		}
		var missing string
		out := varRef.ReplaceAllStringFunc(node.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			v, ok := lookup(name)
			if !ok && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return Errorf(node, "environment variable %s is not set (referenced as ${%s})", missing, missing)
		}
		if out != node.Value {
			node.Value = out
			// Re-resolve the tag from the expanded value: a plain ${PORT} becomes an int, while a
			// quoted "${X}" stays a string. Resolve it here, so that code reading node.Tag (not
			// only the decoder) sees the new type; an explicit tag (!!str ${X}) is kept.
			if node.Style&yaml.TaggedStyle == 0 {
				node.Tag = ""
				node.Tag = node.ShortTag()
			}
		}
	}
	return nil
}

// DecodeStrict decodes node into v (a pointer), refusing keys that v's type does not have.
func DecodeStrict(node *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("yamlx: DecodeStrict needs a non-nil pointer")
	}
	if err := checkKeys(node, rv.Type().Elem()); err != nil {
		return err
	}
	if err := node.Decode(v); err != nil {
		return cleanDecodeError(err)
	}
	return nil
}

var (
	nodeType            = reflect.TypeOf(yaml.Node{})
	unmarshalerType     = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func checkKeys(node *yaml.Node, t reflect.Type) error {
	if node == nil {
		return nil
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		return checkKeys(node.Content[0], t)
	}
	if node.Kind == yaml.AliasNode {
		return checkKeys(node.Alias, t)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return nil // node.Decode reports the type mismatch with its line
		}
		fields := structFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return Errorf(k, "unknown key %q (allowed here: %s)", k.Value, keyList(fields))
			}
			if err := checkKeys(val, ft); err != nil {
				return err
			}
		}
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			return nil
		}
		for i := 1; i < len(node.Content); i += 2 {
			if err := checkKeys(node.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if node.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range node.Content {
			if err := checkKeys(c, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// structFields maps each YAML key of a struct type to its field type, following ",inline".
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func keyList(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// cleanDecodeError makes yaml.v3's type errors read as one line per problem, keeping the
// "line N:" prefix it already has and dropping Go type names an operator does not need.
func cleanDecodeError(err error) error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		m = strings.Replace(m, "cannot unmarshal", "cannot read", 1)
		msgs[i] = m
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// Lookup finds the value node of key in a mapping node, or nil.
func Lookup(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

// Without returns a shallow copy of a mapping node with the given keys removed.
func Without(node *yaml.Node, keys ...string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return node
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	c := *node
	c.Content = nil
	for i := 0; i+1 < len(node.Content); i += 2 {
		if !drop[node.Content[i].Value] {
			c.Content = append(c.Content, node.Content[i], node.Content[i+1])
		}
	}
	return &c
}

// DecodeBlock is the start of every vendor's target decoding: it unwraps a document node,
// refuses anything but a mapping (at its line, saying what the block needs: hint), and decodes
// the mapping strictly into v. It returns the mapping and At of it.
func DecodeBlock(node *yaml.Node, v any, hint string) (*yaml.Node, func(key string) *yaml.Node, error) {
	node, err := Mapping(node, hint)
	if err != nil {
		return nil, nil, err
	}
	if err := DecodeStrict(node, v); err != nil {
		return nil, nil, err
	}
	return node, At(node), nil
}

// Mapping unwraps a document node and refuses anything but a mapping, at its line, saying what
// the block needs (hint).
func Mapping(node *yaml.Node, hint string) (*yaml.Node, error) {
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node == nil || node.Kind != yaml.MappingNode {
		return nil, Errorf(node, "%s", hint)
	}
	return node, nil
}

// At returns a function that finds a key's node in mapping n, or n itself when the key is
// absent: where an error about that key should point.
func At(n *yaml.Node) func(key string) *yaml.Node {
	return func(key string) *yaml.Node {
		if c := Lookup(n, key); c != nil {
			return c
		}
		return n
	}
}
